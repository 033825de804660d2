#pragma once

#include <sluice/timing_histogram.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace sluice {

/// Timestamps of one request under way: the driver keeps this value beside the request and
/// hands it back to the recorder at each event. Plain data, no allocation.
struct request_timing {
    using time_point = std::chrono::steady_clock::time_point;

    /// When the schedule said the request was due (arrivals::next_arrival).
    time_point scheduled{};
    /// When the request was written (the start of TTFT and end-to-end latency).
    time_point sent{};
    /// The first and the latest content event; meaningful when `content_events > 0`.
    time_point first_content{};
    time_point last_content{};
    /// Content events seen so far: a fallback output-token count when the server sends no
    /// `usage`.
    std::uint64_t content_events = 0;
};

/// Collects a benchmark's per-request timings into fixed-size histograms and counters, so its
/// memory does not grow with the number of requests or tokens. What is measured follows vLLM's
/// benchmark_serving.py:
/// - end-to-end latency (E2EL): from `sent` to the end of the response, successes only;
/// - time to first token (TTFT): from `sent` to the first content event;
/// - inter-token latency (ITL): every gap between consecutive content events of a request;
/// - time per output token (TPOT): (E2EL - TTFT) / (output_tokens - 1), for successes with
///   at least two output tokens and a first content event;
/// - send lag: `sent - scheduled`, how late the driver was against the schedule.
///
/// A content event is one the driver counts as output: a streamed chunk whose delta carries
/// content. A response that is not streamed has none, so it adds E2EL only. Unlike vLLM, the
/// TTFT and ITL of a request that fails after its first content event are kept (recording
/// them as they come is what keeps memory fixed); failures before any content, the usual
/// case, add nothing.
///
/// Thread safety: none; give each thread its own recorder and merge() them at the end.
class recorder {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;
    /// Failures by kind; std::less<> so that a std::string_view finds a kind without a copy.
    using failure_counts = std::map<std::string, std::uint64_t, std::less<>>;

    /// The request due at `scheduled` was written at `sent`: records the send lag and returns
    /// the timing the driver keeps for the request's other events.
    request_timing on_sent(time_point scheduled, time_point sent) noexcept;

    /// A content event of `r`'s response at `at`: the first is its TTFT, each later one adds
    /// the gap since the previous one to the ITL.
    void on_content(request_timing& r, time_point at) noexcept;

    /// `r` ended well at `at`, with the `usage` token counts (or the driver's own counts).
    void on_success(const request_timing& r,
                    time_point at,
                    std::uint64_t input_tokens,
                    std::uint64_t output_tokens) noexcept;

    /// `r` ended at `at` with a failure of kind `kind` (an error name such as "http_500",
    /// "rate_limited", "timeout"; the driver chooses the vocabulary).
    void on_failure(const request_timing& r, time_point at, std::string_view kind);

    /// Adds everything `other` recorded, as if it had been recorded here.
    void merge(const recorder& other);

    std::uint64_t completed() const noexcept { return completed_; }
    std::uint64_t failed() const noexcept { return failed_; }
    const failure_counts& failures() const noexcept { return failures_; }
    /// Token totals over the successful requests.
    std::uint64_t input_tokens() const noexcept { return input_tokens_; }
    std::uint64_t output_tokens() const noexcept { return output_tokens_; }

    const timing_histogram& e2e() const noexcept { return e2e_; }
    const timing_histogram& ttft() const noexcept { return ttft_; }
    const timing_histogram& itl() const noexcept { return itl_; }
    const timing_histogram& tpot() const noexcept { return tpot_; }
    const timing_histogram& send_lag() const noexcept { return send_lag_; }

    /// The run's wall time: from the first `sent` to the last end, successes and failures
    /// alike; zero before any request has ended.
    duration wall() const noexcept;
    /// Successful requests per second of wall time; 0 when the wall time is 0.
    double request_throughput() const noexcept;
    /// Output tokens per second of wall time; 0 when the wall time is 0.
    double output_throughput() const noexcept;
    /// Input plus output tokens per second of wall time; 0 when the wall time is 0.
    double total_token_throughput() const noexcept;

private:
    void span(time_point sent, time_point ended) noexcept;
    double per_second(std::uint64_t n) const noexcept;

    timing_histogram e2e_;
    timing_histogram ttft_;
    timing_histogram itl_;
    timing_histogram tpot_;
    timing_histogram send_lag_;
    std::uint64_t completed_ = 0;
    std::uint64_t failed_ = 0;
    std::uint64_t input_tokens_ = 0;
    std::uint64_t output_tokens_ = 0;
    failure_counts failures_;
    bool any_ended_ = false;
    time_point first_sent_{};
    time_point last_ended_{};
};

} // namespace sluice
