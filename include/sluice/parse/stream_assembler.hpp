#pragma once

#include <sluice/error.hpp>
#include <sluice/parse/chunk_parser.hpp>
#include <sluice/parse/completion_parser.hpp>
#include <sluice/result.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sluice {

/// Merges the chunks of one streamed chat completion into what the same request gives
/// without streaming: the `completion` fields `completion_parser` reads from a body, and the
/// `chat.completion` JSON text itself.
///
/// The merge follows the official OpenAI Node SDK (`ChatCompletionStream`), per choice
/// `index` (so n > 1 works): `content` and `refusal` pieces are appended, `role` and
/// `finish_reason` set when a chunk carries them; tool calls are merged by their `index`,
/// `id`, `type` and `function.name` set when present, `function.arguments` appended;
/// `logprobs.content` and `logprobs.refusal` arrays concatenated. Empty strings count as
/// absent, as in the SDK. At the top level the last non-empty `id`, `model`,
/// `system_fingerprint` and `service_tier`, the last non-zero `created` and the last non-null
/// `usage` win. An `{"error": ...}` event makes the result an error.
///
/// Where the SDK would reject a stream (a choice without finish_reason or role, a tool call
/// without id), the assembler still answers: `finish_reason` null, `role` "assistant", and
/// missing tool-call fields written as "" (`type` as "function", the only type streamed).
///
/// A driver: for each event of an `sse_parser`, stop at `done`, else
/// `chunks.parse(event.data, chunk)` and `assembler.add(chunk)`; at the end `result()` and
/// `append_json()`.
///
/// Thread safety: none; one assembler per stream. It reuses its buffers across `reset()`.
class stream_assembler {
public:
    /// Choice and tool-call indexes at or past this are refused (errc::malformed_response):
    /// no server accepts an `n` that large, and a hostile index must not cost memory.
    static constexpr std::uint32_t max_index = 1024;

    stream_assembler();
    ~stream_assembler();
    stream_assembler(stream_assembler&&) noexcept;
    stream_assembler& operator=(stream_assembler&&) noexcept;

    /// Merges one chunk, copying what it keeps (the chunk's views may end right after). A
    /// chunk with an index at or past `max_index` is not merged at all and yields
    /// errc::malformed_response; the assembler stays usable.
    error_code add(const completion_chunk& chunk);

    /// Merges `chunk` as `add` does, for a chunk whose fields are all those of a chunk
    /// merged since `reset()` but for `delta.content`, with nothing merged after that one
    /// changing them (`completion_chunk::repeats_last`, from the parser that read that
    /// chunk): merged again they would change nothing, so only the text is appended. This
    /// runs for nearly every event of a stream.
    error_code add_repeat(const completion_chunk& chunk);

    /// `add_repeat` of a chunk that has one choice, numbered `index`, no refusal, no tool
    /// call and no logprobs, and whose `delta.content` is `content`: what a driver that read
    /// only that text (`chunk_parser::repeat_prefix`) merges, without a chunk to fill.
    error_code add_text(std::uint32_t index, std::string_view content);

    /// True when no chunk has been merged since construction or `reset()`.
    bool empty() const noexcept;

    /// What `completion_parser::parse(json(), out, fields)` gives, without writing that text
    /// and parsing it again (the chunks were parsed already): `out` and the error alike, for
    /// the engine, which reads a streamed answer as it reads a whole one. With
    /// completion_fields::all, choices in index order, `content` empty (no value) when no text
    /// came; `usage` when a usage chunk came; `body_is_json` set, for the body `append_json`
    /// writes. After an error event, `error` alone, as for an error body (the text streamed
    /// before it is dropped: the request failed). errc::malformed_response, `out` empty, where
    /// the parser refuses that body: no choice at all and no error event, or an error event
    /// whose `error` is a string rather than an object.
    error_code result(completion& out, completion_fields fields = completion_fields::all) const;

    /// `result(out)` of a stream the parser takes, as a value (empty after a refusal).
    completion result() const {
        completion out;
        [[maybe_unused]] const error_code ec = result(out);
        return out;
    }

    /// Appends the `chat.completion` JSON text a non-streamed request would have got:
    /// `{"id","object":"chat.completion","created","model","choices":[{"index","message":
    /// {"role","content" (null when none came),"refusal" (when any came),"tool_calls" (when
    /// any came)},"logprobs" (null when none came),"finish_reason"}],"usage" (when a usage
    /// chunk came),"service_tier","system_fingerprint" (when sent)}`. After an error event
    /// it is the error body instead: `{"error": ...}` as the server sent it. Always valid
    /// JSON; `created` is 0 when no chunk carried it.
    void append_json(std::string& out) const;

    /// `append_json` into a new string.
    std::string json() const {
        std::string out;
        append_json(out);
        return out;
    }

    /// Forgets the stream, keeping the buffers' capacity for the next one.
    void reset() noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace sluice
