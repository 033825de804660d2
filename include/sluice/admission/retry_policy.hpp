#pragma once

#include <sluice/error.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace sluice {

/// How failed attempts are retried. Defaults follow the official OpenAI SDKs, except that a
/// batch job is allowed to wait longer for a server's hint.
struct retry_options {
    /// Attempts per request, the first included; 1 disables retries.
    unsigned max_attempts = 5;
    /// Base of the exponential backoff when the server gives no hint.
    std::chrono::milliseconds initial_backoff{500};
    /// Cap of the exponential backoff.
    std::chrono::milliseconds max_backoff{8000};
    /// Cap on a server's `retry-after`/`retry-after-ms` hint.
    std::chrono::milliseconds max_retry_after{120000};
    /// Retry budget per endpoint: over `budget_window`, retries may be at most `budget_ratio`
    /// of the requests sent plus `budget_min_per_second` a second; a retry beyond it is not
    /// made and the request fails with errc::retry_budget_exhausted.
    double budget_ratio = 0.2;
    double budget_min_per_second = 10;
    std::chrono::seconds budget_window{10};

    /// Throws std::invalid_argument naming the field when a value is out of range.
    void validate() const;
};

/// What one attempt ended with, as the retry policy needs to know it.
struct attempt_outcome {
    /// Transport failure (connect, TLS, reset, timeout, truncated) when no full response came.
    error_code transport_error;
    /// HTTP status when a response came; 0 otherwise.
    unsigned status = 0;
    /// The provider's `error.code` (or `error.type` when code is null), when the body had one.
    std::string_view provider_code;
    /// The provider's `error.message`, when the body had one (a 429 may say "Request too
    /// large": see `parse_too_large`).
    std::string_view provider_message;
    /// The server's retry hint, already parsed.
    std::optional<std::chrono::nanoseconds> retry_after;
    /// `x-should-retry`, when sent: overrides the status rule, as the SDKs do.
    std::optional<bool> should_retry;
};

/// Classifies an attempt's outcome as an error code: empty for 2xx, `errc::rate_limited`,
/// `errc::quota_exhausted`, `errc::request_too_large` (a 429 whose message says so),
/// `errc::unauthorized` (401), `errc::server_error`, `errc::client_error`, or the transport
/// error.
error_code classify(const attempt_outcome& outcome) noexcept;

/// The policy's answer for one attempt.
struct retry_decision {
    enum class action {
        done,    ///< success: deliver the result
        retry,   ///< try again after `delay`
        give_up, ///< deliver the failure `ec`
    };
    action what = action::done;
    std::chrono::nanoseconds delay{0};
    /// Why the request failed (for retry: why this attempt failed).
    error_code ec;
};

/// Decides, sans I/O, whether a failed attempt is retried and after how long: the server's
/// hint when given (capped), else exponential backoff with full jitter. The random engine is
/// part of the policy's state so tests can seed it.
///
/// Thread safety: none; the dispatcher calls it from its own strand.
class retry_policy {
public:
    explicit retry_policy(const retry_options& opts, std::uint64_t seed = std::random_device{}());

    /// `attempts` is the number of attempts made so far, this one included.
    retry_decision decide(const attempt_outcome& outcome, unsigned attempts);

    /// The backoff before attempt `attempts + 1` without a hint: uniform in [0, min(max,
    /// initial * 2^(attempts-1))].
    std::chrono::nanoseconds backoff(unsigned attempts);

    const retry_options& options() const noexcept { return opts_; }

private:
    retry_options opts_;
    std::mt19937_64 rng_;
};

} // namespace sluice
