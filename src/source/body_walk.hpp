#pragma once

#include <sluice/source/token_estimate.hpp>

#include "detail/json_check.hpp"

#include <simdjson.h>

#include <cstdint>
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
    // valid until the document is iterated again or rewound.
    std::optional<std::string_view> model;
    bool model_not_string = false;
    bool has_stream = false;
    bool stream_not_bool = false;
    bool stream = false; // its value, when a boolean
};

// How much of a body the walk checks. The estimator only needs what it reads (a body is sent as
// written whatever the estimate); the input reader decides whether a line is JSON at all, with
// the verdicts simdjson's DOM parser gives.
enum class body_check {
    read_only, // the values the estimate reads; the rest is skipped unchecked
    all,       // every value, as check_json with big_integers::refuse
};

// Walks the object `body`, at nesting depth `depth` of `doc` (1 for a root), counting into `w`
// and checking values on the way as `check` says. Returns the first JSON error; the document is
// then not valid JSON. Leaves the document just past the object's closing brace.
simdjson::error_code walk_body(simdjson::ondemand::document& doc,
                               simdjson::ondemand::object& body,
                               int depth,
                               body_check check,
                               body_walk& w);

// Providers count characters, not bytes: a UTF-8 code point is every byte that is not a
// continuation byte (10xxxxxx).
constexpr std::uint64_t code_points(std::string_view s) noexcept {
    std::uint64_t count = 0;
    for (const char c : s)
        count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return count;
}

// The estimate from a walk (`ok`: the body was valid JSON), or, for a body that is not JSON or
// not shaped as a chat body, from its length.
token_estimate
finish_estimate(bool ok, const body_walk& w, std::size_t body_size, const estimate_options& opts);

} // namespace sluice::detail
