#include <sluice/metrics.hpp>

#include <algorithm>
#include <bit>
#include <cmath>

namespace sluice {

// Values below `sub_buckets` nanoseconds get a bucket each; above, every power of two is split
// into `sub_buckets` equal buckets, so a bucket's width is at most 1/32 of its lower edge.
std::size_t latency_histogram::index_of(std::uint64_t ns) noexcept {
    if (ns < sub_buckets)
        return static_cast<std::size_t>(ns);
    const int p = std::bit_width(ns) - 1; // floor(log2(ns)), >= 5
    const std::uint64_t sub = (ns >> (p - 5)) - sub_buckets;
    const std::size_t index = static_cast<std::size_t>(p - 4) * sub_buckets + sub;
    return std::min<std::size_t>(index, sub_buckets * powers - 1);
}

std::uint64_t latency_histogram::upper_edge(std::size_t index) noexcept {
    if (index < sub_buckets)
        return index;
    const int p = static_cast<int>(index / sub_buckets) + 4;
    const std::uint64_t sub = index % sub_buckets;
    const std::uint64_t lower = (sub_buckets + sub) << (p - 5);
    return lower + (std::uint64_t{1} << (p - 5)) - 1;
}

void latency_histogram::record(std::chrono::nanoseconds d) noexcept {
    const std::uint64_t ns = d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
    ++buckets_[index_of(ns)];
    ++count_;
    sum_ += std::chrono::nanoseconds(ns);
    max_ = std::max(max_, std::chrono::nanoseconds(ns));
}

std::chrono::nanoseconds latency_histogram::percentile(double q) const noexcept {
    if (count_ == 0)
        return std::chrono::nanoseconds{0};
    q = std::clamp(q, 0.0, 1.0);
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * count_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen >= rank) {
            const auto edge = std::chrono::nanoseconds(upper_edge(i));
            return std::min(edge, max_);
        }
    }
    return max_;
}

std::chrono::nanoseconds latency_histogram::mean() const noexcept {
    return count_ ? sum_ / static_cast<std::int64_t>(count_) : std::chrono::nanoseconds{0};
}

void latency_histogram::merge(const latency_histogram& other) noexcept {
    for (std::size_t i = 0; i < buckets_.size(); ++i)
        buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
}

void merge(stats_snapshot& into, const stats_snapshot& from) {
    into.submitted += from.submitted;
    into.succeeded += from.succeeded;
    into.failed += from.failed;
    into.attempts += from.attempts;
    into.retries += from.retries;
    into.rate_limited += from.rate_limited;
    into.in_flight += from.in_flight;
    into.admitted += from.admitted;
    into.prompt_tokens += from.prompt_tokens;
    into.completion_tokens += from.completion_tokens;
    into.connections_opened += from.connections_opened;
    into.replayed += from.replayed;
    into.untrusted_connections += from.untrusted_connections;
    for (const auto& [kind, n] : from.failures)
        into.failures[kind] += n;
    for (const auto& [kind, n] : from.retry_causes)
        into.retry_causes[kind] += n;
    for (const auto& [status, n] : from.statuses)
        into.statuses[status] += n;
    into.latency.merge(from.latency);
    into.ttfb.merge(from.ttfb);
}

} // namespace sluice
