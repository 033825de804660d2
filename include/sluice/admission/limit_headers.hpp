#pragma once

#include <sluice/http_response.hpp>

#include <chrono>
#include <optional>
#include <string_view>

namespace sluice {

/// The server's view of its limits, parsed from `x-ratelimit-*` headers; each member is empty
/// when its header was missing or not sane (negative, garbage).
struct rate_limit_headers {
    std::optional<double> limit_requests;
    std::optional<double> limit_tokens;
    std::optional<double> remaining_requests;
    std::optional<double> remaining_tokens;
    std::optional<std::chrono::nanoseconds> reset_requests;
    std::optional<std::chrono::nanoseconds> reset_tokens;

    bool empty() const noexcept {
        return !limit_requests && !limit_tokens && !remaining_requests && !remaining_tokens &&
               !reset_requests && !reset_tokens;
    }
};

/// Parses a Go-style duration as OpenAI sends them: "20ms", "1s", "1.5s", "6m0s", "1h2m3.5s",
/// "250us"/"250µs", "10ns". A bare number is taken as seconds. Empty optional on garbage.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) noexcept;

/// Parses the x-ratelimit-* members of `meta`.
rate_limit_headers parse_rate_limit_headers(const response_meta_view& meta) noexcept;

/// The server's retry hint: `retry-after-ms`, else `retry-after` as seconds (fractions allowed)
/// or an HTTP date measured from `now`. Empty when neither is present or sane.
std::optional<std::chrono::nanoseconds>
parse_retry_after(const response_meta_view& meta,
                  std::chrono::system_clock::time_point now) noexcept;

/// What a "request too large" refusal says: the account's limit and what the server counted
/// for the refused request, in tokens (OpenAI sends it as a 429 `rate_limit_exceeded`:
/// "Request too large for gpt-4o-mini in organization org-... on tokens per min (TPM): Limit
/// 10000, Requested 30000. ..."). Waiting cannot help such a request.
struct too_large_hint {
    double limit = 0;
    double requested = 0;
};

/// Reads a too-large refusal out of an error message: it must start with "Request too large"
/// (any case) and carry "Limit N" and "Requested M" with M > N > 0 (digits, thousands
/// separators and a fraction allowed). Empty for every other message.
std::optional<too_large_hint> parse_too_large(std::string_view message) noexcept;

} // namespace sluice
