#include "mock/mock_answer.hpp"
#include "detail/json_string.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace sluice::detail {

namespace {

constexpr std::string_view words[] = {"lorem",
                                      "ipsum",
                                      "dolor",
                                      "sit",
                                      "amet",
                                      "consectetur",
                                      "adipiscing",
                                      "elit",
                                      "sed",
                                      "do",
                                      "eiusmod",
                                      "tempor"};

// Words [from, to) of the answer text, each after a space but the text's first: the pieces
// of one text concatenate to the whole.
std::string words_text(std::uint64_t from, std::uint64_t to) {
    std::string text;
    text.reserve((to - from) * 8);
    for (std::uint64_t w = from; w < to; ++w) {
        if (w)
            text += ' ';
        text += answer_word(w);
    }
    return text;
}

// What every chunk of one stream starts with, up to its "choices".
std::string chunk_prefix(const answer_shape& a) {
    std::string p = R"({"id":")" + a.id + R"(","object":"chat.completion.chunk","created":)" +
                    std::to_string(a.created) + R"(,"model":)";
    append_json_string(p, a.model);
    return p;
}

void add_choice_event(std::string& out,
                      const std::string& prefix,
                      std::uint64_t index,
                      std::string_view delta,
                      std::string_view finish_json) {
    out += "data: ";
    out += prefix;
    out += R"(,"choices":[{"index":)";
    out += std::to_string(index);
    out += R"(,"delta":)";
    out += delta;
    out += R"(,"finish_reason":)";
    out += finish_json;
    out += "}]}\n\n";
}

// Words [from, to) for every choice, one event each.
std::string content_piece(const std::string& prefix,
                          const answer_shape& a,
                          std::uint64_t from,
                          std::uint64_t to) {
    std::string delta = R"({"content":)";
    append_json_string(delta, words_text(from, to));
    delta += '}';
    std::string out;
    for (std::uint64_t i = 0; i < a.n; ++i)
        add_choice_event(out, prefix, i, delta, "null");
    return out;
}

// The finish chunk of every choice, the usage chunk when asked for, and [DONE].
std::string tail_piece(const std::string& prefix, const answer_shape& a) {
    const std::string finish = std::string("\"") + a.finish + '"';
    std::string out;
    for (std::uint64_t i = 0; i < a.n; ++i)
        add_choice_event(out, prefix, i, "{}", finish);
    if (a.include_usage)
        out += "data: " + prefix + R"(,"choices":[],)" + a.usage + "}\n\n";
    out += "data: [DONE]\n\n";
    return out;
}

// An error mid-stream as OpenAI and vLLM send one: an event whose payload is an error object.
// (vLLM sends `data: [DONE]` after it; the mock, as OpenAI, ends the stream there.)
std::string error_piece() {
    return R"(data: {"error":{"message":"The server had an error while processing your )"
           R"(request.","type":"server_error","param":null,"code":null}})"
           "\n\n";
}

std::chrono::microseconds draw_gap(const stream_timing& t, std::mt19937_64& rng) {
    if (!t.exponential || t.interval.count() <= 0)
        return t.interval;
    std::exponential_distribution<double> d(1.0 / static_cast<double>(t.interval.count()));
    return std::chrono::microseconds(std::llround(d(rng)));
}

} // namespace

std::string_view answer_word(std::uint64_t i) noexcept {
    return words[i % std::size(words)];
}

std::string completion_body(const answer_shape& a) {
    const std::string text = words_text(0, a.completion_tokens);
    std::string body;
    body.reserve(256 + text.size() * a.n);
    body += R"({"id":")" + a.id + R"(","object":"chat.completion","created":)";
    body += std::to_string(a.created);
    body += R"(,"model":)";
    append_json_string(body, a.model);
    body += R"(,"choices":[)";
    for (std::uint64_t i = 0; i < a.n; ++i) {
        if (i)
            body += ',';
        body += R"({"index":)" + std::to_string(i) + R"(,"message":{"role":"assistant","content":)";
        append_json_string(body, text);
        body += R"(,"refusal":null},"logprobs":null,"finish_reason":")";
        body += a.finish;
        body += "\"}";
    }
    body += "],";
    body += a.usage;
    body += R"(,"system_fingerprint":"fp_sluice_mock"})";
    return body;
}

stream_schedule build_stream(const answer_shape& a,
                             const stream_timing& t,
                             stream_fault fault,
                             std::mt19937_64& rng) {
    const std::string prefix = chunk_prefix(a);
    const std::uint64_t per = std::max<std::uint32_t>(1, t.tokens_per_chunk);
    const std::uint64_t chunks = (a.completion_tokens + per - 1) / per;
    // A fault comes after about half the content, and after some content when there is any.
    const std::uint64_t sent = fault == stream_fault::none
                                   ? chunks
                                   : (chunks ? std::max<std::uint64_t>(1, chunks / 2) : 0);

    stream_schedule s;
    std::string roles;
    for (std::uint64_t i = 0; i < a.n; ++i)
        add_choice_event(roles, prefix, i, R"({"role":"assistant","content":""})", "null");
    s.pieces.push_back({t.head, std::move(roles)});

    auto at = t.head + t.first_token;
    for (std::uint64_t k = 0; k < sent; ++k) {
        if (k)
            at += draw_gap(t, rng);
        const std::uint64_t to = std::min(a.completion_tokens, (k + 1) * per);
        s.pieces.push_back({at, content_piece(prefix, a, k * per, to)});
    }
    if (fault != stream_fault::none && sent > 0)
        at += draw_gap(t, rng); // when the next content piece would have been due
    s.end_at = at;
    switch (fault) {
    case stream_fault::none:
        s.pieces.push_back({at, tail_piece(prefix, a)});
        break;
    case stream_fault::error:
        s.pieces.push_back({at, error_piece()});
        break;
    case stream_fault::cut:
        s.end = stream_end::cut;
        break;
    }
    return s;
}

} // namespace sluice::detail
