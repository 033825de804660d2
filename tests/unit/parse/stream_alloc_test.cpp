// Steady state of the streaming parse stage costs no heap allocation: the framer, the chunk
// parser and the assembler reuse their buffers from one stream to the next. Counted through a
// replacement of the global operator new, which serves this whole test executable (it only
// counts, then allocates as usual). Not in the sanitizer build: AddressSanitizer keeps its own
// operator new, and memory allocated there must not reach this free().
#ifndef SLUICE_SANITIZED
#include "unit/parse/sse_feed.hpp"

#include <sluice/parse/completion_parser.hpp>
#include <sluice/parse/stream_reader.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::size_t> allocations{0};
} // namespace

void* operator new(std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size ? size : 1))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

using namespace sluice;
using namespace sluice::test;

namespace {

struct pipeline {
    sse_parser framer;
    chunk_parser chunks;
    completion_chunk chunk;
    stream_assembler assembler;
    std::size_t events = 0;
    bool failed = false;

    // Feeds `stream` in reads of `read_size` bytes, as a socket would deliver it.
    void run(std::string_view stream, std::size_t read_size) {
        framer.reset();
        assembler.reset();
        for (std::size_t at = 0; at < stream.size(); at += read_size) {
            const error_code ec =
                framer.put_all(stream.substr(at, read_size), [&](const sse_event& e) {
                    ++events;
                    if (e.done)
                        return;
                    failed |= !!chunks.parse(e.data, chunk);
                    failed |= !!assembler.add(chunk);
                });
            failed |= !!ec;
        }
        failed |= !!framer.finish();
    }
};

} // namespace

TEST_CASE("a second stream through framer, chunk parser and assembler allocates nothing") {
    std::string stream;
    for (const char* name : {"openai_content.sse", "openai_tool_call.sse", "logprobs.sse"})
        stream += sse_fixture(name);
    std::string json;
    for (const std::size_t read_size : {std::size_t(1), std::size_t(7), std::size_t(1000)}) {
        INFO("reads of " << read_size);
        pipeline p;
        p.run(stream, read_size); // grows the buffers
        json.clear();
        p.assembler.append_json(json);
        const std::string first = json;
        json.clear();
        json.reserve(first.size());

        const std::size_t before = allocations.load();
        p.run(stream, read_size);
        p.assembler.append_json(json);
        const std::size_t during = allocations.load() - before;

        CHECK_FALSE(p.failed);
        CHECK(p.events == 2 * 27); // 12 + 8 + 4 chunks and three [DONE], each run
        CHECK(json == first);
        CHECK(during == 0);
    }
}

// The engine's reader, which takes most events of a stream in one step (a chunk repeating the
// last one but for its text): reused for a second stream, it allocates nothing either, the
// token gaps it records included.
TEST_CASE("a second stream through a reused stream_reader allocates nothing") {
    // The fixture's chunks but its [DONE], then 300 chunks alike but for their text.
    std::string stream = sse_fixture("openai_content.sse");
    stream.erase(stream.find("data: [DONE]"));
    const std::string repeat =
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word\"},"
        "\"finish_reason\":null}]}\n\n";
    for (int i = 0; i < 300; ++i)
        stream += repeat;
    stream += "data: [DONE]\n\n";
    for (const std::size_t read_size : {std::size_t(1), std::size_t(7), std::size_t(16384)}) {
        INFO("reads of " << read_size);
        stream_reader reader;
        const auto read = [&] {
            reader.reset();
            const auto at = std::chrono::steady_clock::now();
            bool failed = false;
            for (std::size_t pos = 0; pos < stream.size(); pos += read_size)
                failed |= !!reader.on_body(std::string_view(stream).substr(pos, read_size), at);
            return !failed && !reader.finish();
        };
        REQUIRE(read()); // grows the buffers
        const std::size_t before = allocations.load();
        const bool ok = read();
        const std::size_t during = allocations.load() - before;
        CHECK(ok);
        CHECK(reader.events() == 12 + 300 + 1);
        CHECK(reader.token_gaps().size() > 300);
        CHECK(during == 0);
    }
}

// The batch runner's parse of a whole answer: once the parser's buffers have grown, reading
// usage out of an answer (and checking the rest of it) allocates nothing.
TEST_CASE("a usage-only parse of a whole answer allocates nothing in steady state") {
    std::string body =
        R"({"id":"chatcmpl-0123456789abcdefghijklmnop","object":"chat.completion","model":)"
        R"("gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant",)"
        R"("content":"A reply long enough not to fit in any small-string buffer at all."},)"
        R"("finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":16,)"
        R"("total_tokens":28}})";
    body.reserve(body.size() + parse_padding);
    completion_parser p;
    completion c;
    REQUIRE_FALSE(p.parse(body, c, completion_fields::usage)); // warm-up: buffers grow here
    const std::size_t before = allocations.load();
    for (int i = 0; i < 100; ++i) {
        c = completion{};
        REQUIRE_FALSE(p.parse(body, c, completion_fields::usage));
        REQUIRE(c.usage);
        CHECK(c.usage->total_tokens == 28);
    }
    CHECK(allocations.load() - before == 0);
    // The full parse copies the model name and the content, each longer than a std::string
    // holds in place: that is what it costs. The id and the one choice are held inside the
    // completion.
    const std::size_t full_before = allocations.load();
    REQUIRE_FALSE(p.parse(body, c));
    CHECK(allocations.load() - full_before == 2);
    CHECK(c.id == "chatcmpl-0123456789abcdefghijklmnop");
    REQUIRE(c.choices.size() == 1);
}

#endif // SLUICE_SANITIZED
