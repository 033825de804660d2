#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

// The line splitting shared by the stages that parse JSONL in place: the source (the input)
// and the sink (the journal reading its own output back). It lives in core so that neither
// depends on the other for it; the padding is a parameter so that core needs no simdjson.

namespace sluice::detail {

/// Splits what a file descriptor delivers into lines, in one buffer with `padding` spare bytes
/// behind its usable part, so that a parser that reads past a document's end (simdjson reads
/// up to SIMDJSON_PADDING bytes) can take every line in place, without a copy. Memory is
/// bounded by the longest line, never the file: the buffer keeps one partial line between
/// reads and doubles only for a line longer than itself.
///
/// Thread safety: none.
class line_reader {
public:
    /// Large reads keep the system-call count low on big files.
    static constexpr std::size_t default_capacity = std::size_t{1} << 20;

    /// Reads from `fd` (not closed by the reader) from where it stands. `read_error` is the
    /// description of the std::system_error thrown when a read fails ("read input").
    /// `initial_capacity` (at least 1, else std::invalid_argument) is the buffer's usable
    /// size before any line outgrows it.
    line_reader(int fd,
                std::size_t padding,
                std::string read_error,
                std::size_t initial_capacity = default_capacity);

    /// The next line, without its '\n'; false at end of input. The view stays valid until the
    /// next call, and at least `padding` bytes behind its end (so behind any part of it) are
    /// readable. The last line of a file that does not end in '\n' is returned too; then
    /// `newline_ended()` is false. Read errors throw std::system_error; EINTR is retried.
    bool next(std::string_view& line);

    /// Offset of the first byte of the line next() returned last, counted from where the
    /// descriptor stood when the reader was made.
    std::uint64_t line_offset() const noexcept { return line_offset_; }

    /// Whether the line next() returned last ended with '\n'. False only for a last line
    /// without one: what a writer killed in the middle of a line leaves.
    bool newline_ended() const noexcept { return newline_ended_; }

private:
    void read_more();

    int fd_;
    std::size_t padding_;
    std::string read_error_;
    std::size_t capacity_; // usable bytes; the allocation has the padding beyond them
    std::unique_ptr<char[]> buffer_;
    std::uint64_t base_offset_ = 0; // offset of buffer_[0] from the descriptor's start
    std::uint64_t line_offset_ = 0;
    std::size_t begin_ = 0;   // first byte not yet returned as a line
    std::size_t end_ = 0;     // one past the last byte read
    std::size_t scanned_ = 0; // [begin_, scanned_) holds no newline
    bool eof_ = false;
    bool newline_ended_ = true;
};

} // namespace sluice::detail
