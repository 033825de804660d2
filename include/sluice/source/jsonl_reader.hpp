#pragma once

#include <sluice/error.hpp>
#include <sluice/request.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace sluice {

/// One input line turned into a request, or into the reason it could not be.
struct input_record {
    /// 1-based line number in the input.
    std::uint64_t line_number = 0;
    /// The request; custom_id is "line-N" when the line had none.
    sluice::request request;
    /// errc::bad_input_line (or duplicate_custom_id, set by the caller) when the line is bad.
    error_code ec;
    /// Why the line is bad, naming what was wrong ("not JSON: ...", "missing body").
    std::string message;
};

/// Reads OpenAI Batch API input lines (`{"custom_id","method","url","body"}`) from a file
/// descriptor as a stream: memory is bounded by the longest line, never the file. Blank lines
/// are skipped; every other line yields exactly one record, a bad one included.
///
/// Thread safety: none.
class jsonl_reader {
public:
    /// Reads from `fd` (not closed by the reader).
    explicit jsonl_reader(int fd);
    ~jsonl_reader();
    jsonl_reader(jsonl_reader&&) noexcept;
    jsonl_reader& operator=(jsonl_reader&&) noexcept;

    /// Fills `out` with the next record; false at end of input. Throws std::system_error on a
    /// read error of the descriptor.
    bool next(input_record& out);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace sluice
