#pragma once

#include <simdjson.h>

#include <cstddef>

namespace sluice::detail {

// How deep the parsers of answers and stream chunks follow nesting. simdjson reserves room
// for its default of 1,024 levels in every parser (about 9 KB each), and a stream reader holds
// five: with thousands of streams in flight that was 26 KB a stream. An answer of the API is
// six or seven levels deep (choices, logprobs, tool calls). The limit applies to what is read
// or checked (the fields sluice takes, and usage and logprobs, which are copied verbatim);
// fields nobody reads are skipped whatever their depth.
inline constexpr std::size_t max_json_depth = 128;

// Sets `parser`'s depth before its first document (its capacity still grows with what it
// reads). An on-demand or a DOM parser.
template <class Parser>
void limit_depth(Parser& parser) {
    // Fails only when memory runs out; the first parse then allocates as before.
    [[maybe_unused]] const auto ignored = parser.allocate(0, max_json_depth);
}

} // namespace sluice::detail
