#include <sluice/timing_histogram.hpp>

#include <algorithm>
#include <bit>
#include <cmath>

namespace sluice {

timing_histogram::timing_histogram()
    : buckets_(bucket_count, 0) {}

timing_histogram::duration timing_histogram::middle_of(std::size_t index) noexcept {
    if (index < exact_below)
        return duration(static_cast<std::int64_t>(index) * 1000 + 500);
    const std::size_t group = (index - exact_below) / sub_buckets;
    const std::uint64_t sub = (index - exact_below) % sub_buckets + sub_buckets;
    const unsigned shift = static_cast<unsigned>(group) + 1;
    const std::uint64_t lower = sub << shift;
    const std::uint64_t width = std::uint64_t(1) << shift;
    return duration(static_cast<std::int64_t>(lower * 1000 + width * 500));
}

void timing_histogram::merge(const timing_histogram& other) noexcept {
    if (other.count_ == 0)
        return;
    for (std::size_t i = 0; i < bucket_count; ++i)
        buckets_[i] += other.buckets_[i];
    if (count_ == 0)
        shift_ns_ = other.shift_ns_;
    min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    // The other's sums moved to this shift: x - a = (x - b) + (b - a).
    const double d = static_cast<double>(other.shift_ns_ - shift_ns_);
    const double nb = static_cast<double>(other.count_);
    shifted_squares_ += other.shifted_squares_ + 2 * d * other.shifted_sum_ + nb * d * d;
    shifted_sum_ += other.shifted_sum_ + nb * d;
    count_ += other.count_;
    sum_ns_ += other.sum_ns_;
}

void timing_histogram::reset() noexcept {
    std::fill(buckets_.begin(), buckets_.end(), 0);
    count_ = 0;
    min_ = max_ = duration::zero();
    sum_ns_ = 0;
    shift_ns_ = 0;
    shifted_sum_ = shifted_squares_ = 0;
}

double timing_histogram::mean_ns() const noexcept {
    return count_ ? static_cast<double>(sum_ns_) / static_cast<double>(count_) : 0.0;
}

double timing_histogram::stddev_ns() const noexcept {
    if (count_ == 0)
        return 0.0;
    const double n = static_cast<double>(count_);
    const double mean = shifted_sum_ / n;
    return std::sqrt(std::max(0.0, shifted_squares_ / n - mean * mean));
}

std::uint64_t timing_histogram::count_at_most(duration bound) const noexcept {
    if (count_ == 0 || bound < min_)
        return 0;
    if (bound >= max_)
        return count_;
    // A bucket holds the values whose whole microseconds are in [lower, upper): all of them
    // are at most `bound` when upper x 1000 - 1 <= bound in nanoseconds.
    const auto limit = static_cast<std::uint64_t>(bound.count()) + 1;
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        std::uint64_t upper_us = 0;
        if (i < exact_below) {
            upper_us = i + 1;
        } else {
            const std::size_t group = (i - exact_below) / sub_buckets;
            const std::uint64_t sub = (i - exact_below) % sub_buckets + sub_buckets;
            const unsigned shift = static_cast<unsigned>(group) + 1;
            upper_us = (sub + 1) << shift;
        }
        if (upper_us * 1000 > limit)
            break;
        n += buckets_[i];
    }
    return n;
}

timing_histogram::duration timing_histogram::percentile(double p) const noexcept {
    if (count_ == 0)
        return duration::zero();
    if (!(p > 0))
        return min_;
    if (p >= 100)
        return max_;
    // p / 100 x count is often an integer that the product misses by an ulp (99.9 has no exact
    // double): shave the rounding off before taking the ceiling, so rank 999 of 1000 stays 999.
    const double exact = p / 100 * static_cast<double>(count_);
    auto rank = static_cast<std::uint64_t>(std::ceil(exact * (1 - 1e-12)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += buckets_[i];
        if (seen >= rank)
            return std::clamp(middle_of(i), min_, max_);
    }
    return max_;
}

} // namespace sluice
