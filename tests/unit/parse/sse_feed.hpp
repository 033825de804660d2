#pragma once

// Feeding event streams to the parse stage in pieces, for the tests of sse_parser,
// chunk_parser and stream_assembler.

#include "support/temp_dir.hpp"

#include <sluice/parse/chunk_parser.hpp>
#include <sluice/parse/sse_parser.hpp>
#include <sluice/parse/stream_assembler.hpp>

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::test {

// Appended piece by piece: GCC 12 warns falsely (-Warray-bounds) on `string + "..." + name`.
inline std::string sse_fixture(const std::string& name) {
    std::string path = SLUICE_TEST_FIXTURES;
    path += "/sse/";
    path += name;
    return read_file(path);
}

/// The fixtures that are plain OpenAI-style streams with LF line endings.
inline const std::vector<std::string>& lf_fixtures() {
    static const std::vector<std::string> names = {"openai_content.sse",
                                                   "openai_tool_call.sse",
                                                   "parallel_tool_calls.sse",
                                                   "n2.sse",
                                                   "refusal.sse",
                                                   "vllm.sse",
                                                   "llamacpp.sse",
                                                   "error_mid_stream.sse",
                                                   "logprobs.sse",
                                                   "parallel_tool_calls_interleaved.sse",
                                                   "n2_interleaved.sse",
                                                   "azure_async_filter.sse",
                                                   "refusal_logprobs.sse"};
    return names;
}

/// An event copied out of the parser.
struct recorded_event {
    std::string type, data, id;
    bool done = false;
    bool operator==(const recorded_event&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const recorded_event& e) {
    return os << "{" << e.type << ", id " << e.id << (e.done ? ", done" : "") << ": " << e.data
              << "}";
}

/// What a whole stream gave.
struct feed_result {
    std::vector<recorded_event> events;
    error_code ec;  ///< the failure of a put, if any (feeding stops there)
    error_code end; ///< finish() at the end
    std::optional<std::chrono::milliseconds> retry;
    bool operator==(const feed_result&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const feed_result& r) {
    os << r.events.size() << " events, ec '" << r.ec.message() << "', end '" << r.end.message()
       << "'";
    for (const auto& e : r.events)
        os << "\n  " << e;
    return os;
}

/// Feeds `pieces` in order, each from its own heap copy freed right after it has been fed,
/// so that a view the parser kept into an earlier read shows up under AddressSanitizer.
inline feed_result feed(const std::vector<std::string_view>& pieces,
                        const sse_parser_options& opts = {}) {
    sse_parser p(opts);
    feed_result r;
    for (std::string_view piece : pieces) {
        if (piece.empty())
            continue;
        const std::vector<char> copy(piece.begin(), piece.end());
        std::string_view rest(copy.data(), copy.size());
        while (!rest.empty()) {
            const std::size_t n = p.put(rest, r.ec);
            if (r.ec) {
                r.end = p.finish();
                return r;
            }
            rest.remove_prefix(n);
            if (p.has_event()) {
                const sse_event& e = p.event();
                r.events.push_back({std::string(e.type),
                                    std::string(e.data),
                                    std::string(e.last_event_id),
                                    e.done});
            }
        }
    }
    r.end = p.finish();
    r.retry = p.retry();
    return r;
}

inline feed_result feed_whole(std::string_view all, const sse_parser_options& opts = {}) {
    return feed({all}, opts);
}

/// `all` in two reads, split at `at`.
inline feed_result
feed_split(std::string_view all, std::size_t at, const sse_parser_options& opts = {}) {
    return feed({all.substr(0, at), all.substr(at)}, opts);
}

/// `all` one byte per read.
inline feed_result feed_bytewise(std::string_view all, const sse_parser_options& opts = {}) {
    std::vector<std::string_view> pieces;
    for (std::size_t i = 0; i < all.size(); ++i)
        pieces.push_back(all.substr(i, 1));
    return feed(pieces, opts);
}

/// `text` with every LF replaced by `ending`.
inline std::string with_endings(std::string_view text, std::string_view ending) {
    std::string out;
    for (char c : text) {
        if (c == '\n')
            out += ending;
        else
            out += c;
    }
    return out;
}

/// Runs a whole stream through framer, chunk parser and assembler, as the engine will.
struct assembled {
    error_code ec; ///< first failure of any stage
    bool done = false;
    std::size_t chunks = 0;
    completion result;
    std::string json;
};

inline assembled assemble(std::string_view stream) {
    assembled a;
    sse_parser framer;
    chunk_parser chunks;
    completion_chunk chunk;
    stream_assembler assembler;
    a.ec = framer.put_all(stream, [&](const sse_event& e) {
        if (a.ec || a.done || (a.done = e.done))
            return;
        a.ec = chunks.parse(e.data, chunk);
        if (!a.ec)
            a.ec = assembler.add(chunk);
        ++a.chunks;
    });
    if (!a.ec)
        a.ec = framer.finish();
    a.result = assembler.result();
    a.json = assembler.json();
    return a;
}

} // namespace sluice::test
