#pragma once

#include <sluice/error.hpp>
#include <sluice/http_response.hpp>
#include <sluice/result.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace sluice {

/// One `choices[].delta.tool_calls[]` fragment of a streamed chunk. Strings are empty when
/// the fragment did not carry them (absent, null or "": the merge treats all three alike).
struct tool_call_delta {
    /// `index`: which tool call of the choice this fragment continues; the fragment's
    /// position in its array when the server sent none.
    std::uint32_t index = 0;
    std::string_view id;
    std::string_view type;
    /// `function.name`.
    std::string_view name;
    /// `function.arguments`: a piece of the JSON text, to be appended.
    std::string_view arguments;
};

/// One entry of a chunk's `choices`. Strings are empty when absent, null or "".
struct chunk_choice {
    /// `index`; the entry's position in the array when the server sent none.
    std::uint32_t index = 0;
    /// `delta.role`.
    std::string_view role;
    /// `delta.content`: the next piece of text.
    std::string_view content;
    /// `delta.refusal`: the next piece of a refusal.
    std::string_view refusal;
    /// `finish_reason`, set on the choice's last chunk.
    std::string_view finish_reason;
    /// `logprobs` as raw JSON text (checked to be valid JSON); empty when absent or null.
    std::string_view logprobs;
    /// `logprobs.content` and `logprobs.refusal` as raw JSON arrays; empty when absent/null.
    std::string_view logprobs_content;
    std::string_view logprobs_refusal;
    /// This choice's fragments in `completion_chunk::tool_calls` (see `tool_calls_of`).
    std::uint32_t first_tool_call = 0;
    std::uint32_t tool_call_count = 0;
};

/// The `error` of an error event sent mid-stream, as views.
struct chunk_error {
    /// The whole `error` value as raw JSON text (checked to be valid JSON): an object, or a
    /// string from servers that send `{"error": "text"}`.
    std::string_view json;
    /// `message` (the string itself for a string error), `type`, `code` (a number kept as
    /// its text) and `param`; empty when absent or null.
    std::string_view message, type, code, param;
};

/// The fields of one `chat.completion.chunk` (the data of one server-sent event), or of an
/// `{"error": {...}}` event sent mid-stream.
///
/// Object lifetimes: every view points into the parser that filled it (or its workspace) or
/// into the bytes it parsed, and stays valid until that parser's next `parse` (or its
/// destruction), or the next `parse` of another parser sharing its `chunk_workspace`,
/// provided the bytes are left alone.
struct completion_chunk {
    std::string_view id;
    std::string_view model;
    /// `created`, when sent.
    std::optional<std::int64_t> created;
    std::string_view system_fingerprint;
    std::string_view service_tier;
    std::vector<chunk_choice> choices;
    /// The tool-call fragments of all choices, each choice's in one run.
    std::vector<tool_call_delta> tool_calls;
    /// `usage`, when sent and not null (the last chunk, with `stream_options.include_usage`).
    std::optional<sluice::usage> usage;
    /// `usage` as raw JSON text (details included; checked to be valid JSON); empty when none.
    std::string_view usage_json;
    /// Present when the event is an error (`{"error": ...}`) rather than a chunk.
    std::optional<chunk_error> error;
    /// Every field but `choices[0].content` is that of the chunk the parser last read in full
    /// (its shortcut for a chunk that only brings another piece of text): a driver that
    /// merged that chunk, or one repeating it, can merge only the text
    /// (`stream_assembler::add_repeat`).
    bool repeats_last = false;

    /// The tool-call fragments of `c`, a choice of this chunk.
    std::span<const tool_call_delta> tool_calls_of(const chunk_choice& c) const noexcept {
        return std::span<const tool_call_delta>(tool_calls)
            .subspan(c.first_tool_call, c.tool_call_count);
    }
};

/// The simdjson parsers and the padded scratch buffer a `chunk_parser` reads with: the bulk
/// of its memory (a few KB, more once it has read a large chunk). A chunk is parsed and
/// merged before the next one is read, so the chunk parsers used by one thread, such as the
/// stream readers of a dispatcher (one per streamed request in flight), can share one
/// workspace instead of holding one each: with thousands of streams in flight that was most
/// of a stream's memory. What a parser keeps from one chunk to the next (the last chunk it
/// read in full, for its shortcut) stays its own, so streams read in turn through one
/// workspace take the shortcut as they would alone.
///
/// Thread safety: none. The parsers sharing a workspace must not be used concurrently, and
/// the workspace must outlive them. Neither copyable nor movable: parsers point at it.
class chunk_workspace {
public:
    chunk_workspace();
    ~chunk_workspace();
    chunk_workspace(const chunk_workspace&) = delete;
    chunk_workspace& operator=(const chunk_workspace&) = delete;

private:
    friend class chunk_parser;
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// The simdjson on-demand fast path over one streamed chunk: reads the fields of
/// `completion_chunk` in document order, skipping unknown ones, with no exceptions and no
/// copy of the strings (they are views into the parser's string buffer). Keep one parser per
/// stream and reuse it: once its buffers have grown, a chunk costs no allocation. Parsers of
/// many streams read by one thread can share their simdjson parsers (`chunk_workspace`). Anything
/// that is not a JSON object, or holds a known field of the wrong type, yields
/// `errc::malformed_response`. The parts kept as raw JSON (`usage`, `logprobs`, `error`) are
/// checked to be valid JSON, so that they can be copied into JSON text as they are.
///
/// Most chunks of a stream are the one before with another piece of text: when a chunk's
/// bytes are those of the last one parsed in full but for the string of `delta.content`,
/// only that string is checked and read (the result is the full parse's, tested so), and
/// `content` is then a view into the bytes parsed: such a string has nothing to unescape;
/// `repeats_last` says so.
///
/// Thread safety: distinct objects are independent; one object must not be used from two
/// threads at once.
class chunk_parser {
public:
    /// A parser with a workspace of its own.
    chunk_parser();
    /// A parser that reads with `shared`, which must outlive it (see `chunk_workspace`).
    explicit chunk_parser(chunk_workspace& shared);
    ~chunk_parser();
    chunk_parser(chunk_parser&&) noexcept;
    chunk_parser& operator=(chunk_parser&&) noexcept;

    /// Parses the `size` bytes at `data` into `out` (cleared first; its vectors keep their
    /// capacity). `capacity` is the number of readable bytes at `data`; when it is less than
    /// `size + parse_padding` the bytes are first copied into an internal padded buffer.
    error_code
    parse(const char* data, std::size_t size, std::size_t capacity, completion_chunk& out);

    /// Parses `data` (an event's data), copying it into the internal padded buffer: the
    /// event's bytes usually sit in the middle of a read buffer with no padding known.
    error_code parse(std::string_view data, completion_chunk& out) {
        return parse(data.data(), data.size(), data.size(), out);
    }

    /// The shortcut for a driver that frames the events itself, with the bytes of a read
    /// that may hold more after the chunk (`stream_reader`): when `bytes` begin with a chunk
    /// that `parse` would read through its shortcut (`repeats_last`), whose one choice has no
    /// refusal and which holds no CR or LF, returns that chunk's size and sets the choice's
    /// `index` and its `content` (a view into `bytes`), the only fields such a chunk brings;
    /// otherwise returns 0 and sets nothing. The parser is left as it was: the next `parse`
    /// reads as if this call had not been made.
    std::size_t repeat_prefix(std::string_view bytes,
                              std::uint32_t& index,
                              std::string_view& content) const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace sluice
