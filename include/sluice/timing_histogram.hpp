#pragma once

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice {

/// A distribution of latencies in fixed memory, however many are recorded: a log-linear
/// histogram in the manner of HdrHistogram. Values are kept in microseconds; below
/// `exact_below` each microsecond has its own bucket, above it every power of two is cut into
/// 128 equal buckets, so a bucket is at most 1/128 of the values in it wide. A percentile is
/// reported as the middle of its bucket, which puts it within `relative_error` (1/256, about
/// 0.4%) of the exact nearest-rank value, or within half a microsecond below `exact_below`.
/// Values up to `max_trackable` (about 19 hours) are bucketed; longer ones count in the last
/// bucket. Count, minimum, maximum, mean and standard deviation are exact (nanoseconds).
///
/// Memory: `bucket_count` 8-byte counters (30 KiB), allocated once by the constructor.
///
/// Thread safety: none; record into one histogram per thread and merge() them.
class timing_histogram {
public:
    using duration = std::chrono::nanoseconds;

    /// Sub-buckets per power of two above `exact_below`.
    static constexpr std::size_t sub_buckets = 128;
    /// Values under this many microseconds are bucketed exactly.
    static constexpr std::uint64_t exact_below = 2 * sub_buckets;
    /// Bit width of the largest bucketed value in microseconds.
    static constexpr unsigned max_bits = 36;
    /// Largest value bucketed by its size (2^36 - 1 microseconds, about 19 hours).
    static constexpr duration max_trackable =
        std::chrono::microseconds((std::uint64_t(1) << max_bits) - 1);
    /// Number of counters.
    static constexpr std::size_t bucket_count = exact_below + (max_bits - 8) * sub_buckets;
    /// Bound on the relative error of a percentile above `exact_below` microseconds.
    static constexpr double relative_error = 1.0 / (2 * sub_buckets);

    timing_histogram();

    /// Adds one value; a negative one counts as zero.
    void record(duration value) noexcept;

    /// Adds every value of `other`, as if each had been recorded here.
    void merge(const timing_histogram& other) noexcept;

    /// Forgets every value, keeping the memory.
    void reset() noexcept;

    std::uint64_t count() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }

    /// Exact smallest and largest values; zero when empty.
    duration min() const noexcept { return count_ ? min_ : duration::zero(); }
    duration max() const noexcept { return max_; }

    /// Exact sum of every value recorded.
    duration sum() const noexcept { return duration(static_cast<std::int64_t>(sum_ns_)); }

    /// How many values are at most `bound`, as the buckets tell: a bucket counts when its
    /// whole range is at most `bound`, so a value less than 1/128 below `bound` may be
    /// counted only by the next larger bound (exact for bounds on bucket edges, and for
    /// bounds at or above max()). Cumulative: never less for a larger bound. For the `le`
    /// buckets of a Prometheus histogram.
    std::uint64_t count_at_most(duration bound) const noexcept;

    /// Exact mean and population standard deviation (numpy's std), in nanoseconds; 0 when
    /// empty.
    double mean_ns() const noexcept;
    double stddev_ns() const noexcept;

    /// The nearest-rank percentile `p` in [0, 100]: the value with rank ceil(p/100 x count)
    /// among the sorted values, within the documented error and never outside [min, max];
    /// p = 0 gives the exact min, p = 100 the exact max; zero when empty.
    duration percentile(double p) const noexcept;

private:
    static std::size_t index_of(std::uint64_t micros) noexcept;
    // The value reported for bucket `index`: its middle, in nanoseconds.
    static duration middle_of(std::size_t index) noexcept;

    std::vector<std::uint64_t> buckets_;
    std::uint64_t count_ = 0;
    duration min_ = duration::zero();
    duration max_ = duration::zero();
    // Exact while the total stays under 584 years of summed latency.
    std::uint64_t sum_ns_ = 0;
    // Sums of the values and of their squares taken from the first value recorded (the
    // shift): the standard deviation without the cancellation of sum(x^2) - n mean^2 when
    // the spread is small beside the mean, and without a division per value (Welford's
    // update divides, and this is recorded for every token of every stream).
    std::int64_t shift_ns_ = 0;
    double shifted_sum_ = 0;
    double shifted_squares_ = 0;
};

// Inline: recorded for every token gap of every stream, twice in a benchmark (the engine's
// figures and the report's).
inline std::size_t timing_histogram::index_of(std::uint64_t micros) noexcept {
    if (micros < exact_below)
        return static_cast<std::size_t>(micros);
    micros = std::min<std::uint64_t>(micros, (std::uint64_t(1) << max_bits) - 1);
    // The top 8 bits pick the bucket: the highest bit is the power of two (the group), the 7
    // below it the sub-bucket within the group.
    const unsigned shift = static_cast<unsigned>(std::bit_width(micros)) - 8;
    const std::uint64_t sub = (micros >> shift) - sub_buckets;
    return exact_below + (shift - 1) * sub_buckets + static_cast<std::size_t>(sub);
}

inline void timing_histogram::record(duration value) noexcept {
    if (value < duration::zero())
        value = duration::zero();
    const auto ns = static_cast<std::uint64_t>(value.count());
    ++buckets_[index_of(ns / 1000)];
    if (count_ == 0) {
        min_ = value;
        shift_ns_ = value.count();
    } else if (value < min_) {
        min_ = value;
    }
    max_ = std::max(max_, value);
    ++count_;
    sum_ns_ += ns;
    const double d = static_cast<double>(value.count() - shift_ns_);
    shifted_sum_ += d;
    shifted_squares_ += d * d;
}

} // namespace sluice
