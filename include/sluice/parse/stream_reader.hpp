#pragma once

#include <sluice/error.hpp>
#include <sluice/http_response.hpp>
#include <sluice/parse/chunk_parser.hpp>
#include <sluice/parse/sse_parser.hpp>
#include <sluice/parse/stream_assembler.hpp>
#include <sluice/request.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

/// Reads one streamed chat completion as the transport hands its body over, piece by piece
/// (`body_observer`): frames the events (`sse_parser`), parses each chunk (`chunk_parser`),
/// merges them (`stream_assembler`) and times every event carrying content on arrival. At the
/// end, `finish` writes the `chat.completion` a non-streamed request would have got, so that
/// everything after the transport (the fast-path parser, the limiter's settlement from `usage`,
/// the output record) treats both answers alike. Memory is bounded by the largest event
/// (`sse_parser_options::max_event_bytes`) and the assembled answer, never the stream's text.
///
/// Readers of one thread can share the simdjson parsers their chunks are read with (a
/// `chunk_workspace`): a reader then holds only what its stream needs between events, a few
/// hundred bytes before its first event, which matters with thousands of streams in flight.
///
/// Thread safety: none; one reader per request, used by one exchange at a time, and readers
/// sharing a workspace are used from one thread (or strand). `reset()` before each attempt.
class stream_reader final : public body_observer {
public:
    using time_point = std::chrono::steady_clock::time_point;

    /// A reader with simdjson parsers of its own.
    explicit stream_reader(const sse_parser_options& opts = {});

    /// A reader whose chunks are parsed with `shared`, which must outlive it.
    explicit stream_reader(chunk_workspace& shared, const sse_parser_options& opts = {});

    /// Forgets the last attempt's stream (its events, timings and text).
    void reset();

    /// Called with each piece of the body as it arrives: frames, parses and merges the events
    /// it completes. Fails with errc::event_too_large or errc::malformed_response (a chunk
    /// that is not JSON), which stops the read.
    error_code on_body(std::string_view piece, time_point at) override;

    /// Called for each event carrying content, with its views valid during the call only.
    void on_delta(const std::function<void(const stream_delta&)>* callback) noexcept {
        on_delta_ = callback;
    }

    /// Once the exchange has read the whole body: the assembled `chat.completion` JSON (or the
    /// `{"error": ...}` body of an error event) replaces `body`, with `parse_padding` spare
    /// capacity. Fails with errc::event_stream_truncated when the body ended inside an event,
    /// or with no event at all.
    error_code finish(std::string& body);

    /// `finish(body)` for a caller that does not need the answer's text (its fields come from
    /// `result`): the same checks, nothing written.
    error_code finish();

    /// After `finish`: the fields `completion_parser` reads from the body it wrote, and the
    /// error it gives, without parsing that body again (`stream_assembler::result`).
    error_code result(completion& out, completion_fields fields) const {
        return assembler_.result(out, fields);
    }

    /// What the stream held so far, for messages about a stream cut short: "12 events, 230
    /// bytes of content, no [DONE]".
    std::string describe() const;

    /// The first event carrying content arrived (epoch when none did).
    time_point first_token() const noexcept { return first_token_; }
    /// Gaps between consecutive events carrying content.
    const std::vector<std::chrono::nanoseconds>& token_gaps() const noexcept { return gaps_; }
    /// Data events read, `[DONE]` included.
    std::uint64_t events() const noexcept { return events_; }
    /// `data: [DONE]` was read.
    bool done() const noexcept { return done_; }

private:
    error_code on_event(const sse_event& event, time_point at);
    std::size_t take_repeats(std::string_view piece, time_point at);
    // Per event carrying content: inline.
    void time_content(time_point at) {
        if (first_token_ == time_point{})
            first_token_ = at;
        else
            gaps_.push_back(at - last_token_);
        last_token_ = at;
    }

    sse_parser framer_;
    chunk_parser chunks_;
    completion_chunk chunk_;
    stream_assembler assembler_;
    const std::function<void(const stream_delta&)>* on_delta_ = nullptr;
    time_point first_token_{};
    time_point last_token_{};
    std::vector<std::chrono::nanoseconds> gaps_;
    std::uint64_t events_ = 0;
    std::uint64_t content_bytes_ = 0;
    bool done_ = false;
};

} // namespace sluice
