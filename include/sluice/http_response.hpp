#pragma once

#include <sluice/error.hpp>
#include <sluice/inline_string.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

// The response as the transport hands it on: neutral types that transport, admission and
// parse each know without knowing each other (the build lets each of those stages depend on
// core only).
namespace sluice {

/// Bytes that must be readable past the end of a body handed to `completion_parser`
/// (simdjson's SIMDJSON_PADDING; checked at compile time in the implementation).
inline constexpr std::size_t parse_padding = 64;

/// The rate-limit and retry headers of one response, as raw strings borrowed from it
/// (empty when absent). Filled by the transport, read by admission and the retry policy.
struct response_meta_view {
    std::string_view request_id;         ///< x-request-id
    std::string_view retry_after;        ///< retry-after (seconds or an HTTP date)
    std::string_view retry_after_ms;     ///< retry-after-ms
    std::string_view should_retry;       ///< x-should-retry ("true"/"false")
    std::string_view limit_requests;     ///< x-ratelimit-limit-requests
    std::string_view limit_tokens;       ///< x-ratelimit-limit-tokens
    std::string_view remaining_requests; ///< x-ratelimit-remaining-requests
    std::string_view remaining_tokens;   ///< x-ratelimit-remaining-tokens
    std::string_view reset_requests;     ///< x-ratelimit-reset-requests ("20ms", "1s", "6m0s")
    std::string_view reset_tokens;       ///< x-ratelimit-reset-tokens
};

/// Takes a response body piece by piece as it is read, instead of the body being collected in
/// `http_response::body`: for event streams, whose events are timed on arrival and whose whole
/// text is never held. The transport hands a 2xx `text/event-stream` body to the observer given
/// with the exchange; any other body (an error answer to a streaming request, say) is collected
/// as usual. Implemented by the parse stage (`stream_reader`), called by the transport: this
/// neutral interface is what lets neither know the other.
class body_observer {
public:
    /// A piece of the body, in order, read at `at`. An error stops the read: the exchange
    /// fails with it (step "read").
    virtual error_code on_body(std::string_view piece,
                               std::chrono::steady_clock::time_point at) = 0;

protected:
    ~body_observer() = default;
};

/// One HTTP response, or the failure that prevented it.
struct http_response {
    /// Transport failure (connect, TLS, write, read, timeout, body too large); empty when a
    /// full response arrived, whatever its status.
    error_code ec;
    /// Which step failed ("connect", "handshake", "write", "read"), for messages.
    const char* failed_step = "";
    /// More on why, when the step knows (a certificate's verification error); static text.
    const char* failed_reason = "";
    unsigned status = 0;
    /// Body bytes, with at least `parse_padding` spare capacity for the parser. Empty when the
    /// body went to a `body_observer` (`streamed`).
    std::string body;
    /// The body was an event stream handed to the exchange's `body_observer`, not collected.
    bool streamed = false;
    /// Headers of interest, owned here; `meta()` views them.
    /// Held inline (an allocation per header would be one per response); see inline_string.
    inline_string<64> request_id;
    inline_string<32> retry_after; ///< seconds, or an HTTP date (29 characters)
    inline_string<24> retry_after_ms, should_retry;
    inline_string<24> limit_requests, limit_tokens, remaining_requests, remaining_tokens;
    inline_string<24> reset_requests, reset_tokens;
    /// Content-Type, to tell a JSON answer from an event stream or a proxy's HTML page.
    inline_string<48> content_type;
    /// When the request began to be written and when the response header arrived.
    std::chrono::steady_clock::time_point sent, first_byte;

    response_meta_view meta() const noexcept {
        return {request_id,
                retry_after,
                retry_after_ms,
                should_retry,
                limit_requests,
                limit_tokens,
                remaining_requests,
                remaining_tokens,
                reset_requests,
                reset_tokens};
    }
};

} // namespace sluice
