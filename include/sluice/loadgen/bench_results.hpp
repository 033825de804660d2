#pragma once

#include <sluice/harness/recorder.hpp>
#include <sluice/harness/report.hpp>
#include <sluice/harness/slo.hpp>
#include <sluice/harness/timeline.hpp>
#include <sluice/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace sluice {

/// What the load generator knows of a request besides the engine's result.
struct sent_request {
    using time_point = std::chrono::steady_clock::time_point;

    /// When the schedule said the request was due.
    time_point scheduled{};
    /// When it was handed to the engine (`dispatcher::async_submit`).
    time_point submitted{};
    /// The prompt's estimated tokens, counted when the answer carries no `usage`.
    std::uint64_t input_tokens = 0;
};

/// The kind a failed result is counted under in a benchmark's report: `http_<status>` for an
/// HTTP error status the engine classes as a server or client error (`http_500`, `http_503`,
/// `http_400`), otherwise `error_kind` of its error (`rate_limited`, `timeout`,
/// `connection_reset`, `malformed_response`, `unauthorized`, ...).
std::string failure_kind(const result& r);

/// Whether `r` was cut off by a stop rather than failed by the server: `not_attempted` or
/// `stopped` (a stop, or the fatal error of another request, came first) or
/// `operation_aborted` (cancelled on the wire by a stop at once).
bool is_cancellation(const result& r) noexcept;

/// The figures of a benchmark run, fed one engine result at a time: the recorder (latencies,
/// counts, tokens), the goodput against the objectives and the timeline. Sans I/O: the
/// load generator feeds it, and a test can feed it results it made up.
///
/// How a result is read: send lag is `submitted - scheduled`; the request's own clock starts
/// at `times.sent` (the write of its last attempt, the submission when it was never written);
/// a streamed answer's content events are `times.first_token` and each later one the sum of
/// the gaps in `times.token_gaps`, so TTFT is `first_token - sent` and ITL the gaps; it ends at
/// `times.done` (E2EL). Tokens come from `usage` when the answer has it, otherwise the prompt's
/// estimate (input) and the count of content events (output; 0 for an answer not streamed).
///
/// Thread safety: none.
class bench_results {
public:
    using time_point = recorder::time_point;

    /// Figures whose timeline starts at `start`, with slices `timeline_width` wide and at
    /// most `timeline_slices` of them (see `timeline`). Throws std::invalid_argument when
    /// `slo` does not validate, the width is not positive or the slices are fewer than 2.
    explicit bench_results(const slo_options& slo = {},
                           time_point start = {},
                           recorder::duration timeline_width = std::chrono::seconds(1),
                           std::size_t timeline_slices = timeline::default_max_buckets);

    /// Records the result `r` of the request `s`.
    void record(const sent_request& s, const result& r);

    /// Moves the timeline's start (the end of a warm-up), forgetting what it held.
    void restart_timeline(time_point start);

    /// A request sent during the warm-up: not recorded, counted here.
    void count_warmup() noexcept { ++warmup_requests_; }
    /// A request cut off by a stop: not recorded, counted here.
    void count_cancelled() noexcept { ++cancelled_; }

    const recorder& rec() const noexcept { return rec_; }
    const goodput_counter& goodput() const noexcept { return goodput_; }
    const timeline& over_time() const noexcept { return over_time_; }
    std::uint64_t warmup_requests() const noexcept { return warmup_requests_; }
    std::uint64_t cancelled() const noexcept { return cancelled_; }

    /// The report's extras from these figures (goodput, timeline, counts), pointing into this
    /// object: valid while it lives. The caller adds `stream`, `input` and `warmup`.
    report_extras extras() const;

private:
    recorder rec_;
    goodput_counter goodput_;
    timeline over_time_;
    recorder::duration timeline_width_;
    std::size_t timeline_slices_;
    std::uint64_t warmup_requests_ = 0;
    std::uint64_t cancelled_ = 0;
};

} // namespace sluice
