#include <sluice/parse/stream_reader.hpp>

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

error_code stream_reader::on_body(std::string_view piece, time_point at) {
    error_code failed;
    const error_code ec = framer_.put_all(piece, [&](const sse_event& event) {
        if (!failed)
            failed = on_event(event, at);
    });
    return ec ? ec : failed;
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

void stream_reader::time_content(time_point at) {
    if (first_token_ == time_point{})
        first_token_ = at;
    else
        gaps_.push_back(at - last_token_);
    last_token_ = at;
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
