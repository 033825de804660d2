#pragma once

#include <cstdint>
#include <string_view>

namespace sluice {

/// How a request's token cost is estimated before it is sent (a named, documented choice:
/// the conservative sum providers charge against TPM at admission).
struct estimate_options {
    /// Characters of message text per prompt token (ceil(chars / chars_per_token)).
    double chars_per_token = 4.0;
    /// Tokens added per message for role and framing.
    std::uint32_t per_message_overhead = 4;
    /// Tokens added once per request (the reply's priming).
    std::uint32_t per_request_overhead = 3;
    /// Completion budget when the body sets neither max_completion_tokens nor max_tokens.
    std::uint32_t default_max_tokens = 1024;
};

/// A request's estimated cost.
struct token_estimate {
    std::uint64_t prompt = 0;     ///< estimated prompt tokens
    std::uint64_t completion = 0; ///< max completion tokens x n
    std::uint64_t total() const noexcept { return prompt + completion; }
};

/// Estimates the cost of a chat-completion body: ceil(characters of every message's text
/// content / chars_per_token) + per-message and per-request overheads, plus
/// (max_completion_tokens, else max_tokens, else default_max_tokens) x n. A body that is not
/// valid JSON is estimated from its length alone.
token_estimate estimate_tokens(std::string_view body, const estimate_options& opts = {});

} // namespace sluice
