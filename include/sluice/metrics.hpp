#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace sluice {

/// A latency histogram with log-linear buckets (about 3% relative precision from 1 us to
/// about 1 hour) and constant memory, for percentiles of request latencies.
///
/// Thread safety: none; snapshots are copies.
class latency_histogram {
public:
    void record(std::chrono::nanoseconds d) noexcept;
    /// The value at quantile `q` in [0, 1] (upper edge of its bucket); zero when empty.
    std::chrono::nanoseconds percentile(double q) const noexcept;
    std::uint64_t count() const noexcept { return count_; }
    std::chrono::nanoseconds max() const noexcept { return max_; }
    std::chrono::nanoseconds mean() const noexcept;
    void merge(const latency_histogram& other) noexcept;

private:
    static constexpr int sub_buckets = 32; // per power of two
    static constexpr int powers = 42;      // 2^42 ns is about 73 minutes
    static std::size_t index_of(std::uint64_t ns) noexcept;
    static std::uint64_t upper_edge(std::size_t index) noexcept;

    std::array<std::uint64_t, sub_buckets * powers> buckets_{};
    std::uint64_t count_ = 0;
    std::chrono::nanoseconds sum_{0};
    std::chrono::nanoseconds max_{0};
};

/// A snapshot of the dispatcher's counters, taken with `dispatcher::stats()`.
struct stats_snapshot {
    std::uint64_t submitted = 0;          ///< requests accepted by async_complete
    std::uint64_t succeeded = 0;          ///< results delivered without error
    std::uint64_t failed = 0;             ///< results delivered with an error
    std::uint64_t attempts = 0;           ///< HTTP attempts made in all
    std::uint64_t retries = 0;            ///< attempts beyond each request's first
    std::uint64_t rate_limited = 0;       ///< 429 rate_limit_exceeded answers seen
    std::uint64_t in_flight = 0;          ///< requests accepted and not yet delivered
    std::uint64_t admitted = 0;           ///< attempts let through by the rate limiter
    std::uint64_t prompt_tokens = 0;      ///< from usage of successful responses
    std::uint64_t completion_tokens = 0;  ///< from usage of successful responses
    std::uint64_t connections_opened = 0; ///< connections the pool opened in all
    std::uint64_t replayed = 0; ///< attempts replayed on a fresh connection (keep-alive race)
    /// Connections closed because the server sent bytes no request asked for.
    std::uint64_t untrusted_connections = 0;
    /// Final failures by kind (error_kind of the result's error).
    std::map<std::string, std::uint64_t> failures;
    /// Retries by the kind of failure that caused them.
    std::map<std::string, std::uint64_t> retry_causes;
    /// Delivered results by the HTTP status of their last attempt (0: no response arrived).
    std::map<unsigned, std::uint64_t> statuses;
    /// End-to-end latency of delivered results (queued to done).
    latency_histogram latency;
    /// Time from the response's first byte back to the request's send (time to first byte).
    latency_histogram ttfb;
};

/// Adds the counters and histograms of `from` into `into` (several dispatchers' totals).
void merge(stats_snapshot& into, const stats_snapshot& from);

} // namespace sluice
