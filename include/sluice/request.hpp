#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

/// One piece of a streamed answer as it arrives, for embedders who show the text as it comes.
/// The views are valid during the callback only.
struct stream_delta {
    /// `choices[].index` of the choice this piece continues.
    std::uint32_t choice = 0;
    /// The next piece of text, and of a refusal; either may be empty.
    std::string_view content;
    std::string_view refusal;
    /// The event carried a tool-call fragment (merged into the result's body).
    bool tool_call = false;
    /// When the event arrived (steady clock).
    std::chrono::steady_clock::time_point at;
};

/// One chat-completion request as the engine carries it from source to sink. The body is the
/// JSON the user wrote, sent byte for byte (the engine never rewrites fields it does not own);
/// `custom_id` joins the request to its result, as in the Batch API.
struct request {
    /// Caller's identifier, copied into the result and the output record.
    std::string custom_id;

    /// The JSON request body for `POST {base_url}/chat/completions`.
    std::string body;

    /// The model named in the body, when known: the key of per-model rate-limit scopes.
    /// Empty means the endpoint's scope.
    std::string model;

    /// Estimated token cost against TPM (prompt estimate + max completion tokens x n).
    /// Empty: the dispatcher estimates it from the body with `estimate_tokens`.
    std::optional<std::uint64_t> token_cost;

    /// Whether the body asks for a streamed answer, when the caller already knows: true only
    /// for a body already prepared as `prepare_stream_request` prepares it (`stream_options.
    /// include_usage` added unless the body says otherwise). The dispatcher then takes the body
    /// as it is. Empty: the dispatcher finds out from the body and prepares it itself.
    std::optional<bool> streams;

    /// For a body with `"stream": true`: called on the dispatcher's executor with each event
    /// that carries content, as it arrives. A retried request calls it again for the new
    /// attempt's events (the result holds the last attempt's answer only). Optional.
    std::function<void(const stream_delta&)> on_delta;

    /// This request's deadline, from its submission to its result; overrides
    /// `dispatcher_options::deadline` (0 here: none for this request). Empty: the option's.
    std::optional<std::chrono::milliseconds> deadline;
};

} // namespace sluice
