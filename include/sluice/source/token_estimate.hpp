#pragma once

#include <cstdint>
#include <memory>
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

/// `estimate_tokens` for a stream of bodies: it keeps one simdjson parser and one padded
/// buffer, grown to the largest body seen, instead of allocating both per request (the
/// engine estimates every request it accepts). Not thread-safe: one per thread or loop.
class token_estimator {
public:
    explicit token_estimator(const estimate_options& opts = {});
    ~token_estimator();
    token_estimator(token_estimator&&) noexcept;
    token_estimator& operator=(token_estimator&&) noexcept;

    token_estimate operator()(std::string_view body);
    const estimate_options& options() const noexcept { return opts_; }

private:
    struct state; // the parser and the buffer: simdjson stays out of this header
    estimate_options opts_;
    std::unique_ptr<state> state_;
};

} // namespace sluice
