#pragma once

#include <sluice/harness/recorder.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

/// Service-level objectives a request must meet to count towards goodput, as vLLM's
/// `--goodput ttft:MS tpot:MS e2el:MS`: a successful request is good when every objective that
/// is set holds (its metric at most the objective). None set: goodput is not measured.
struct slo_options {
    using milliseconds = std::chrono::duration<double, std::milli>;

    /// Time to first token, from the send to the first content event. A response that was not
    /// streamed has its first token with the whole answer: its TTFT is its E2EL.
    std::optional<milliseconds> ttft;
    /// Time per output token after the first: (E2EL - TTFT) / (output tokens - 1); 0 for a
    /// response of at most one token or not streamed.
    std::optional<milliseconds> tpot;
    /// End-to-end latency, from the send to the end of the response.
    std::optional<milliseconds> e2el;

    /// Whether any objective is set.
    bool any() const noexcept { return ttft || tpot || e2el; }

    /// Throws std::invalid_argument naming the field when an objective is not a finite
    /// number > 0.
    void validate() const;
};

/// Parses `ttft=MS,tpot=MS,e2e=MS` (any subset, any order; `e2el` is taken for `e2e`, and `:`
/// for `=` as vLLM writes them), milliseconds, fractions allowed. Throws std::invalid_argument
/// naming what is wrong: an unknown metric, a repeated one, a value that is not a number > 0.
slo_options parse_slo(std::string_view text);

/// The objectives as `parse_slo` reads them ("ttft=500,e2e=2000"); empty when none is set.
std::string to_string(const slo_options& slo);

/// Counts the successful requests that meet every objective of an `slo_options`, from the
/// same timing values the recorder gets, so that goodput agrees with the reported latencies.
///
/// Thread safety: none; one per thread, merge() at the end.
class goodput_counter {
public:
    using time_point = recorder::time_point;

    goodput_counter() = default;
    /// Throws std::invalid_argument when `slo` does not validate.
    explicit goodput_counter(const slo_options& slo);

    /// `r` ended well at `at` with `output_tokens` tokens: counted as good when it meets
    /// every objective.
    void on_success(const request_timing& r, time_point at, std::uint64_t output_tokens) noexcept;

    /// Whether a request with these timings meets every objective.
    bool meets(const request_timing& r, time_point at, std::uint64_t output_tokens) const noexcept;

    /// Adds the good requests `other` counted.
    void merge(const goodput_counter& other) noexcept { good_ += other.good_; }

    std::uint64_t good() const noexcept { return good_; }
    const slo_options& slo() const noexcept { return slo_; }

private:
    slo_options slo_;
    std::uint64_t good_ = 0;
};

} // namespace sluice
