#pragma once

#include <sluice/source/id_index.hpp>
#include <sluice/source/jsonl_reader.hpp>

#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

// The input side of a batch job before and around the run: opening files, the planning pass
// that tells the id_index every line's custom_id, and validation of the whole input.

/// Opens the input for reading; "-" is stdin. Throws std::system_error naming the path.
int open_input(const std::string& path);

/// Opens the output for appending, or afresh with `truncate`; "-" is stdout. A new file is
/// created with mode 0600 (less what the umask takes away); an existing one keeps its mode.
/// Throws std::system_error naming the path.
int open_output(const std::string& path, bool truncate = false);

/// True for a regular file: only those can be read twice (the planning pass, then the run);
/// stdin, pipes and process substitutions are read once, with the ids held in memory.
bool readable_twice(const std::string& path);

/// Closes the descriptors it holds (never stdin, stdout or stderr) however the caller leaves.
struct fd_guard {
    fd_guard() = default;
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;

    std::vector<int> fds;
    int add(int fd) {
        if (fd > STDERR_FILENO)
            fds.push_back(fd);
        return fd;
    }
    ~fd_guard() {
        for (int fd : fds)
            ::close(fd);
    }
};

/// Reads the whole input once, calling `each` for every record; returns the last line number.
std::uint64_t for_each_record(const std::string& path,
                              const reader_options& ropts,
                              const std::function<void(input_record&)>& each);

/// The planning pass over a file input: every line's custom_id into `index`, read without
/// checking the line (reader_options::unchecked_ids). The index then knows for each line
/// whether it is new, done or a repeat, once the next pass has told it the bad lines. Returns
/// the number of records.
std::uint64_t scan_ids(const std::string& path, const reader_options& ropts, id_index& index);

/// In a pass after the scan (or with a one-pass index), turns a record whose custom_id an
/// earlier line used into a bad record (duplicate_custom_id). Every record of the pass, bad
/// ones included, goes through here or `decide_line`, in input order (the index learns from
/// the bad ones).
void mark_repeat(input_record& rec, id_index& index, bool streaming);

/// Makes `rec` the error record of a line whose custom_id an earlier line already used.
void mark_duplicate(input_record& rec);

/// What a batch job does with one input line.
enum class line_action {
    send,         ///< a request with no final record yet
    skip,         ///< its final record is already in the output (a resumed run)
    record_error, ///< write its error record: a bad line, or a repeated custom_id (marked)
};

/// Decides `line_action` for `rec` from what `index` knows (the output's final records, the
/// ids of earlier lines); a repeated custom_id is marked (mark_duplicate). The one rule that
/// the run and its plan (`--dry-run`) share.
line_action decide_line(input_record& rec, id_index& index, bool streaming);

/// The bad lines of an input: how many, and the first few with their reasons.
struct input_problems {
    std::uint64_t bad = 0;
    /// (line number, reason) of the first bad lines, in input order.
    std::vector<std::pair<std::uint64_t, std::string>> first;
};

/// Reads the whole input after the planning pass and finds every bad line, repeated
/// custom_ids included, keeping the reasons of the first `keep` (`sluice run --strict`).
input_problems find_bad_lines(const std::string& path,
                              const reader_options& ropts,
                              id_index& index,
                              std::size_t keep = 20);

} // namespace sluice
