#pragma once

#include <sluice/error.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

/// Settings of one `sse_parser`.
struct sse_parser_options {
    /// Largest event the parser accepts, in bytes: the data of the event read so far (lines
    /// joined with '\n') plus the line being read. The parser never holds more than this, so
    /// a server that sends no blank line, or one endless line, costs at most this much memory;
    /// an event beyond it fails with errc::event_too_large. Chat-completion chunks are a few
    /// hundred bytes (a few KiB with logprobs), so the default leaves a wide margin. Must be
    /// at least 1.
    std::size_t max_event_bytes = 4 * 1024 * 1024;

    /// Throws std::invalid_argument naming the field when a value is out of range.
    void validate() const;
};

/// One event dispatched by `sse_parser`.
///
/// Object lifetimes: the views point into the parser or into the bytes passed to the `put`
/// that produced the event; they stay valid until the next `put`, `reset` or destruction of
/// the parser, provided those bytes are left alone until then.
struct sse_event {
    /// The `event:` field; "message" when the event had none (as the WHATWG rules say).
    std::string_view type = "message";
    /// The `data:` lines of the event joined with '\n' (possibly empty: `data:` alone).
    std::string_view data;
    /// The last `id:` seen on the stream, this event's or an earlier one's; empty when none.
    std::string_view last_event_id;
    /// The data is exactly `[DONE]`, the OpenAI stream terminator (no JSON follows).
    bool done = false;
};

/// A sans-I/O framer for `text/event-stream` bodies, following the WHATWG event-stream
/// parsing rules: it is fed bytes as they arrive, split anywhere (mid-line, mid-UTF-8
/// sequence, between a CR and its LF), and says how much it used and whether an event is
/// complete. Lines end with CRLF, LF or CR; a leading UTF-8 BOM is skipped once; `:` lines
/// are comments; `event`, `data`, `id` (ignored when it holds a NUL) and `retry` (digits
/// only) are read, other fields ignored; a line with no colon is a field with an empty
/// value; one space after the colon is dropped. A blank line dispatches the event, unless it
/// had no `data` line, in which case it is dropped (the rules again). Bytes are passed
/// through undecoded: the JSON parser behind validates UTF-8.
///
/// A driver's loop over the bytes of one read:
/// `while (!bytes.empty()) { n = p.put(bytes, ec); if (ec) fail; bytes.remove_prefix(n);
/// if (p.has_event()) use(p.event()); }`, then at end of stream `p.finish()`; `put_all`
/// is that loop with a callback.
///
/// Memory is bounded by `max_event_bytes`; buffers are reused, so a long stream allocates
/// nothing once they have grown to the size of its largest event. An event lying wholly in
/// the bytes of one `put` with a single data line is handed out as a view into those bytes,
/// without a copy.
///
/// Thread safety: none; one parser per stream, used from one strand at a time.
///
/// Exception safety: `put` throws std::bad_alloc only while its buffers grow (never past
/// `max_event_bytes`); the rest does not throw.
class sse_parser {
public:
    /// A parser with the default options.
    sse_parser() = default;

    /// Throws std::invalid_argument when `opts` are out of range (see validate()).
    explicit sse_parser(const sse_parser_options& opts);

    /// Reads from `bytes` up to and including the line that completes the next event, or all
    /// of them when no event completes, and returns how many bytes it used. After it,
    /// `has_event()` tells whether an event is ready. On failure (errc::event_too_large) `ec`
    /// is set, nothing more is read and every later call fails alike until `reset()`. Reads
    /// at least one byte of a non-empty `bytes` unless it fails.
    std::size_t put(std::string_view bytes, error_code& ec);

    /// Feeds all of `bytes`, calling `on_event(const sse_event&)` for each event completed;
    /// returns the failure that stopped it, if any.
    template <class OnEvent>
    error_code put_all(std::string_view bytes, OnEvent&& on_event) {
        error_code ec;
        while (!bytes.empty()) {
            const std::size_t n = put(bytes, ec);
            if (ec)
                return ec;
            bytes.remove_prefix(n);
            if (has_event())
                on_event(event());
        }
        return ec;
    }

    /// True when no event, line or BOM is partly read (nor the LF of a CR ending the last
    /// read) and no `put` has failed: a `put` of bytes starting `data:`, an optional space,
    /// then D with no CR or LF, then "\n\n", with the line no longer than `max_event_bytes`,
    /// would complete an event of data D, type "message" (`done` when D is `[DONE]`), use
    /// exactly those bytes and leave the parser here again. A driver may read such an
    /// event without `put` (`stream_reader` does, for the common chunk), as if it had
    /// (`has_event()` and `event()` then still tell of the last `put`).
    bool between_events() const noexcept {
        return data_lines_ == 0 && line_.empty() && type_.empty() && bom_done_ && !skip_lf_ &&
               !failed_;
    }

    /// The options the parser was made with.
    const sse_parser_options& options() const noexcept { return opts_; }

    /// True when the last `put` completed an event.
    bool has_event() const noexcept { return has_event_; }

    /// The event the last `put` completed; meaningful only while `has_event()`.
    const sse_event& event() const noexcept { return event_; }

    /// Call at end of stream. Returns errc::event_stream_truncated when the stream stopped
    /// inside an event (data lines or a partial line not closed by a blank line: the rules
    /// drop such an event, and the caller should say the stream was cut), the failure of an
    /// earlier `put` if any, and success otherwise. Does not reset the parser.
    error_code finish() const noexcept;

    /// The last valid `retry:` value on the stream (the server's reconnection delay), if any.
    std::optional<std::chrono::milliseconds> retry() const noexcept { return retry_; }

    /// Forgets everything, as for a new stream (BOM, last event id and retry included); keeps
    /// the buffers' capacity.
    void reset() noexcept;

private:
    void release_event() noexcept;
    const char* take_whole_event(const char* p, const char* end) noexcept;
    bool take_line(std::string_view line, bool borrowed, error_code& ec);
    void take_field(std::string_view name, std::string_view value, bool borrowed);
    void take_data(std::string_view value, bool borrowed);
    bool dispatch();
    std::size_t skip_bom(std::string_view bytes);
    void keep_borrowed_data();
    std::size_t data_size() const noexcept;
    void fail(error_code& ec);

    sse_parser_options opts_;
    sse_event event_;
    bool has_event_ = false;
    // The event being read: its data, as a view into the caller's bytes while it is one line
    // read in this put, else joined in data_.
    std::string data_;
    std::string_view data_view_;
    bool data_borrowed_ = false;
    std::size_t data_lines_ = 0;
    std::string type_;
    // A line not yet ended by the bytes seen so far.
    std::string line_;
    std::string last_id_;
    std::optional<std::chrono::milliseconds> retry_;
    error_code failed_;
    unsigned bom_seen_ = 0; // bytes of a leading BOM matched so far
    bool bom_done_ = false;
    bool skip_lf_ = false; // the last put ended on a CR: a LF starting the next one is its pair
};

} // namespace sluice
