#pragma once

#include <sluice/source/token_estimate.hpp>

#include "source/value_spans.hpp"

#include <simdjson.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace sluice::detail {

// What one pass over a chat-completion body found: the counts the token estimate is made of,
// and the top-level fields the input reader judges a line by. One walk serves both, so a line
// is parsed once, not once to be checked and once more to be estimated.
struct body_walk {
    std::uint64_t chars = 0;    // code points of text, plus raw JSON bytes of tool definitions
    std::uint64_t images = 0;   // image parts, charged tokens_per_image each
    std::uint64_t messages = 0; // entries of `messages`
    std::uint64_t max_completion_tokens = 0;
    std::uint64_t max_tokens = 0;
    std::uint64_t n = 1;
    // Every field the estimate reads had the shape it expects (`messages` an array of objects,
    // text a string...); when not, the body is estimated from its length, as one that is not
    // JSON. A wrong shape is the server's to refuse, not a reason to refuse the line.
    bool shaped = true;
    // The first `model` and `stream` members. `model` points into the parser's string buffer:
    // valid until it parses again.
    std::optional<std::string_view> model;
    bool model_not_string = false;
    bool has_stream = false;
    bool stream_not_bool = false;
    bool stream = false; // its value, when a boolean
};

// Walks the object `body` of a document the DOM parser accepted, counting into `w`. `body_at` is
// the body's place in `spans` (its root, or a member of a Batch API line), from which the text of
// tool definitions is measured as written. Validation is the parser's: the walk cannot fail.
void walk_body(simdjson::dom::object body,
               const value_spans& spans,
               std::uint32_t body_at,
               body_walk& w);

// Only what decides a line's verdict: the body's first `stream` member, for a pass that wants
// verdicts and not estimates (reader_options::ids_only).
void walk_stream(simdjson::dom::object body, body_walk& w);

// Providers count characters, not bytes: a UTF-8 code point is every byte that is not a
// continuation byte (10xxxxxx). Eight bytes at a time: message text is most of what a line
// holds, and a byte loop was a tenth of the reader's own work.
inline std::uint64_t code_points(std::string_view s) noexcept {
    constexpr std::uint64_t high = 0x8080808080808080ULL;
    std::uint64_t continuation = 0;
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        std::uint64_t word;
        std::memcpy(&word, s.data() + i, 8);
        // Bit 7 set and bit 6 clear: 10xxxxxx.
        continuation += static_cast<std::uint64_t>(std::popcount(word & ~(word << 1) & high));
    }
    for (; i < s.size(); ++i)
        continuation += (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80;
    return s.size() - continuation;
}

// The estimate from a walk (`ok`: the body was valid JSON), or, for a body that is not JSON or
// not shaped as a chat body, from its length.
token_estimate
finish_estimate(bool ok, const body_walk& w, std::size_t body_size, const estimate_options& opts);

} // namespace sluice::detail
