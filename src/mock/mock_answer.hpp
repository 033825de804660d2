#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

// The two forms of one successful answer of the mock, built without I/O: the
// `chat.completion` body, and the `chat.completion.chunk` stream as a schedule of pieces.

namespace sluice::detail {

// What both forms of one answer share.
struct answer_shape {
    std::string id;
    long long created = 0;
    std::string model;
    std::uint64_t n = 1; // choices
    std::uint64_t completion_tokens = 0;
    const char* finish = "stop";
    std::string usage;          // the "usage":{...} member
    bool include_usage = false; // stream a usage chunk (stream_options.include_usage)
};

// The answer text's i-th word; the text is these words joined by single spaces.
std::string_view answer_word(std::uint64_t i) noexcept;

// The `chat.completion` body.
std::string completion_body(const answer_shape& a);

// One HTTP chunk of a streamed answer: whole SSE events, due `at` after the request.
struct stream_piece {
    std::chrono::microseconds at{0};
    std::string bytes; // never empty: an empty chunk would end the chunked body
};

// How a streamed answer ends after its last piece: the chunked body's last chunk, or a
// close of the connection without it.
enum class stream_end { done, cut };

// When a stream's pieces are due, from the request.
struct stream_timing {
    std::chrono::microseconds head{0};        // the response head and the role chunks
    std::chrono::microseconds first_token{0}; // from the head to the first content chunk
    std::chrono::microseconds interval{0};    // between content chunks (the mean if exponential)
    bool exponential = false;
    std::uint32_t tokens_per_chunk = 1;
};

// The injected fault a stream gets, if any: an error event, or a cut, after about half its
// content chunks.
enum class stream_fault { none, error, cut };

// A streamed answer: its pieces in order, how it ends, and when (for a cut, the time the
// next piece would have been due).
struct stream_schedule {
    std::vector<stream_piece> pieces;
    stream_end end = stream_end::done;
    std::chrono::microseconds end_at{0};
};

// The schedule of a streamed answer. Piece 0 carries the role chunk of each choice at
// `t.head`; each content piece the next `t.tokens_per_chunk` words of every choice
// (choices interleaved, as a server generating them together sends them), the first at
// `t.head + t.first_token`, then one per gap; the finish chunks, the usage chunk (when
// `a.include_usage`) and `[DONE]` go in a last piece due with the last content piece.
// Exponential gaps are drawn from `rng`.
stream_schedule build_stream(const answer_shape& a,
                             const stream_timing& t,
                             stream_fault fault,
                             std::mt19937_64& rng);

} // namespace sluice::detail
