#pragma once

#include <sluice/error.hpp>
#include <sluice/inline_string.hpp>
#include <sluice/result.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

/// An input line that could not be sent, as the output records it: its number, its
/// `custom_id` (empty: `line-N`), why (errc::bad_input_line or duplicate_custom_id) and the
/// reason in words. Views: valid for the call they are passed to.
struct bad_line {
    std::uint64_t line_number = 0;
    std::string_view custom_id;
    error_code ec;
    std::string_view message;
};

/// Appends one Batch API output line for `r` to `out`, newline included:
/// `{"id":"batch_req_...","custom_id":...,"response":{"status_code":...,"request_id":...,
/// "body":<raw body>},"error":null|{"code":...,"message":...}}`. The body is embedded exactly
/// as received when it is JSON; a non-JSON body is embedded as a JSON string. `response` is
/// null when no HTTP response arrived.
void append_output_record(std::string& out, const result& r, std::string_view record_id);

/// Appends the output line for a bad input line: `response` null and `error` naming the line.
void append_input_error_record(std::string& out, const bad_line& bad, std::string_view record_id);

/// Writes output records to a file descriptor in large writes: records are buffered and
/// written whole (never a partial line on a clean stop), flushed when the buffer passes
/// `flush_bytes` and on `flush()`.
///
/// Thread safety: none.
class jsonl_writer {
public:
    /// Writes to `fd` (not closed by the writer).
    explicit jsonl_writer(int fd, std::size_t flush_bytes = 1 << 20);
    ~jsonl_writer();
    jsonl_writer(const jsonl_writer&) = delete;
    jsonl_writer& operator=(const jsonl_writer&) = delete;

    void write(const result& r);
    void write(const bad_line& bad);

    /// Writes one record already formatted by `append_output_record` or
    /// `append_input_error_record` (newline included), so that the same line, with the same id,
    /// can go to two files (the output and the `--errors` file).
    void write_line(std::string_view line);

    /// For a caller that formats a record straight into the writer's buffer (no copy on its
    /// way to the file): append one whole record (newline included) to `buffer()`, then call
    /// `written()`. What was appended stays in the buffer until `written()`.
    std::string& buffer() noexcept { return buffer_; }
    /// Counts the record just appended to `buffer()`, and writes the buffer out once full.
    void written();

    /// The id for the next record this writer formats: `batch_req_` + a random per-writer
    /// prefix + the record counter, unique across runs appending to one file.
    inline_string<48> next_record_id() const;

    /// Writes everything buffered. Throws std::system_error on a write error.
    void flush();
    /// flush() then fsync(2).
    void sync();

    std::uint64_t records() const noexcept { return records_; }

private:
    int fd_;
    std::size_t flush_bytes_;
    std::string buffer_;
    std::uint64_t records_ = 0;
    // "batch_req_" and the random per-writer prefix in hex, formatted once.
    char id_head_[26];
};

} // namespace sluice
