#pragma once

#include <sluice/error.hpp>
#include <sluice/inline_string.hpp>
#include <sluice/inline_vector.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// One entry of a completion's `choices` array, reduced to what batch and service users read.
struct choice {
    /// `choices[].index`.
    std::uint32_t index = 0;
    /// `message.content`; empty optional when the server sent null (as with tool calls).
    std::optional<std::string> content;
    /// `finish_reason` ("stop", "length", "tool_calls", "content_filter"), empty when absent.
    std::string finish_reason;
    /// `message.tool_calls` was present and not null.
    bool has_tool_calls = false;
    /// `message.refusal` was present and not null.
    bool has_refusal = false;
};

/// Token counts from a response's `usage` object.
struct usage {
    std::uint64_t prompt_tokens = 0;
    std::uint64_t completion_tokens = 0;
    std::uint64_t total_tokens = 0;
};

/// The provider's `{"error": {...}}` object, as diagnostics beside an error code. Never holds
/// the API key: only what the server sent back.
struct provider_error {
    std::string message;
    std::string type;
    std::string code;
    std::string param;
};

/// The fields the fast path extracts from a chat-completion or error body. `id` and the
/// first `choices` entry are held inside the object (an OpenAI id has 38 characters, and a
/// request without `n` gets one choice): a response's own allocations are then its body and
/// the message text.
struct completion {
    /// `id` ("chatcmpl-..."); reads as a string_view, `.str()` for a std::string.
    inline_string<64> id;
    std::string model;
    /// `choices`, in the order sent; one held in place, more on the heap.
    inline_vector<choice, 1> choices;
    /// Absent when the server sent no `usage` (some servers omit it).
    std::optional<sluice::usage> usage;
    /// Present when the body was an error object.
    std::optional<provider_error> error;
    /// The whole body is one valid JSON value (RFC 8259; checked by the same pass that reads
    /// the fields above, also when they are missing). The sink embeds such a body as JSON and
    /// quotes anything else as a string.
    bool body_is_json = false;
};

/// When each step of a request's life happened. `queued`, `admitted` and `done` are on the
/// engine's clock (`dispatcher_options::clock`, the steady clock by default); `sent`,
/// `first_byte`, `first_token` and the gaps are the transport's, always the steady clock.
/// Steps not reached hold the epoch (a default-constructed time point).
struct timings {
    using time_point = std::chrono::steady_clock::time_point;
    time_point queued;     ///< accepted by async_complete
    time_point admitted;   ///< the rate limiter let the (last) attempt go
    time_point sent;       ///< the last attempt's request began to be written
    time_point first_byte; ///< the last attempt's response header arrived
    /// Streamed answers: the last attempt's first event carrying content (text, a refusal or
    /// a tool-call fragment) arrived; time to first token is `first_token - sent`.
    time_point first_token;
    /// Streamed answers: the gap between each content event of the last attempt and the one
    /// before it, in arrival order (inter-token latency, one entry per content event after the
    /// first). Empty for answers that were not streamed.
    std::vector<std::chrono::nanoseconds> token_gaps;
    time_point done; ///< the result was produced
};

/// What the sink receives for every request, exactly once: the outcome of the last attempt.
/// `ec` is empty on success (a 2xx response whose body parsed); otherwise it says why the
/// request finally failed and `error` carries the provider's explanation when it sent one.
struct result {
    std::string custom_id;
    /// Final error; empty on success.
    error_code ec;
    /// Human-readable detail for `ec` ("HTTP 400: Invalid 'messages'...", "connect: refused").
    std::string message;
    /// HTTP status of the last attempt; 0 when no response arrived.
    unsigned status = 0;
    /// `x-request-id` of the last response, when sent; held inline (reads as a string_view,
    /// `.str()` for a std::string).
    inline_string<64> request_id;
    /// Raw body bytes of the last response, exactly as received.
    std::string body;
    /// Fields parsed from `body` (choices and usage on success, the error object otherwise).
    sluice::completion completion;
    /// Number of attempts made (0 when the request was never sent).
    unsigned attempts = 0;
    /// The last attempt's answer came as an event stream (`"stream": true`); `body` then holds
    /// the completion assembled from its chunks, in the shape of a non-streamed answer.
    bool streamed = false;
    sluice::timings times;

    bool ok() const noexcept { return !ec; }
};

} // namespace sluice
