#pragma once

#include <sluice/timing_histogram.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace sluice {

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
    timing_histogram latency;
    /// Time from the request's send to its response's first byte (time to first byte).
    timing_histogram ttfb;
    /// Streamed answers delivered without error: time from the send to the first event
    /// carrying content (time to first token).
    timing_histogram ttft;
    /// Streamed answers delivered without error: every gap between two events carrying
    /// content (inter-token latency).
    timing_histogram itl;
};

/// Adds the counters and histograms of `from` into `into` (several dispatchers' totals).
void merge(stats_snapshot& into, const stats_snapshot& from);

} // namespace sluice
