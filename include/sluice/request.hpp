#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sluice {

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
};

} // namespace sluice
