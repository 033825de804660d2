#include "unit/parse/sse_feed.hpp"

#include <sluice/parse/completion_parser.hpp>
#include <sluice/parse/stream_assembler.hpp>
#include <sluice/parse/stream_reader.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

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

namespace {

// Everything a caller of a stream reader sees of one stream.
struct reader_outcome {
    error_code body_ec; // the first failure of on_body (reading stops there)
    error_code finish_ec;
    std::string body;
    std::uint64_t events = 0;
    bool done = false;
    std::size_t gaps = 0;
    bool first_token = false;
    std::string deltas; // each delta as "choice:content|refusal|tool;"
    std::string description;
    bool operator==(const reader_outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const reader_outcome& r) {
    return os << "on_body '" << r.body_ec.message() << "', finish '" << r.finish_ec.message()
              << "', " << r.description << ", gaps " << r.gaps << ", deltas " << r.deltas
              << ", body " << r.body;
}

reader_outcome read_pieces(stream_reader& reader, const std::vector<std::string_view>& pieces) {
    reader_outcome r;
    const std::function<void(const stream_delta&)> record = [&](const stream_delta& d) {
        r.deltas += std::to_string(d.choice) + ":" + std::string(d.content) + "|" +
                    std::string(d.refusal) + (d.tool_call ? "|tool;" : ";");
    };
    reader.reset();
    reader.on_delta(&record);
    const auto at = std::chrono::steady_clock::now();
    for (const std::string_view piece : pieces) {
        // Each read from its own copy, freed after it, as a socket buffer is reused.
        const std::vector<char> copy(piece.begin(), piece.end());
        r.body_ec = reader.on_body({copy.data(), copy.size()}, at);
        if (r.body_ec)
            break;
    }
    reader.on_delta(nullptr);
    if (!r.body_ec)
        r.finish_ec = reader.finish(r.body);
    r.events = reader.events();
    r.done = reader.done();
    r.gaps = reader.token_gaps().size();
    r.first_token = reader.first_token() != stream_reader::time_point{};
    r.description = reader.describe();
    return r;
}

// One byte a read: no event ever lies whole in a read, so every one goes through the framer
// and the chunk parser, the path the one-step read of a repeated chunk must agree with.
reader_outcome read_bytewise(stream_reader& reader, std::string_view stream) {
    std::vector<std::string_view> pieces;
    for (std::size_t i = 0; i < stream.size(); ++i)
        pieces.push_back(stream.substr(i, 1));
    return read_pieces(reader, pieces);
}

} // namespace

// The reader reads an event "data: " + a chunk repeating the last one read in full but for
// its text in one step when it lies whole in a read (stream_reader::take_repeats). Every
// stream here, near misses included, must give what the framer and the chunk parser give
// reading it a byte at a time: outcome, events, deltas, timings and the assembled answer.
TEST_CASE("a repeated chunk read in one step gives what the framer and parser give") {
    const auto chunk = [](std::string_view text, std::string_view finish = "null") {
        return std::string(R"({"id":"c","object":"chat.completion.chunk","created":3,)"
                           R"("model":"m","choices":[{"index":0,"delta":{"content":")") +
               std::string(text) + R"("},"finish_reason":)" + std::string(finish) + "}]}";
    };
    const std::string start =
        "data: {\"id\":\"c\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{"
        "\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
        "data: " +
        chunk("Hello") + "\n\n";
    const std::string end = "data: " + chunk("", "\"stop\"") + "\n\ndata: [DONE]\n\n";
    const std::string repeat = "data: " + chunk(" again") + "\n\n";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"plain repeats", start + repeat + repeat + "data: " + chunk("") + "\n\n" + end},
        {"no space after the colon", start + "data:" + chunk(" tight") + "\n\n" + repeat + end},
        {"two spaces after the colon", start + "data:  " + chunk(" wide") + "\n\n" + end},
        {"an escape", start + "data: " + chunk("say \\\"hi\\\"") + "\n\n" + repeat + end},
        {"UTF-8", start + "data: " + chunk(" gr\xC3\xBC\xC3\x9F") + "\n\n" + repeat + end},
        {"long text",
         start + "data: " + chunk(std::string(40, 'x') + "\xC3\xB6 y") + "\n\n" + repeat + end},
        {"an escape after 16 bytes",
         start + "data: " + chunk(std::string(20, 'x') + "\\t") + "\n\n" + repeat + end},
        {"a cut UTF-8 sequence after 16 bytes",
         start + "data: " + chunk(std::string(18, 'x') + "\xC3") + "\n\n" + end},
        {"a cut UTF-8 sequence", start + "data: " + chunk(" \xC3") + "\n\n" + end},
        {"a raw control character", start + "data: " + chunk("tab\there") + "\n\n" + end},
        {"an unescaped quote", start + "data: " + chunk("a\"b") + "\n\n" + end},
        {"CRLF line ends", start + "data: " + chunk(" crlf") + "\r\n\r\n" + repeat + end},
        {"CR line ends", start + "data: " + chunk(" cr") + "\r\r" + repeat + end},
        {"one LF only", start + "data: " + chunk(" one") + "\n" + repeat + end},
        {"a second data line", start + "data: " + chunk(" two") + "\ndata: x\n\n" + end},
        {"bytes after the JSON", start + "data: " + chunk(" extra") + " {}\n\n" + end},
        {"trailing spaces", start + "data: " + chunk(" sp") + "  \n\n" + repeat + end},
        {"an event type first", start + "event: note\n" + repeat + repeat + end},
        {"an id first", start + "id: 7\n" + repeat + repeat + end},
        {"a comment first", start + ": keep-alive\n\n" + repeat + end},
        {"a field with no colon first", start + "data\n" + repeat + end},
        {"repeats after [DONE]", start + repeat + "data: [DONE]\n\n" + repeat + repeat},
        {"no [DONE]", start + repeat + repeat},
        {"cut inside a repeat", start + repeat + repeat.substr(0, 40)},
        {"cut before the blank line", start + repeat + repeat.substr(0, repeat.size() - 1)},
        // `created` changes between two reads of the same chunk: the second is merged whole.
        {"a chunk read in full between two alike",
         start + "data: {\"id\":\"c\",\"created\":9,\"choices\":[]}\n\n" + repeat + repeat +
             "data: [DONE]\n\n"},
        {"another choice",
         start + "data: " + std::string(R"({"id":"c","object":"chat.)") +
             R"(completion.chunk","created":3,"model":"m","choices":[{"index":1,)" +
             R"("delta":{"content":"other"},"finish_reason":null}]})" + "\n\n" + repeat + end},
    };
    stream_reader reused;
    for (const auto& [name, stream] : cases) {
        INFO(name << ": " << stream);
        stream_reader whole, bytewise;
        const reader_outcome expected = read_bytewise(bytewise, stream);
        CHECK(read_pieces(whole, {stream}) == expected);
        CHECK(read_pieces(reused, {stream}) == expected); // after the other streams
        // Split at every point: the part before a split takes the one-step read, the rest
        // the framer.
        for (std::size_t at = 1; at < stream.size(); ++at) {
            stream_reader split;
            const std::string_view s = stream;
            const reader_outcome got = read_pieces(split, {s.substr(0, at), s.substr(at)});
            INFO("split at " << at);
            CHECK(got == expected);
            if (got != expected)
                break;
        }
    }
    // The cases above that succeed assemble as whole merges do.
    stream_reader reader;
    const reader_outcome plain = read_pieces(reader, {cases.front().second});
    REQUIRE_FALSE(plain.body_ec);
    REQUIRE_FALSE(plain.finish_ec);
    CHECK(plain.body == assemble(cases.front().second).json);
    CHECK(plain.events == 7);
    CHECK(plain.gaps == 2); // "Hello", then " again" twice: empty pieces carry no content
    CHECK(plain.deltas == "0:Hello|;0: again|;0: again|;");
}

// A repeated chunk's line over the framer's bound is the framer's to refuse, not read in one
// step past it.
TEST_CASE("a repeated chunk longer than max_event_bytes is refused as the framer refuses it") {
    const std::string head =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"";
    const std::string tail = "\"}}]}\n\n";
    const std::string first = head + "ab" + tail;
    sse_parser_options opts;
    opts.max_event_bytes = first.size() - 2; // the line, without its "\n\n"
    stream_reader reader(opts);
    std::string body;
    const std::string fits = first + head + "cd" + tail;
    REQUIRE_FALSE(reader.on_body(fits, {}));
    REQUIRE_FALSE(reader.finish(body));
    CHECK(body.find("\"content\":\"abcd\"") != std::string::npos);
    reader.reset();
    CHECK(reader.on_body(fits + head + "efg" + tail, {}) == errc::event_too_large);
    CHECK(reader.events() == 2);
}
