#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace sluice {

/// The error code type used on every hot path, as in Asio and Beast.
using error_code = boost::system::error_code;

/// Failures that sluice itself diagnoses, beside the transport errors Asio, Beast and OpenSSL
/// report. A result's final error is one of these or a transport error; `is_retryable` is the
/// single place that decides what a failure means for retrying.
enum class errc {
    /// An input line could not be turned into a request (not JSON, no body, bad url/method).
    bad_input_line = 1,
    /// A request with this `custom_id` was already seen in the input.
    duplicate_custom_id,
    /// The response body was not JSON, or not the shape of a chat completion or error object.
    malformed_response,
    /// The response body exceeded the configured maximum size.
    body_too_large,
    /// The server answered 429 `rate_limit_exceeded` (or `slow_down`): wait and retry.
    rate_limited,
    /// The server answered 429 with a quota or spend-limit code: retrying cannot help.
    quota_exhausted,
    /// The server answered 5xx, 408 or 409: a transient server-side failure.
    server_error,
    /// The server answered another 4xx status: the request itself is wrong; never retried.
    client_error,
    /// The endpoint's retry budget was spent, so a retryable failure was not retried.
    retry_budget_exhausted,
    /// The request's estimated token cost exceeds what the limits can ever admit.
    request_too_large,
    /// The dispatcher's queue was full and the overflow policy is to fail.
    queue_full,
    /// The dispatcher was stopped before the request could finish.
    stopped,
    /// The request was never sent (the job stopped admitting first); a resumed run retries it.
    not_attempted,
    /// The base URL could not be parsed or uses a scheme other than http/https.
    invalid_url,
    /// The server answered 401: the API key was refused. Every request would be refused alike,
    /// so the job stops admitting (as for quota exhaustion) and a resumed run sends again.
    unauthorized,
    /// The server sent bytes that no request asked for (an unsolicited response, data on an
    /// idle connection) on a connection that had served earlier requests: the answer read
    /// there could belong to another request, so it is not trusted and the request is retried.
    unexpected_bytes,
    /// The server's TLS certificate failed verification (untrusted, expired, another name).
    /// Every connection would fail alike, so the job stops (a wrong CA must not cost a
    /// handshake per line) and a resumed run, with the right CA, sends again.
    certificate_rejected,
    /// A 2xx answer that is not JSON and says so in its Content-Type (an event stream, an
    /// HTML page from a proxy): asking again would get the same, so it is not retried.
    unexpected_content_type,
    /// One server-sent event grew past `sse_parser_options::max_event_bytes` (a stream with no
    /// blank lines, or an endless data line): asking again would get the same, so not retried.
    event_too_large,
    /// The event stream ended in the middle of an event (a partial line or data without its
    /// closing blank line): the connection was cut, as with a truncated body, so retried.
    event_stream_truncated,
    /// The request's deadline (`dispatcher_options::deadline`, `request::deadline`) passed, or
    /// its next attempt or wait would have ended past it: the whole life of a request is
    /// bounded, backoff and the server's hints included. Not retried.
    deadline_exceeded,
    /// The HTTP proxy answered the CONNECT with a 4xx (407: credentials missing or wrong; 403:
    /// the server is not allowed): every connection would be refused alike, so the job stops
    /// (as for a rejected certificate) and a resumed run, with the right settings, sends again.
    proxy_refused,
    /// The HTTP proxy could not open the tunnel (a 5xx answer to CONNECT, such as 502: it
    /// could not reach the server) or answered it with garbage: a connection failure, retried.
    proxy_error,
};

/// The category of `sluice::errc`; its `name()` is "sluice".
const boost::system::error_category& category() noexcept;

/// Makes `errc` values usable as `error_code`, found by argument-dependent lookup.
inline error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), category()};
}

/// True when a failure is transient and another attempt may succeed: connection failures,
/// timeouts, 429 rate limits and server errors. False for success, bad requests, quota
/// exhaustion, a body or a head over its size cap, and everything decided by the caller
/// (stop, queue full).
bool is_retryable(const error_code& ec) noexcept;

/// True when a failure must stop a batch job from admitting more requests: quota exhausted,
/// or the API key refused (401).
bool is_fatal(const error_code& ec) noexcept;

/// A short stable name for an error, for records and summaries: "rate_limited",
/// "connection_reset", "timeout", ... (the enumerator name for sluice::errc).
const char* error_kind(const error_code& ec) noexcept;

} // namespace sluice

template <>
struct boost::system::is_error_code_enum<sluice::errc> : std::true_type {};
