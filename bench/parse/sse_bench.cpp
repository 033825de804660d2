// The streaming parse stage over a generated OpenAI-style stream (100,000 content deltas
// between a role chunk, a finish chunk, a usage chunk and [DONE]): the SSE framer alone, fed
// the whole body and fed socket-sized reads, then framer + chunk parser + assembler per event,
// then the engine's stream_reader (the same three, with its one-step read of a repeated chunk).
// The events and the assembled answer are checked before anything is timed. Prints MB/s and
// ns per event, best of several rounds (target: the framer at >= 1 GB/s on one core).
#include <sluice/http_response.hpp>
#include <sluice/parse/chunk_parser.hpp>
#include <sluice/parse/sse_parser.hpp>
#include <sluice/parse/stream_assembler.hpp>
#include <sluice/parse/stream_reader.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

namespace {

using namespace sluice;

constexpr std::size_t deltas = 100'000;
constexpr std::size_t read_size = 16 * 1024; // what one socket read typically hands over
const char* const words[] = {" the", " quick", " brown", " fox", " jumps", " over", " a", " dog"};

std::string expected_text() {
    std::string text;
    for (std::size_t i = 0; i < deltas; ++i)
        text += words[i % std::size(words)];
    return text;
}

// The body as OpenAI sends it with stream_options.include_usage, with padding after it as
// the transport's buffer has.
std::string make_stream() {
    const std::string head =
        R"({"id":"chatcmpl-BdKx3l7sP2Qv9Zt1","object":"chat.completion.chunk",)"
        R"("created":1749000000,"model":"gpt-4o-mini-2024-07-18",)"
        R"("service_tier":"default","system_fingerprint":"fp_34a54ae93c",)"
        R"("choices":[)";
    std::string s;
    s += "data: " + head +
         R"({"index":0,"delta":{"role":"assistant","content":"","refusal":null},)"
         R"("logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"mZ"})"
         "\n\n";
    for (std::size_t i = 0; i < deltas; ++i) {
        s += "data: " + head + R"({"index":0,"delta":{"content":")" + words[i % std::size(words)] +
             R"("},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"k2Rt"})"
             "\n\n";
    }
    s += "data: " + head +
         R"({"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],"usage":null})"
         "\n\n";
    s += "data: " + head +
         R"(],"usage":{"prompt_tokens":12,"completion_tokens":100000,"total_tokens":100012}})"
         "\n\n";
    s += "data: [DONE]\n\n";
    s.reserve(s.size() + parse_padding);
    return s;
}

// Framer only; returns the number of events (the last one must be [DONE]).
std::size_t frame(std::string_view body, std::size_t read, bool& done) {
    sse_parser p;
    std::size_t events = 0;
    for (std::size_t at = 0; at < body.size(); at += read) {
        p.put_all(body.substr(at, read), [&](const sse_event& e) {
            ++events;
            done = e.done;
        });
    }
    return p.finish() ? 0 : events;
}

struct full_run {
    std::size_t events = 0;
    bool ok = true;
};

// Framer + chunk parser + assembler. An event lying in the body is parsed in place (the body
// has padding); one that straddled two reads is parsed from the framer's copy. With
// `repeats`, a chunk repeating the parser's last full read merges only its text, as the
// engine's stream_reader does; without, every chunk is merged whole.
full_run frame_parse_assemble(const std::string& body,
                              std::size_t read,
                              chunk_parser& chunks,
                              stream_assembler& assembler,
                              bool repeats = true) {
    sse_parser p;
    completion_chunk chunk;
    assembler.reset();
    full_run r;
    const char* const end = body.data() + body.size();
    for (std::size_t at = 0; at < body.size(); at += read) {
        const std::string_view piece = std::string_view(body).substr(at, read);
        r.ok &= !p.put_all(piece, [&](const sse_event& e) {
            ++r.events;
            if (e.done)
                return;
            const char* d = e.data.data();
            const bool in_body = d >= body.data() && d < end;
            const error_code ec =
                in_body ? chunks.parse(d, e.data.size(), end + parse_padding - d, chunk)
                        : chunks.parse(e.data, chunk);
            const bool repeat = repeats && chunk.repeats_last && !assembler.empty();
            r.ok &= !ec && !(repeat ? assembler.add_repeat(chunk) : assembler.add(chunk));
        });
    }
    r.ok &= !p.finish();
    return r;
}

// The engine's reader over socket-sized reads; false when any read or the end failed.
bool read_stream(const std::string& body, std::size_t read, stream_reader& reader) {
    reader.reset();
    const auto at = std::chrono::steady_clock::now();
    for (std::size_t at_byte = 0; at_byte < body.size(); at_byte += read) {
        if (reader.on_body(std::string_view(body).substr(at_byte, read), at))
            return false;
    }
    return !reader.finish();
}

template <class F>
double best_seconds(int rounds, F&& f) {
    double best = 1e9;
    for (int i = 0; i < rounds; ++i) {
        const auto start = std::chrono::steady_clock::now();
        f();
        const std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
        best = std::min(best, d.count());
    }
    return best;
}

} // namespace

int main() {
    const std::string body = make_stream();
    const std::size_t want_events = deltas + 4;

    // Check the answers first.
    bool done = false;
    for (const std::size_t read : {body.size(), read_size, std::size_t(1000)}) {
        done = false;
        if (frame(body, read, done) != want_events || !done) {
            std::printf("framer gives the wrong events with reads of %zu bytes\n", read);
            return 1;
        }
    }
    chunk_parser chunks;
    stream_assembler assembler;
    for (const bool repeats : {false, true}) {
        const full_run check = frame_parse_assemble(body, read_size, chunks, assembler, repeats);
        const completion c = assembler.result();
        if (!check.ok || check.events != want_events || c.choices.size() != 1 ||
            c.choices[0].content != expected_text() || c.choices[0].finish_reason != "length" ||
            !c.usage || c.usage->completion_tokens != deltas) {
            std::printf("the assembled answer is wrong: not timed\n");
            return 1;
        }
    }
    stream_reader reader;
    completion c;
    if (!read_stream(body, read_size, reader) || reader.events() != want_events ||
        reader.result(c, completion_fields::all) || c.choices.size() != 1 ||
        c.choices[0].content != expected_text() || c.choices[0].finish_reason != "length" ||
        !c.usage || c.usage->completion_tokens != deltas ||
        reader.token_gaps().size() != deltas - 1) {
        std::printf("the stream reader's answer is wrong: not timed\n");
        return 1;
    }

    const double mb = static_cast<double>(body.size()) / 1e6;
    const double n = static_cast<double>(want_events);
    const double whole = best_seconds(10, [&] { frame(body, body.size(), done); });
    const double reads = best_seconds(10, [&] { frame(body, read_size, done); });
    const double whole_merges =
        best_seconds(5, [&] { frame_parse_assemble(body, read_size, chunks, assembler, false); });
    const double full =
        best_seconds(5, [&] { frame_parse_assemble(body, read_size, chunks, assembler); });
    const double engine = best_seconds(5, [&] { read_stream(body, read_size, reader); });

    std::printf("stream: %zu events, %.1f MB (%.0f bytes/event), answers checked\n",
                want_events,
                mb,
                static_cast<double>(body.size()) / n);
    std::printf("%-50s %10s %10s\n", "stage", "MB/s", "ns/event");
    auto row = [&](const char* name, double s) {
        std::printf("%-50s %10.0f %10.1f\n", name, mb / s, s * 1e9 / n);
    };
    row("sse framer, whole body in one put_all", whole);
    row("sse framer, 16 KiB reads", reads);
    row("framer + chunk_parser + assembler (add), 16 KiB", whole_merges);
    row("framer + chunk_parser + assembler, 16 KiB", full);
    row("stream_reader (the engine's), 16 KiB", engine);
    std::printf("framer target: >= 1000 MB/s on one core\n");
    return 0;
}
