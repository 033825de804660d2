#pragma once

// Typical answers of a chat-completion server as they come over the wire: nginx in front of a
// server with Content-Length, OpenAI's (Cloudflare's) head with its x-ratelimit-* fields, with
// Content-Length and chunked. Read by the HTTP/1.1 parser's tests and its benchmark.

#include <cstdio>
#include <string>
#include <string_view>

namespace sluice::test::http1_answers {

// Head lines written with "\n", sent with "\r\n".
inline std::string head(std::string_view lines) {
    std::string out;
    for (char c : lines) {
        if (c == '\n')
            out += '\r';
        out += c;
    }
    return out;
}

inline const std::string json_body =
    R"({"id":"chatcmpl-9xYz","object":"chat.completion","created":1733500000,)"
    R"("model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":)"
    R"({"role":"assistant","content":"Paris is the capital of France.",)"
    R"("refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":)"
    R"({"prompt_tokens":24,"completion_tokens":8,"total_tokens":32,)"
    R"("prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},)"
    R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
    R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},)"
    R"("system_fingerprint":"fp_0ba0d124f1"})";

inline std::string nginx_answer() {
    return head("HTTP/1.1 200 OK\nServer: nginx/1.22.1\nDate: Mon, 07 Dec 2026 02:00:00 GMT\n"
                "Content-Type: application/json\nContent-Length: " +
                std::to_string(json_body.size()) + "\nConnection: keep-alive\n\n") +
           json_body;
}

inline std::string openai_head() {
    return "HTTP/1.1 200 OK\nDate: Mon, 07 Dec 2026 02:00:00 GMT\nContent-Type: application/json\n"
           "Connection: keep-alive\naccess-control-expose-headers: X-Request-ID\n"
           "openai-organization: user-abc123\nopenai-processing-ms: 412\n"
           "openai-version: 2020-10-01\nx-ratelimit-limit-requests: 10000\n"
           "x-ratelimit-limit-tokens: 200000\nx-ratelimit-remaining-requests: 9999\n"
           "x-ratelimit-remaining-tokens: 199967\nx-ratelimit-reset-requests: 8.64s\n"
           "x-ratelimit-reset-tokens: 9ms\nx-request-id: req_5f1c9d0e8b7a6f5e4d3c2b1a09f8e7d6\n"
           "strict-transport-security: max-age=31536000; includeSubDomains; preload\n"
           "CF-Cache-Status: DYNAMIC\nServer: cloudflare\nCF-RAY: 8ee1b2c3d4e5f607-FRA\n"
           "alt-svc: h3=\":443\"; ma=86400\n";
}

inline std::string openai_answer() {
    return head(openai_head() + "Content-Length: " + std::to_string(json_body.size()) + "\n\n") +
           json_body;
}

inline std::string openai_chunked() {
    const std::string a = json_body.substr(0, 300);
    const std::string b = json_body.substr(300);
    char sizes[64];
    std::snprintf(sizes, sizeof sizes, "%zx", a.size());
    std::string out =
        head(openai_head() + "Transfer-Encoding: chunked\n\n") + sizes + "\r\n" + a + "\r\n";
    std::snprintf(sizes, sizeof sizes, "%zX;name=value;q=\"a b\\\"\"", b.size());
    return out + sizes + "\r\n" + b + "\r\n0\r\nX-Trailer: done\r\n\r\n";
}

} // namespace sluice::test::http1_answers
