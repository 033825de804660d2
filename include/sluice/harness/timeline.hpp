#pragma once

#include <sluice/harness/recorder.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice {

/// What happened in one slice of a run's time.
struct timeline_bucket {
    /// Requests written in the slice.
    std::uint64_t sent = 0;
    /// Requests that ended well in the slice, and their output tokens.
    std::uint64_t completed = 0;
    std::uint64_t output_tokens = 0;
    /// Requests that failed in the slice.
    std::uint64_t failed = 0;
    /// Sum and maximum of the E2EL of the slice's completed requests.
    std::chrono::nanoseconds e2el_sum{0};
    std::chrono::nanoseconds e2el_max{0};
    /// Sum of the TTFT of the slice's completed requests that had a content event, and how
    /// many they were.
    std::chrono::nanoseconds ttft_sum{0};
    std::uint64_t ttft_count = 0;

    /// Adds `other`'s counts and sums, the larger maximum.
    void merge(const timeline_bucket& other) noexcept;
};

/// Throughput and latency over the time of a run, for the HTML report's charts: events are
/// counted into slices of `width()` from `start()` (an event before the start counts in the
/// first). Memory is bounded whatever the run's length: when an event falls beyond
/// `max_buckets` slices, neighbouring slices are merged in pairs and the width doubles, as
/// often as needed. Completions and failures count in the slice in which they ended, sends in
/// the slice in which they were written.
///
/// Thread safety: none.
class timeline {
public:
    using clock = recorder::clock;
    using time_point = recorder::time_point;
    using duration = recorder::duration;

    static constexpr std::size_t default_max_buckets = 600;

    /// Throws std::invalid_argument when `width` is not positive or `max_buckets` below 2.
    explicit timeline(time_point start = {},
                      duration width = std::chrono::seconds(1),
                      std::size_t max_buckets = default_max_buckets);

    /// A request was written at `at`.
    void on_sent(time_point at);
    /// `r` ended well at `at` with `output_tokens` tokens (as recorder::on_success).
    void on_success(const request_timing& r, time_point at, std::uint64_t output_tokens);
    /// A request failed at `at`.
    void on_failure(time_point at);

    /// The slices from the start up to the last one with an event; the last may be partial.
    const std::vector<timeline_bucket>& buckets() const noexcept { return buckets_; }
    duration width() const noexcept { return width_; }
    time_point start() const noexcept { return start_; }

private:
    timeline_bucket& slot(time_point at);
    void coarsen();

    time_point start_;
    duration width_;
    std::size_t max_buckets_;
    std::vector<timeline_bucket> buckets_;
};

} // namespace sluice
