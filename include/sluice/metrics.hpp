#pragma once

#include <sluice/redis/shared_budget.hpp>
#include <sluice/timing_histogram.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace sluice {

/// One rate-limit scope (the endpoint's, or one model's) as its engine last saw it: updated
/// when a request joins its line, is admitted, or has its response, so the levels are as of
/// the scope's last event (a bucket refills between events). Limits and levels are this
/// engine's share of the account (`limit_options::share`); `merge` adds the shares up.
struct scope_stats {
    /// 429 rate_limit_exceeded answers to this scope's requests.
    std::uint64_t rate_limited = 0;
    /// Requests waiting for admission (retries waiting out their delay not included).
    std::uint64_t waiting = 0;
    /// Request limit in use, per minute: configured, or lowered or learned from the server's
    /// `x-ratelimit-limit-requests`; 0: none.
    double rpm = 0;
    /// Token limit in use, per minute, as `rpm`.
    double tpm = 0;
    /// Requests the request bucket held (negative: a debt); 0 with no request limit.
    double requests_available = 0;
    /// Tokens the token bucket held, as `requests_available`.
    double tokens_available = 0;
    /// The server's headers set or lowered `rpm` or `tpm` (`limit_options::learn_from_headers`).
    bool limits_learned = false;
    /// The request rate the scope found itself from 429s without hints, per minute, as of the
    /// last admission or response (`limit_options::adaptive`); 0: not adapting (no such 429,
    /// or a request limit is known).
    double adaptive_rpm = 0;
};

/// One endpoint of a dispatcher with several (`dispatcher_options::endpoints`), as its engine
/// last saw it. Counted per attempt: a request retried on another endpoint counts on both.
struct endpoint_stats {
    std::uint64_t sent = 0;         ///< attempts sent to it
    std::uint64_t ok = 0;           ///< answered 2xx
    std::uint64_t errors = 0;       ///< failed attempts other than 429s (transport, 4xx, 5xx)
    std::uint64_t rate_limited = 0; ///< answered 429 (rate limit or quota)
    /// Its circuit breaker: "closed", "open", "half-open" or "retired", as of its last event.
    std::string state = "closed";
    /// Times its breaker opened.
    std::uint64_t opened = 0;
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
    /// Rate-limit scopes by key: "" is the endpoint's, else the model's (`scope_key`).
    std::map<std::string, scope_stats> scopes;
    /// Endpoints by name, with several endpoints only (empty with one).
    std::map<std::string, endpoint_stats> endpoints;
    /// Delivered results by the HTTP status of their last attempt (0: no response arrived).
    std::map<unsigned, std::uint64_t> statuses;
    /// Time from submission to the first admission: what the rate limits (and the connection
    /// count) made each request wait before its first attempt.
    timing_histogram admission_wait;
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
    /// The rate-limit budget shared through Redis (`dispatcher_options::shared_budget`).
    shared_budget_stats shared_budget;
};

/// Adds the counters and histograms of `from` into `into` (several dispatchers' totals).
void merge(stats_snapshot& into, const stats_snapshot& from);

} // namespace sluice
