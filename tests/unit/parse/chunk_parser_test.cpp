#include "unit/parse/sse_feed.hpp"

#include <sluice/parse/chunk_parser.hpp>
#include <sluice/parse/completion_parser.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace sluice;
using namespace sluice::test;

namespace {

// Parses through the copying path; the parser outlives the views `out` holds.
completion_chunk parse_ok(chunk_parser& p, const std::string& json) {
    completion_chunk out;
    const error_code ec = p.parse(json, out);
    INFO(json << ": " << ec.message());
    REQUIRE_FALSE(ec);
    return out;
}

// The data of every event of a fixture but [DONE].
std::vector<std::string> chunks_of(const std::string& name) {
    std::vector<std::string> out;
    for (const auto& e : feed_whole(sse_fixture(name)).events) {
        if (!e.done)
            out.push_back(e.data);
    }
    return out;
}

} // namespace

TEST_CASE("an OpenAI stream: role first, content pieces, finish, then usage alone") {
    const auto events = chunks_of("openai_content.sse");
    REQUIRE(events.size() == 12);
    chunk_parser p;

    const completion_chunk first = parse_ok(p, events[0]);
    CHECK(first.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
    CHECK(first.model == "gpt-4.1-2025-04-14");
    CHECK(first.created == 1741569952);
    CHECK(first.system_fingerprint == "fp_1234567890");
    CHECK(first.service_tier == "default");
    REQUIRE(first.choices.size() == 1);
    CHECK(first.choices[0].role == "assistant");
    CHECK(first.choices[0].content.empty());
    CHECK(first.choices[0].refusal.empty());
    CHECK(first.choices[0].finish_reason.empty());
    CHECK_FALSE(first.usage); // "usage": null on every chunk but the last
    CHECK_FALSE(first.error);

    const completion_chunk piece = parse_ok(p, events[1]);
    CHECK(piece.choices[0].content == "Hello");
    CHECK(piece.choices[0].role.empty());

    const completion_chunk finish = parse_ok(p, events[10]);
    CHECK(finish.choices[0].finish_reason == "stop");
    CHECK(finish.choices[0].content.empty());

    const completion_chunk last = parse_ok(p, events[11]);
    CHECK(last.choices.empty());
    REQUIRE(last.usage);
    CHECK(last.usage->prompt_tokens == 19);
    CHECK(last.usage->completion_tokens == 10);
    CHECK(last.usage->total_tokens == 29);
    CHECK(last.usage_json.rfind(R"({"prompt_tokens":19,)", 0) == 0);
    CHECK(last.usage_json.back() == '}');
    CHECK(last.usage_json.find("rejected_prediction_tokens") != std::string_view::npos);
}

TEST_CASE("tool calls come as fragments: id, type and name first, then argument pieces") {
    const auto events = chunks_of("openai_tool_call.sse");
    chunk_parser p;
    const completion_chunk first = parse_ok(p, events[0]);
    REQUIRE(first.tool_calls.size() == 1);
    const auto calls = first.tool_calls_of(first.choices[0]);
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].index == 0);
    CHECK(calls[0].id == "call_abc");
    CHECK(calls[0].type == "function");
    CHECK(calls[0].name == "get_weather");
    CHECK(calls[0].arguments.empty());
    CHECK(first.choices[0].content.empty()); // null beside tool calls

    const completion_chunk next = parse_ok(p, events[1]);
    const auto more = next.tool_calls_of(next.choices[0]);
    REQUIRE(more.size() == 1);
    CHECK(more[0].id.empty());
    CHECK(more[0].name.empty());
    CHECK(more[0].arguments == "{\"");
}

TEST_CASE("several tool calls in one chunk, and each choice gets its own fragments") {
    chunk_parser p;
    const completion_chunk c = parse_ok(
        p,
        R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"a"}},)"
        R"({"index":1,"id":"call_2","function":{"name":"f","arguments":"b"}}]}},)"
        R"({"index":1,"delta":{"content":"x"}},)"
        R"({"index":2,"delta":{"tool_calls":[{"index":3,"type":"function"}]}}]})");
    REQUIRE(c.choices.size() == 3);
    const auto zero = c.tool_calls_of(c.choices[0]);
    REQUIRE(zero.size() == 2);
    CHECK(zero[0].arguments == "a");
    CHECK(zero[1].index == 1);
    CHECK(zero[1].id == "call_2");
    CHECK(zero[1].name == "f");
    CHECK(c.tool_calls_of(c.choices[1]).empty());
    CHECK(c.choices[1].content == "x");
    const auto two = c.tool_calls_of(c.choices[2]);
    REQUIRE(two.size() == 1);
    CHECK(two[0].index == 3);
    CHECK(two[0].type == "function");
}

TEST_CASE("indexes default to the position when a server leaves them out") {
    chunk_parser p;
    const completion_chunk c = parse_ok(
        p,
        R"({"choices":[{"delta":{"content":"a"}},{"delta":{"tool_calls":[{"id":"t0"},{"id":"t1"}]}}]})");
    REQUIRE(c.choices.size() == 2);
    CHECK(c.choices[0].index == 0);
    CHECK(c.choices[1].index == 1);
    const auto calls = c.tool_calls_of(c.choices[1]);
    REQUIRE(calls.size() == 2);
    CHECK(calls[1].index == 1);
    CHECK(calls[1].id == "t1");
}

TEST_CASE("vLLM and llama.cpp chunks, whatever their field order and extras") {
    chunk_parser p;
    const auto vllm = chunks_of("vllm.sse");
    const completion_chunk v = parse_ok(p, vllm[8]);
    CHECK(v.choices[0].finish_reason == "stop"); // beside vLLM's own stop_reason
    const completion_chunk vu = parse_ok(p, vllm[9]);
    REQUIRE(vu.usage);
    CHECK(vu.usage->completion_tokens == 8);
    CHECK(vu.usage_json == R"({"prompt_tokens":25,"total_tokens":33,"completion_tokens":8})");

    const auto llama = chunks_of("llamacpp.sse");
    const completion_chunk first = parse_ok(p, llama[0]);
    CHECK(first.choices[0].role == "assistant");
    CHECK(first.choices[0].content.empty()); // null
    CHECK(first.id == "chatcmpl-llama");     // after choices in llama.cpp's order
    const completion_chunk last = parse_ok(p, llama[3]);
    CHECK(last.choices[0].finish_reason == "stop");
    REQUIRE(last.usage); // on the finish chunk itself, beside "timings"
    CHECK(last.usage->total_tokens == 23);
    CHECK(last.system_fingerprint == "b4000-0a1b2c3d");
}

TEST_CASE("error events: OpenAI's object, a numeric code, and a bare string") {
    chunk_parser p;
    const auto events = chunks_of("error_mid_stream.sse");
    const completion_chunk e = parse_ok(p, events.back());
    REQUIRE(e.error);
    CHECK(e.error->message.rfind("The server had an error", 0) == 0);
    CHECK(e.error->type == "server_error");
    CHECK(e.error->code.empty());
    CHECK(e.error->param.empty());
    CHECK(e.error->json.front() == '{');
    CHECK(e.error->json.back() == '}');
    CHECK(e.choices.empty());

    const completion_chunk v = parse_ok(
        p,
        R"({"error":{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}})");
    REQUIRE(v.error);
    CHECK(v.error->code == "400");
    CHECK(v.error->type == "BadRequestError");

    const completion_chunk s =
        parse_ok(p, R"({"error":"Input validation error: \"x\"","error_type":"validation"})");
    REQUIRE(s.error);
    CHECK(s.error->message == "Input validation error: \"x\"");
    CHECK(s.error->json == R"("Input validation error: \"x\"")");
}

TEST_CASE("logprobs are kept as raw JSON, with their content and refusal arrays") {
    chunk_parser p;
    const auto events = chunks_of("logprobs.sse");
    const completion_chunk c = parse_ok(p, events[1]);
    const chunk_choice& ch = c.choices[0];
    CHECK(ch.content == "Hi");
    CHECK(ch.logprobs.rfind(R"({"content":[)", 0) == 0);
    CHECK(ch.logprobs_content ==
          R"([{"token":"Hi","logprob":-0.25,"bytes":[72,105],"top_logprobs":[]}])");
    CHECK(ch.logprobs_refusal.empty()); // null
    const completion_chunk last = parse_ok(p, events[3]);
    CHECK(last.choices[0].logprobs.empty()); // null
}

TEST_CASE("escapes and non-ASCII text in deltas come out unescaped") {
    chunk_parser p;
    const completion_chunk c = parse_ok(
        p,
        R"({"choices":[{"index":0,"delta":{"content":"caf\u00e9 \ud83d\ude00 \"q\" \\ line\n\u65e5","tool_calls":[{"index":0,"function":{"arguments":"{\"k\":\"\u00fc\"}"}}]}}]})");
    CHECK(c.choices[0].content == "caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\" \\ line\n\xE6\x97\xA5");
    CHECK(c.tool_calls[0].arguments == "{\"k\":\"\xC3\xBC\"}");
}

TEST_CASE("what is not a chunk is malformed_response, and leaves nothing behind") {
    chunk_parser p;
    for (const char* bad : {
             "",
             "[DONE]",
             "[]",
             "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cut",
             R"({"choices":"x"})",
             R"({"choices":[{"index":-1,"delta":{}}]})",
             R"({"choices":[{"index":0,"delta":{"content":7}}]})",
             R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":"0"}]}}]})",
             R"({"created":"yesterday","choices":[]})",
             R"({"usage":{"prompt_tokens":"many"}})",
             // Parts copied verbatim into assembled JSON must be valid JSON in full.
             R"({"choices":[],"usage":{"prompt_tokens":1,"details":{"x":tru}}})",
             R"({"choices":[{"index":0,"delta":{},"logprobs":{"content":[{"logprob":-0.1.2}]}}]})",
             R"({"error":{"message":"m","extra":[1,2,}})",
         }) {
        INFO(bad);
        completion_chunk out;
        out.id = "left over";
        CHECK(p.parse(std::string(bad), out) == errc::malformed_response);
        CHECK(out.id.empty());
        CHECK(out.choices.empty());
        CHECK(out.tool_calls.empty());
        CHECK_FALSE(out.usage);
        CHECK_FALSE(out.error);
    }
}

TEST_CASE("one parser serves every chunk of every fixture, in place or copied") {
    chunk_parser p;
    std::size_t parsed = 0;
    for (const std::string& name : lf_fixtures()) {
        for (const std::string& data : chunks_of(name)) {
            INFO(name << ": " << data);
            std::string padded = data;
            padded.reserve(data.size() + parse_padding);
            completion_chunk copied, in_place;
            REQUIRE_FALSE(p.parse(data, copied));
            const std::string id(copied.id);
            const std::size_t choices = copied.choices.size();
            const std::string content = choices ? std::string(copied.choices[0].content) : "";
            REQUIRE_FALSE(p.parse(padded.data(), padded.size(), padded.capacity(), in_place));
            CHECK(in_place.id == id);
            CHECK(in_place.choices.size() == choices);
            if (choices)
                CHECK(in_place.choices[0].content == content);
            ++parsed;
        }
    }
    CHECK(parsed == 102);
}

namespace {

// Every field a chunk holds, as owned text, so that two parses can be compared.
std::string describe(const completion_chunk& c) {
    std::string s = "id=" + std::string(c.id) + " model=" + std::string(c.model) +
                    " created=" + (c.created ? std::to_string(*c.created) : "-") +
                    " fp=" + std::string(c.system_fingerprint) +
                    " tier=" + std::string(c.service_tier) + " usage=" + std::string(c.usage_json) +
                    " error=" + (c.error ? std::string(c.error->json) : "-");
    for (const chunk_choice& ch : c.choices) {
        s += " [" + std::to_string(ch.index) + " role=" + std::string(ch.role) +
             " content=" + std::string(ch.content) + " refusal=" + std::string(ch.refusal) +
             " finish=" + std::string(ch.finish_reason) + " lp=" + std::string(ch.logprobs);
        for (const tool_call_delta& d : c.tool_calls_of(ch))
            s += " {" + std::to_string(d.index) + " " + std::string(d.id) + " " +
                 std::string(d.name) + " " + std::string(d.arguments) + "}";
        s += "]";
    }
    return s;
}

// What a parser that has seen nothing before reads from `json`, or the error.
std::string fresh_parse(const std::string& json) {
    chunk_parser fresh;
    completion_chunk out;
    if (const error_code ec = fresh.parse(json, out))
        return "error: " + ec.message();
    return describe(out);
}

// What `p`, reused from chunk to chunk, reads from `json`, or the error.
std::string reused_parse(chunk_parser& p, const std::string& json) {
    completion_chunk out;
    if (const error_code ec = p.parse(json, out))
        return "error: " + ec.message();
    return describe(out);
}

} // namespace

TEST_CASE("a parser reused across a stream reads each chunk as a fresh one would") {
    // The reused parser reads a chunk shaped like the one before through a shortcut (only
    // the new content is checked): its answers must be those of a full parse, chunk by chunk.
    chunk_parser p;
    std::size_t compared = 0;
    for (const std::string& name : lf_fixtures()) {
        for (const std::string& data : chunks_of(name)) {
            INFO(name << ": " << data);
            CHECK(reused_parse(p, data) == fresh_parse(data));
            ++compared;
        }
    }
    CHECK(compared == 102);
}

TEST_CASE("a chunk shaped like the last one with a new content string is read in full") {
    const std::string head = R"({"id":"c1","object":"chat.completion.chunk","created":7,)"
                             R"("model":"m","choices":[{"index":0,"delta":{"content":")";
    const std::string tail = R"("},"finish_reason":null}]})";
    chunk_parser p;
    const std::vector<std::string> contents = {
        "Hello",
        " w\xC3\xB6rld",         // UTF-8 passes as is
        "",                      // an empty piece
        "esc\\\"aped\\n",        // an escape: read in full, unescaped
        "back",                  // after the escape, the shortcut again
        "\xC3",                  // a cut UTF-8 sequence: malformed, as a full parse says
        "ok",                    //
        "ctl\x01",               // a raw control character: whatever the full parse says
        "\xF0\x9F\x98\x80 emoji" // a four-byte sequence
    };
    for (const std::string& text : contents) {
        const std::string json = head + text + tail;
        INFO(json);
        CHECK(reused_parse(p, json) == fresh_parse(json));
    }
    chunk_parser q;
    (void)reused_parse(q, head + "first" + tail);
    CHECK(reused_parse(q, head + "second" + tail) ==
          "id=c1 model=m created=7 fp= tier= usage= error=- [0 role= content=second refusal= "
          "finish= lp=]");
    CHECK(reused_parse(q, head + "\xC3" + tail) ==
          "error: " + make_error_code(errc::malformed_response).message());

    // The shortcut fills its output field by field: a chunk object that last held another
    // parser's answer (two choices, tool calls, usage, an error) keeps none of it.
    chunk_parser r, other;
    completion_chunk out;
    (void)reused_parse(r, head + "first" + tail);
    REQUIRE_FALSE(other.parse(
        std::string(
            R"({"id":"z","created":1,"system_fingerprint":"fp","service_tier":"t","choices":[)"
            R"({"index":0,"delta":{"tool_calls":[{"index":0,"id":"call","function":{"name":"f"}}]}},)"
            R"({"index":1,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1},)"
            R"("error":{"message":"m"}})"),
        out));
    CHECK_FALSE(out.repeats_last); // read in full
    const std::string json = head + "again" + tail;
    REQUIRE_FALSE(r.parse(json, out));
    CHECK(describe(out) == fresh_parse(json));
    CHECK(out.tool_calls.empty());
    CHECK_FALSE(out.usage);
    CHECK(out.choices[0].content.data() == json.data() + head.size()); // no copy
    CHECK(out.repeats_last);
}

// The engine's stream readers share one workspace (the simdjson parsers) and each keep the
// shape of their own stream's last full read. Streams read in turn through one workspace must
// read as each would alone, and a shortcut's fields must not be views into the workspace's
// string buffer, which another stream's full parse overwrites.
TEST_CASE("parsers sharing a workspace read interleaved streams as parsers of their own") {
    chunk_workspace shared;
    // Every fixture's chunks through one parser each, all of them taking turns, event by event.
    std::vector<std::vector<std::string>> streams;
    for (const std::string& name : lf_fixtures())
        streams.push_back(chunks_of(name));
    std::vector<chunk_parser> parsers;
    for (std::size_t i = 0; i < streams.size(); ++i)
        parsers.emplace_back(shared);
    std::size_t compared = 0;
    for (std::size_t event = 0;; ++event) {
        bool any = false;
        for (std::size_t i = 0; i < streams.size(); ++i) {
            if (event >= streams[i].size())
                continue;
            any = true;
            const std::string& data = streams[i][event];
            INFO(lf_fixtures()[i] << ": " << data);
            CHECK(reused_parse(parsers[i], data) == fresh_parse(data));
            ++compared;
        }
        if (!any)
            break;
    }
    CHECK(compared == 102);

    // Two streams with escaped ids, models and finish reasons (unescaped into the string
    // buffer), each armed for the shortcut, and a third stream's full parse after each of
    // their chunks: each shortcut keeps its own stream's fields, and is still taken (its text
    // a view into its bytes).
    const auto chunk = [](const std::string& id, const std::string& text) {
        return R"({"id":")" + id + R"(","model":")" + id +
               R"(-m\u00e9","choices":[{"index":0,)"
               R"("delta":{"content":")" +
               text + R"("},"finish_reason":")" + id + R"(\n"}]})";
    };
    chunk_parser a(shared), b(shared), c(shared);
    (void)reused_parse(a, chunk(R"(a\/1)", "x"));
    (void)reused_parse(b, chunk(R"(b\/2)", "y"));
    for (int round = 0; round < 3; ++round) {
        for (auto* p : {&a, &b}) {
            const std::string json = chunk(p == &a ? R"(a\/1)" : R"(b\/2)", "piece");
            INFO(json);
            completion_chunk out;
            REQUIRE_FALSE(p->parse(json, out));
            CHECK(out.repeats_last);
            CHECK(describe(out) == fresh_parse(json));
            CHECK(out.choices[0].content.data() == json.data() + json.find("piece"));
            // An escape in the text: never the shortcut, always a full parse.
            const std::string other = chunk(R"(zzzzzzzzzzzzzzzzzzzz\/z)", R"(w\"w)");
            CHECK(reused_parse(c, other).find("id=zzzzzzzzzzzzzzzzzzzz/z") == 0);
        }
    }
}

TEST_CASE("text that would change the chunk's structure is not taken for content") {
    // Same bytes before and after the content, but the middle holds quotes: it is another
    // document (a role field appears) and must be read as one.
    chunk_parser p;
    const std::string base = R"({"choices":[{"delta":{"content":"A"}}],"id":"x"})";
    const std::string tricky = R"({"choices":[{"delta":{"content":"A","role":"B"}}],"id":"x"})";
    const std::string broken = R"({"choices":[{"delta":{"content":"A"}},"oops"}}],"id":"x"})";
    (void)reused_parse(p, base);
    CHECK(reused_parse(p, tricky) == fresh_parse(tricky));
    CHECK(reused_parse(p, tricky).find("role=B content=A") != std::string::npos);
    (void)reused_parse(p, base);
    CHECK(reused_parse(p, broken) == fresh_parse(broken));
    CHECK(reused_parse(p, broken).rfind("error: ", 0) == 0);
    // A chunk whose id differs is no shortcut either.
    (void)reused_parse(p, base);
    const std::string other = R"({"choices":[{"delta":{"content":"A"}}],"id":"y"})";
    CHECK(reused_parse(p, other).find("id=y") != std::string::npos);
}

// Found by tests/fuzz (corpus/stream/regress-empty-data): an event whose data is empty hands
// the parser a view with no buffer at all (a null pointer and no bytes), which it copied with
// memcpy, undefined for a null source even of zero bytes (UBSan: "null pointer passed as
// argument 2").
TEST_CASE("an empty event with no buffer behind it is refused as not JSON") {
    chunk_parser p;
    completion_chunk out;
    CHECK(p.parse(std::string_view{}, out));
    completion_parser whole;
    completion c;
    CHECK(whole.parse(nullptr, 0, 0, c));
    CHECK_FALSE(c.body_is_json);
}

TEST_CASE("chunks keep their fields past a deep unknown field and deep logprobs are refused") {
    // Nesting is followed to 128 levels where a chunk is read or checked (logprobs are copied
    // verbatim, so they are checked whole); an unknown field is skipped at any depth.
    auto nested = [](int levels) {
        std::string v(static_cast<std::size_t>(levels), '[');
        v += std::string(static_cast<std::size_t>(levels), ']');
        return v;
    };
    auto chunk = [](const std::string& extra, const std::string& logprobs) {
        return R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",)"
               R"("choices":[{"index":0,"delta":{"content":"hi"},"logprobs":)" +
               logprobs + R"(,"finish_reason":null}],"extra":)" + extra + "}";
    };
    chunk_parser p;
    for (const int levels : {100, 200, 5000}) {
        INFO(levels);
        const auto out = parse_ok(p, chunk(nested(levels), "null"));
        REQUIRE(out.choices.size() == 1);
        CHECK(out.choices[0].content == "hi");
    }
    const std::string shallow = R"({"content":)" + nested(100) + "}";
    CHECK_FALSE(parse_ok(p, chunk("0", shallow)).choices.empty());
    const std::string deep = R"({"content":)" + nested(200) + "}";
    completion_chunk out;
    CHECK(p.parse(chunk("0", deep), out) == errc::malformed_response);
}

// The stream reader's one-step read of a repeated chunk lying among other bytes: it must
// recognise exactly the chunks the shortcut of `parse` takes (less those it may not: a
// refusal, a line break), find where the chunk ends, and never read past the bytes given.
TEST_CASE("repeat_prefix finds a repeated chunk at the start of a read, and nothing else") {
    const std::string head = R"({"id":"c1","object":"chat.completion.chunk","created":7,)"
                             R"("model":"m","choices":[{"index":2,"delta":{"content":")";
    const std::string tail = R"("},"finish_reason":null}]})";
    chunk_parser p;
    std::uint32_t index = 99;
    std::string_view content = "unset";
    CHECK(p.repeat_prefix(head + "x" + tail, index, content) == 0); // nothing read in full yet
    (void)parse_ok(p, head + "first" + tail);

    const std::string after = "\n\ndata: {\"more\":1}\n\n";
    const std::string bytes = head + " w\xC3\xB6rld" + tail + after;
    CHECK(p.repeat_prefix(bytes, index, content) == bytes.size() - after.size());
    CHECK(index == 2);
    CHECK(content == " w\xC3\xB6rld");
    CHECK(content.data() == bytes.data() + head.size()); // a view, no copy
    // Every shorter read holds no whole chunk: nothing found, nothing set, nothing read past
    // the bytes given (each prefix is its own heap copy, for AddressSanitizer).
    for (std::size_t n = 0; n < bytes.size() - after.size(); ++n) {
        const std::vector<char> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
        index = 99;
        CHECK(p.repeat_prefix({cut.data(), cut.size()}, index, content) == 0);
        CHECK(index == 99);
    }
    const std::string empty = head + tail;
    CHECK(p.repeat_prefix(empty, index, content) == empty.size());
    CHECK(content.empty());
    // Longer text is read sixteen bytes a step: whatever the block its end or its non-ASCII
    // bytes fall in.
    for (const std::string& text : {std::string(15, 'a'),
                                    std::string(16, 'b'),
                                    std::string(17, 'c'),
                                    std::string(40, 'd'),
                                    std::string(20, 'e') + "\xC3\xB6" + std::string(20, 'f'),
                                    "\xE2\x82\xAC" + std::string(30, 'g'),
                                    std::string(31, 'h') + "\xF0\x9F\x98\x80"}) {
        INFO(text);
        const std::string long_bytes = head + text + tail + after;
        CHECK(p.repeat_prefix(long_bytes, index, content) == long_bytes.size() - after.size());
        CHECK(content == text);
    }

    // What the shortcut of `parse` does not take, or the reader may not: each is 0, and the
    // full parse's answer (checked by the other tests) is left to `parse`.
    for (const std::string& text : {std::string("esc\\\"aped"),
                                    std::string("\xC3"),
                                    std::string("ctl\x01"),
                                    std::string("line\nbreak"),
                                    std::string("cr\rhere"),
                                    std::string("quote\"inside"),
                                    std::string(33, 'x') + "\\n",
                                    std::string(16, 'x') + "\x1F",
                                    std::string(17, 'x') + "\xC3",
                                    std::string(5, 'x') + "\xC3" + std::string(20, 'y'),
                                    std::string(16, 'x') + "\xFF" + std::string(3, 'y')}) {
        INFO(text);
        CHECK(p.repeat_prefix(head + text + tail + after, index, content) == 0);
    }
    const std::string other_tail = R"("},"finish_reason":"stop"}]})";
    CHECK(p.repeat_prefix(head + "x" + other_tail, index, content) == 0);
    const std::string other_head = R"({"id":"c2","object":"chat.completion.chunk","created":7,)"
                                   R"("model":"m","choices":[{"index":2,"delta":{"content":")";
    CHECK(p.repeat_prefix(other_head + "x" + tail, index, content) == 0);

    // A chunk read in full that is not a plain content delta leaves nothing to repeat: not
    // even the chunk read in full before it is one.
    chunk_parser d;
    (void)parse_ok(d, head + "first" + tail);
    REQUIRE(d.repeat_prefix(head + "x" + tail, index, content) != 0);
    (void)parse_ok(d, R"({"id":"c1","created":8,"choices":[]})");
    CHECK(d.repeat_prefix(head + "x" + tail, index, content) == 0);
    completion_chunk again;
    REQUIRE_FALSE(d.parse(head + "x" + tail, again));
    CHECK_FALSE(again.repeats_last);

    // The call leaves the parser as it was: the next parse reads as a fresh parser's would.
    const std::string json = head + "next" + tail;
    completion_chunk out;
    REQUIRE_FALSE(p.parse(json, out));
    CHECK(out.repeats_last);
    CHECK(describe(out) == fresh_parse(json));

    // A chunk whose last full read had a refusal, or a line break outside its text, is not
    // for the reader: the refusal would be merged again, the break would end the line.
    chunk_parser r;
    const std::string refusal_head =
        R"({"id":"r","choices":[{"index":0,"delta":{"refusal":"no","content":")";
    const std::string refusal_tail = R"("}}]})";
    (void)parse_ok(r, refusal_head + "a" + refusal_tail);
    REQUIRE_FALSE(r.parse(refusal_head + "b" + refusal_tail, out));
    CHECK(out.repeats_last); // parse's shortcut takes it
    CHECK(r.repeat_prefix(refusal_head + "c" + refusal_tail, index, content) == 0);
    chunk_parser l;
    const std::string broken_head = "{\"id\":\"l\",\r\n\"choices\":[{\"delta\":{\"content\":\"";
    (void)parse_ok(l, broken_head + "a" + refusal_tail);
    REQUIRE_FALSE(l.parse(broken_head + "b" + refusal_tail, out));
    CHECK(out.repeats_last);
    CHECK(l.repeat_prefix(broken_head + "c" + refusal_tail, index, content) == 0);
}
