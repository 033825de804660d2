#include "unit/parse/sse_feed.hpp"

#include <sluice/parse/completion_parser.hpp>
#include <sluice/parse/stream_assembler.hpp>
#include <sluice/parse/stream_reader.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <string>

using namespace sluice;
using namespace sluice::test;

namespace {

std::string expected_json(const std::string& stream_name) {
    std::string text =
        sse_fixture(stream_name.substr(0, stream_name.size() - 4) + ".expected.json");
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    return text;
}

completion parse_body(const std::string& body) {
    completion_parser p;
    completion c;
    const error_code ec = p.parse(body, c);
    INFO(body << ": " << ec.message());
    REQUIRE_FALSE(ec);
    return c;
}

// The fields a user reads, equal between two completions.
void check_same(const completion& a, const completion& b) {
    CHECK(a.id == b.id);
    CHECK(a.model == b.model);
    REQUIRE(a.choices.size() == b.choices.size());
    for (std::size_t i = 0; i < a.choices.size(); ++i) {
        INFO("choice " << i);
        CHECK(a.choices[i].index == b.choices[i].index);
        CHECK(a.choices[i].content == b.choices[i].content);
        CHECK(a.choices[i].finish_reason == b.choices[i].finish_reason);
        CHECK(a.choices[i].has_tool_calls == b.choices[i].has_tool_calls);
        CHECK(a.choices[i].has_refusal == b.choices[i].has_refusal);
    }
    REQUIRE(a.usage.has_value() == b.usage.has_value());
    if (a.usage) {
        CHECK(a.usage->prompt_tokens == b.usage->prompt_tokens);
        CHECK(a.usage->completion_tokens == b.usage->completion_tokens);
        CHECK(a.usage->total_tokens == b.usage->total_tokens);
    }
    REQUIRE(a.error.has_value() == b.error.has_value());
    if (a.error) {
        CHECK(a.error->message == b.error->message);
        CHECK(a.error->type == b.error->type);
        CHECK(a.error->code == b.error->code);
    }
}

// A chunk for the merge-rule tests; `choice` is the inside of one choices[] entry.
completion_chunk chunk(chunk_parser& p, const std::string& choice) {
    completion_chunk out;
    REQUIRE_FALSE(p.parse(R"({"id":"c","choices":[{)" + choice + "}]}", out));
    return out;
}

} // namespace

TEST_CASE("every stream assembles to the expected chat.completion, valid and re-readable") {
    std::vector<std::string> names = lf_fixtures();
    names.push_back("proxy_mixed_endings.sse");
    for (const std::string& name : names) {
        INFO(name);
        const assembled a = assemble(sse_fixture(name));
        REQUIRE_FALSE(a.ec);
        CHECK(a.done == (name != "error_mid_stream.sse"));
        CHECK(a.json == expected_json(name));
        // Valid JSON for a strict reader, and the fast path reads back what result() says.
        simdjson::dom::parser dom;
        CHECK_FALSE(dom.parse(a.json).error());
        const completion back = parse_body(a.json);
        CHECK(back.body_is_json);
        CHECK(a.result.body_is_json);
        check_same(back, a.result);
    }
}

TEST_CASE("a streamed answer gives the fields its non-streamed twin gives") {
    const std::pair<const char*, const char*> twins[] = {
        {"openai_content.sse", "plain.json"},
        {"openai_tool_call.sse", "tool_calls.json"},
        {"refusal.sse", "refusal.json"},
        {"vllm.sse", "vllm.json"},
        {"llamacpp.sse", "llamacpp.json"},
    };
    for (const auto& [stream, body] : twins) {
        INFO(stream);
        const assembled a = assemble(sse_fixture(stream));
        REQUIRE_FALSE(a.ec);
        std::string path = SLUICE_TEST_FIXTURES;
        path += "/responses/";
        path += body;
        std::string twin = read_file(path);
        check_same(a.result, parse_body(twin));
    }
}

TEST_CASE("content, refusal and tool calls each show only when they came") {
    const completion tools = assemble(sse_fixture("parallel_tool_calls.sse")).result;
    REQUIRE(tools.choices.size() == 1);
    CHECK_FALSE(tools.choices[0].content); // null, as beside tool calls without streaming
    CHECK(tools.choices[0].has_tool_calls);
    CHECK_FALSE(tools.choices[0].has_refusal);
    CHECK_FALSE(tools.usage); // no usage chunk: no usage

    const completion refusal = assemble(sse_fixture("refusal.sse")).result;
    CHECK(refusal.choices[0].has_refusal);
    CHECK_FALSE(refusal.choices[0].content);

    const completion n2 = assemble(sse_fixture("n2.sse")).result;
    REQUIRE(n2.choices.size() == 2);
    CHECK(n2.choices[0].content == "Red.");
    CHECK(n2.choices[1].content == "Green, and then");
    CHECK(n2.choices[1].finish_reason == "length");
    CHECK_FALSE(n2.choices[1].has_tool_calls);
}

TEST_CASE("an error event makes the result an error, with the server's own body") {
    const assembled a = assemble(sse_fixture("error_mid_stream.sse"));
    REQUIRE(a.result.error);
    CHECK(a.result.error->type == "server_error");
    CHECK(a.result.error->message.rfind("The server had an error", 0) == 0);
    CHECK(a.result.choices.empty()); // the text before the error is not an answer
    const completion back = parse_body(a.json);
    REQUIRE(back.error);
    CHECK(back.error->type == "server_error");
}

TEST_CASE("merge rules: empty values never overwrite, pieces append, last usage wins") {
    chunk_parser p;
    stream_assembler s;
    CHECK(s.empty());
    REQUIRE_FALSE(s.add(chunk(p, R"("index":0,"delta":{"role":"assistant","content":"a"})")));
    CHECK_FALSE(s.empty());
    REQUIRE_FALSE(
        s.add(chunk(p, R"("index":0,"delta":{"role":"","content":""},"finish_reason":"stop")")));
    REQUIRE_FALSE(s.add(chunk(p, R"("index":0,"delta":{"content":"b"},"finish_reason":null)")));
    REQUIRE_FALSE(s.add(chunk(
        p,
        R"("index":0,"delta":{"tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"f","arguments":"{"}}]})")));
    REQUIRE_FALSE(s.add(chunk(
        p,
        R"("index":0,"delta":{"tool_calls":[{"index":0,"id":"","function":{"name":"","arguments":"}"}}]})")));
    completion_chunk usage;
    REQUIRE_FALSE(p.parse(
        R"({"id":"","model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})",
        usage));
    REQUIRE_FALSE(s.add(usage));
    CHECK(
        s.json() ==
        R"({"id":"c","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ab","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})");
}

TEST_CASE("a stream the SDK would refuse still assembles to valid JSON") {
    chunk_parser p;
    stream_assembler s;
    // No role, no finish_reason, a tool call with arguments only, a choice index with a gap.
    REQUIRE_FALSE(s.add(chunk(
        p, R"("index":2,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"x"}}]})")));
    CHECK(
        s.json() ==
        R"({"id":"c","object":"chat.completion","created":0,"model":"","choices":[{"index":2,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"","type":"function","function":{"name":"","arguments":"x"}}]},"logprobs":null,"finish_reason":null}]})");
    const completion c = s.result();
    REQUIRE(c.choices.size() == 1);
    CHECK(c.choices[0].index == 2);
}

TEST_CASE("text that needs escaping comes out as valid JSON holding the same text") {
    chunk_parser p;
    stream_assembler s;
    REQUIRE_FALSE(s.add(
        chunk(p, R"("index":0,"delta":{"content":"say \"hi\"\n\ttab \\ \u0001 caf\u00e9"})")));
    REQUIRE_FALSE(s.add(chunk(p, R"("index":0,"delta":{"content":" \ud83d\ude00 </script>"})")));
    const std::string json = s.json();
    const completion back = parse_body(json);
    REQUIRE(back.choices.size() == 1);
    CHECK(back.choices[0].content ==
          "say \"hi\"\n\ttab \\ \x01 caf\xC3\xA9 \xF0\x9F\x98\x80 </script>");
    CHECK(s.result().choices[0].content == back.choices[0].content);
}

TEST_CASE("an index past max_index is refused and merges nothing") {
    chunk_parser p;
    stream_assembler s;
    CHECK(s.add(chunk(p, R"("index":1024,"delta":{"content":"x"})")) == errc::malformed_response);
    CHECK(s.add(chunk(p, R"("index":0,"delta":{"tool_calls":[{"index":4000000000}]})")) ==
          errc::malformed_response);
    CHECK(s.empty());
    CHECK(s.result().choices.empty());
    CHECK_FALSE(s.add(chunk(p, R"("index":1023,"delta":{"content":"x"})")));
    CHECK(s.result().choices.size() == 1);
}

TEST_CASE("reset makes the assembler as good as new") {
    const std::string a = sse_fixture("parallel_tool_calls.sse");
    const std::string b = sse_fixture("n2.sse");
    stream_assembler s;
    chunk_parser p;
    completion_chunk c;
    for (const std::string* stream : {&a, &b, &a}) {
        s.reset();
        sse_parser framer;
        REQUIRE_FALSE(framer.put_all(*stream, [&](const sse_event& e) {
            if (!e.done && !p.parse(e.data, c))
                CHECK_FALSE(s.add(c));
        }));
        CHECK(s.json() == assemble(*stream).json);
    }
}

namespace {

// Every field of two completions equal, the error's `param` and `body_is_json` included.
void check_identical(const completion& a, const completion& b) {
    check_same(a, b);
    if (a.error && b.error)
        CHECK(a.error->param == b.error->param);
    CHECK(a.body_is_json == b.body_is_json);
}

} // namespace

// The engine takes result(out, fields) instead of parsing the assembled body again: for
// every stream, what it says must be what the parser says of append_json's text, the
// parser's refusals included (the engine reports those as it reports a refused whole answer).
TEST_CASE("result(fields) is what the parser reads from the assembled body, refusals too") {
    std::vector<std::string> streams;
    std::vector<std::string> names = lf_fixtures();
    names.push_back("proxy_mixed_endings.sse");
    for (const std::string& name : names)
        streams.push_back(sse_fixture(name));
    const char* made[] = {
        // An error event whose error is a string: JSON, but no error object.
        "data: {\"error\":\"overloaded\"}\n\n",
        // Text, then a string error.
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
        "data: {\"error\":\"overloaded\"}\n\n",
        // An error object with a numeric code and a param, after text.
        "data: {\"id\":\"i\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
        "data: {\"error\":{\"message\":\"m\",\"type\":\"t\",\"code\":429,\"param\":\"p\"}}\n\n",
        // A usage chunk alone: neither choices nor an error.
        "data: {\"id\":\"u\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,"
        "\"completion_tokens\":2,\"total_tokens\":3}}\n\n",
        // Chunks with empty choices only.
        "data: {\"id\":\"e\",\"model\":\"m\",\"choices\":[]}\n\n",
        // No id, no model, a choice index with a gap, usage with details.
        "data: {\"choices\":[{\"index\":2,\"delta\":{\"content\":\"x\"},\"finish_reason\":"
        "\"length\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1,"
        "\"total_tokens\":8,\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
        // Escapes in every kept string.
        "data: {\"id\":\"a\\\"b\",\"model\":\"m\\u00e9\",\"choices\":[{\"index\":0,\"delta\":"
        "{\"role\":\"assistant\",\"content\":\"q\\\"\\\\\\n\\u0001\"},\"finish_reason\":"
        "\"st\\u006fp\"}]}\n\n",
        // A refusal and no content.
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"no\"},\"finish_reason\":"
        "\"stop\"}]}\n\n",
    };
    for (const char* s : made)
        streams.emplace_back(s);
    completion_parser parser;
    for (const std::string& stream : streams) {
        INFO(stream);
        sse_parser framer;
        chunk_parser chunks;
        completion_chunk chunk;
        stream_assembler assembler;
        REQUIRE_FALSE(framer.put_all(stream, [&](const sse_event& e) {
            if (!e.done) {
                REQUIRE_FALSE(chunks.parse(e.data, chunk));
                REQUIRE_FALSE(assembler.add(chunk));
            }
        }));
        const std::string body = assembler.json();
        for (const completion_fields fields : {completion_fields::all, completion_fields::usage}) {
            INFO("fields " << static_cast<int>(fields));
            completion read, taken;
            const error_code read_ec = parser.parse(body, read, fields);
            const error_code taken_ec = assembler.result(taken, fields);
            CHECK(taken_ec == read_ec);
            check_identical(taken, read);
        }
    }
}

// The reader merges a chunk that repeats the chunk parser's last full read but for its text
// through add_repeat, and keeps its chunk parser from one stream to the next (the engine
// reuses readers): every stream must still assemble as a fresh assembler merging every chunk
// whole assembles it, whichever stream came before.
TEST_CASE("a reused stream reader assembles each stream as whole merges do") {
    std::vector<std::string> streams;
    for (const std::string& name : lf_fixtures())
        streams.push_back(sse_fixture(name));
    // Text without a role: a second run of it is all repeats of the first run's last chunk.
    const std::string same_id =
        "data: {\"id\":\"s\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"a\"}}]}\n\n"
        "data: {\"id\":\"s\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"b\"}}]}\n\n"
        "data: {\"id\":\"s\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"c\"}}]}\n\n";
    streams.push_back(same_id);
    streams.push_back(same_id);
    // A refusal beside the text in every chunk: each piece of both is appended once.
    const std::string both = "data: {\"id\":\"r\",\"choices\":[{\"index\":0,\"delta\":{"
                             "\"content\":\"x\",\"refusal\":\"no\"}}]}\n\n";
    streams.push_back(both + both + both);
    // Another choice index, then the first again.
    streams.push_back(
        "data: {\"id\":\"n\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"p\"}}]}\n\n"
        "data: {\"id\":\"n\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"q\"}}]}\n\n"
        "data: {\"id\":\"n\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"r\"}}]}\n\n"
        "data: {\"id\":\"n\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"s\"}}]}\n\n");
    stream_reader reader;
    const auto at = std::chrono::steady_clock::now();
    for (int round = 0; round < 2; ++round) {
        for (const std::string& stream : streams) {
            INFO("round " << round << ": " << stream);
            reader.reset();
            REQUIRE_FALSE(reader.on_body(stream, at));
            std::string body;
            REQUIRE_FALSE(reader.finish(body));
            CHECK(body == assemble(stream).json);
        }
    }

    // The engine's readers share one chunk workspace, and their streams arrive interleaved:
    // every stream, read in turn with the others a few bytes at a time, assembles as alone.
    chunk_workspace shared;
    for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{64}}) {
        std::vector<std::unique_ptr<stream_reader>> readers;
        for (std::size_t i = 0; i < streams.size(); ++i)
            readers.push_back(std::make_unique<stream_reader>(shared));
        for (std::size_t offset = 0;; offset += piece) {
            bool any = false;
            for (std::size_t i = 0; i < streams.size(); ++i) {
                if (offset >= streams[i].size())
                    continue;
                any = true;
                REQUIRE_FALSE(
                    readers[i]->on_body(std::string_view(streams[i]).substr(offset, piece), at));
            }
            if (!any)
                break;
        }
        for (std::size_t i = 0; i < streams.size(); ++i) {
            INFO(piece << "-byte pieces: " << streams[i]);
            std::string body;
            REQUIRE_FALSE(readers[i]->finish(body));
            CHECK(body == assemble(streams[i]).json);
        }
    }
    CHECK(assemble(both + both).json.find("\"content\":\"xx\",\"refusal\":\"nono\"") !=
          std::string::npos);
}
