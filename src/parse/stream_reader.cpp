#include <sluice/parse/stream_reader.hpp>

#include <cstring>
#include <string>

namespace sluice {

stream_reader::stream_reader(const sse_parser_options& opts)
    : framer_(opts) {}

stream_reader::stream_reader(chunk_workspace& shared, const sse_parser_options& opts)
    : framer_(opts)
    , chunks_(shared) {}

void stream_reader::reset() {
    framer_.reset();
    assembler_.reset();
    first_token_ = last_token_ = time_point{};
    gaps_.clear();
    events_ = 0;
    content_bytes_ = 0;
    done_ = false;
}

// The framer's loop (`sse_parser::put_all`), with the common events read in one step where
// they start (`take_repeats`). After a failed event the rest is still framed, so that a
// framing failure later in the piece is the one reported, as it was before that step existed.
error_code stream_reader::on_body(std::string_view piece, time_point at) {
    while (!piece.empty()) {
        if (const std::size_t n = take_repeats(piece, at)) {
            piece.remove_prefix(n);
            continue;
        }
        error_code ec;
        piece.remove_prefix(framer_.put(piece, ec));
        if (ec)
            return ec;
        if (!framer_.has_event())
            continue;
        if (const error_code failed = on_event(framer_.event(), at)) {
            const error_code later = framer_.put_all(piece, [](const sse_event&) {});
            return later ? later : failed;
        }
    }
    return {};
}

// Nearly every event of a stream is "data: " and a chunk that repeats the last one the
// parser read in full but for a few words of text, and a read holds a hundred of them in a
// row. Where the framer stands between events, each such event is recognised in one pass
// over its bytes (the parser's comparison with that chunk finds where the line ends) and
// only its text merged: the framer would hand out the same events and the parser give the
// same chunks (the tests read every stream both ways), without the framer's search for each
// line's end and the parser's filling of a whole chunk. Returns the bytes used by the run of
// such events at the start of `piece`, 0 when it starts with anything else.
std::size_t stream_reader::take_repeats(std::string_view piece, time_point at) {
    if (done_ || assembler_.empty() || !framer_.between_events())
        return 0;
    const std::size_t max_line = framer_.options().max_event_bytes;
    const bool deltas = on_delta_ && *on_delta_;
    const char* const begin = piece.data();
    const char* p = begin;
    const char* const end = begin + piece.size();
    while (end - p >= 8 && std::memcmp(p, "data:", 5) == 0) {
        const std::size_t start = p[5] == ' ' ? 6 : 5;
        std::uint32_t index = 0;
        std::string_view content;
        const std::size_t size = chunks_.repeat_prefix(
            {p + start, static_cast<std::size_t>(end - p) - start}, index, content);
        const char* const eol = p + start + size;
        if (size == 0 || end - eol < 2 || eol[0] != '\n' || eol[1] != '\n' ||
            static_cast<std::size_t>(eol - p) > max_line)
            break;
        if (assembler_.add_text(index, content))
            break; // nothing merged: the full path gives the error
        ++events_;
        if (!content.empty()) {
            content_bytes_ += content.size();
            if (deltas)
                (*on_delta_)(stream_delta{index, content, {}, false, at});
            time_content(at);
        }
        p = eol + 2;
    }
    return static_cast<std::size_t>(p - begin);
}

// Events after [DONE] are ignored, as the SDKs do; an event that is not JSON fails the read.
error_code stream_reader::on_event(const sse_event& event, time_point at) {
    if (done_)
        return {};
    ++events_;
    if (event.done) {
        done_ = true;
        return {};
    }
    if (const error_code ec = chunks_.parse(event.data, chunk_))
        return ec;
    // A chunk repeating the parser's last full read but for its text: that read, or a chunk
    // repeating it, was merged into this stream's answer when any chunk was (the parser's
    // shape outlives a reset, the assembler's merge does not), so only the text is new.
    const bool repeat = chunk_.repeats_last && !assembler_.empty();
    if (const error_code ec = repeat ? assembler_.add_repeat(chunk_) : assembler_.add(chunk_))
        return ec;
    bool content = false;
    for (const chunk_choice& c : chunk_.choices) {
        const bool tool_call = c.tool_call_count > 0;
        if (c.content.empty() && c.refusal.empty() && !tool_call)
            continue;
        content = true;
        content_bytes_ += c.content.size() + c.refusal.size();
        if (on_delta_ && *on_delta_)
            (*on_delta_)(stream_delta{c.index, c.content, c.refusal, tool_call, at});
    }
    if (content)
        time_content(at);
    return {};
}

error_code stream_reader::finish() {
    if (const error_code ec = framer_.finish())
        return ec;
    // A body that ended cleanly without [DONE] is taken as complete: some servers omit it.
    if (assembler_.empty())
        return errc::event_stream_truncated;
    return {};
}

error_code stream_reader::finish(std::string& body) {
    if (const error_code ec = finish())
        return ec;
    body.clear();
    // Room for the text and its escapes, the fields around it and the parser's padding, so
    // that the answer is written in one allocation.
    body.reserve(1024 + content_bytes_ + content_bytes_ / 4 + parse_padding);
    assembler_.append_json(body);
    body.reserve(body.size() + parse_padding);
    return {};
}

std::string stream_reader::describe() const {
    return std::to_string(events_) + (events_ == 1 ? " event, " : " events, ") +
           std::to_string(content_bytes_) + " bytes of content" + (done_ ? "" : ", no [DONE]");
}

} // namespace sluice
