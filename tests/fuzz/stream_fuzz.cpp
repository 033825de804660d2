// The stream chunk parser and assembler (src/parse/chunk_parser.cpp, stream_assembler.cpp,
// stream_reader.cpp) on arbitrary bytes, two ways:
//  - the input as one chunk's JSON: chunk_parser then stream_assembler, whose JSON, when the
//    chunk was taken, must be a body the completion parser reads as JSON;
//  - the input as an event-stream body read by stream_reader, whole and in three reads split
//    at points taken from the data: the same outcome, event count and assembled body; and
//    the fields the reader gives the engine (stream_reader::result) are what the completion
//    parser reads from that body, its refusal included, for both completion_fields.
#include "fuzz_support.hpp"

#include <sluice/http_response.hpp>
#include <sluice/parse/chunk_parser.hpp>
#include <sluice/parse/completion_parser.hpp>
#include <sluice/parse/stream_assembler.hpp>
#include <sluice/parse/stream_reader.hpp>

#include <chrono>
#include <vector>

using namespace sluice;

namespace {

// The parser's reading of `body` and the reader's own answer agree: error and every field.
bool same_as_parser(const stream_reader& reader, const std::string& body) {
    static completion_parser parser;
    for (const completion_fields fields : {completion_fields::all, completion_fields::usage}) {
        completion read, taken;
        const error_code read_ec = parser.parse(body, read, fields);
        const error_code taken_ec = reader.result(taken, fields);
        if (read_ec != taken_ec || read.id != taken.id || read.model != taken.model ||
            read.body_is_json != taken.body_is_json ||
            read.usage.has_value() != taken.usage.has_value() ||
            read.error.has_value() != taken.error.has_value() ||
            read.choices.size() != taken.choices.size())
            return false;
        if (read.usage && (read.usage->prompt_tokens != taken.usage->prompt_tokens ||
                           read.usage->completion_tokens != taken.usage->completion_tokens ||
                           read.usage->total_tokens != taken.usage->total_tokens))
            return false;
        if (read.error &&
            (read.error->message != taken.error->message || read.error->type != taken.error->type ||
             read.error->code != taken.error->code || read.error->param != taken.error->param))
            return false;
        for (std::size_t i = 0; i < read.choices.size(); ++i) {
            const choice& a = read.choices[i];
            const choice& b = taken.choices[i];
            if (a.index != b.index || a.content != b.content ||
                a.finish_reason != b.finish_reason || a.has_tool_calls != b.has_tool_calls ||
                a.has_refusal != b.has_refusal)
                return false;
        }
    }
    return true;
}

struct read_outcome {
    error_code body_ec; // the first failure of on_body, if any (reading stops there)
    error_code finish_ec;
    std::string body;
    std::uint64_t events = 0;
    bool done = false;
    bool operator==(const read_outcome&) const = default;
};

read_outcome read_stream(const std::vector<std::string_view>& pieces) {
    stream_reader reader;
    read_outcome r;
    const auto at = std::chrono::steady_clock::now();
    for (std::string_view piece : pieces) {
        if (piece.empty())
            continue;
        // Each read from its own copy, freed after it, as a socket buffer is reused.
        const std::vector<char> copy(piece.begin(), piece.end());
        r.body_ec = reader.on_body({copy.data(), copy.size()}, at);
        if (r.body_ec)
            break;
    }
    if (!r.body_ec)
        r.finish_ec = reader.finish(r.body);
    if (!r.body_ec && !r.finish_ec)
        SLUICE_FUZZ_CHECK(same_as_parser(reader, r.body));
    r.events = reader.events();
    r.done = reader.done();
    return r;
}

bool reads_as_json(const std::string& body) {
    static completion_parser parser;
    std::string padded;
    padded.reserve(body.size() + parse_padding);
    padded = body;
    return parser.is_json(padded);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);

    {
        static chunk_parser chunks;
        completion_chunk chunk;
        if (!chunks.parse(in, chunk)) {
            // Not checked: that a chunk taken is JSON. The hot path skips unknown fields
            // unread by design (src/parse/chunk_parser.cpp), so garbage there passes; what
            // must hold is that the answer made of it is JSON.
            stream_assembler assembler;
            if (!assembler.add(chunk) && !assembler.empty())
                SLUICE_FUZZ_CHECK(reads_as_json(assembler.json()));
        }
    }

    const std::size_t a = fuzz::split_point(in, 1);
    const std::size_t b = fuzz::split_point(in, 2);
    const std::size_t lo = std::min(a, b), hi = std::max(a, b);
    const read_outcome whole = read_stream({in});
    const read_outcome split =
        read_stream({in.substr(0, lo), in.substr(lo, hi - lo), in.substr(hi)});
    SLUICE_FUZZ_CHECK(whole == split);
    if (!whole.body_ec && !whole.finish_ec)
        SLUICE_FUZZ_CHECK(reads_as_json(whole.body));
    return 0;
}
