#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace sluice {

/// How a resumed run judges the records already in its output file. The defaults keep every
/// answer the provider gave, so resuming never pays twice for a request that already ended.
struct journal_options {
    /// Redo failures too (`--retry-failed`): every error record is dropped, request errors and
    /// bad-input-line records alike, since the cause may be gone and the input may have been
    /// fixed since. Off by default: a failure is a final answer, as in the Batch API.
    bool retry_failed = false;

    /// When non-empty, the error file (`--errors FILE`: the same record lines as the output,
    /// only the failures) to rebuild from the output, so that it matches the output's error
    /// records after any number of crashes and resumes whatever state it was left in. Must not
    /// name the output file itself; a file that is not a regular one (a pipe, /dev/stderr) is
    /// left alone.
    std::string errors_path;

    /// Only read: report the final records and count what a resume would redo, but change no
    /// file (no torn tail cut, nothing compacted, the error file untouched). For a plan of
    /// what is left (`--dry-run` on a half-finished job).
    bool read_only = false;
};

/// What recover_journal() found in the output and what it changed there, for the run's log
/// and summary.
struct journal_recovery {
    /// Complete lines read, each a record (the torn tail not included).
    std::uint64_t records = 0;
    /// Request records without an error, kept.
    std::uint64_t kept_successes = 0;
    /// Request records with an error that is a final answer, kept.
    std::uint64_t kept_errors = 0;
    /// Bad-input-line records (keyed by their `line`), kept.
    std::uint64_t kept_bad_lines = 0;
    /// Records removed so that the run redoes them: not_attempted, stopped, quota_exhausted,
    /// and every error with journal_options::retry_failed.
    std::uint64_t dropped = 0;
    /// Bytes of an unfinished last line (no trailing newline: a write cut short) cut off.
    std::uint64_t torn_bytes = 0;
    /// True when the output was replaced by a compacted copy without the removed records.
    bool rewritten = false;
    /// True when the error file of journal_options::errors_path was replaced or emptied.
    bool errors_rewritten = false;
};

/// Told the `custom_id` of each final request record, in file order, so that the run skips
/// the input line with that id. The view is valid only during the call.
using final_id_handler = std::function<void(std::string_view custom_id)>;

/// Told the input line number of each final bad-line record, in file order, so that the run
/// does not write that line's record again. Bad-line records are keyed by line, not by
/// `custom_id`: a duplicate-custom_id record carries the repeated id but is about its own line.
using final_line_handler = std::function<void(std::uint64_t line)>;

/// Makes an existing output file fit for appending the rest of the job: afterwards it holds
/// only complete, final records, and each of them has been reported through `on_final_id` or
/// `on_final_line` (either may be empty), so that the resumed run sends exactly the requests
/// that have none. The file is streamed: memory is bounded by its longest line.
///
/// A missing, empty or non-regular file (a pipe, /dev/null) needs nothing: the result is empty
/// and no output file is created. An unfinished last line is cut off with ftruncate(2). When
/// records are removed, the kept lines are copied to `output_path + ".sluice-tmp"` (a stale
/// one from an earlier crash is overwritten), synced and renamed over the output, and the
/// directory is synced: a crash at any moment leaves either the old file or the new one, and
/// running recovery again finishes the job. The error file is replaced the same way.
///
/// Call this before opening the output for appending (O_APPEND): a descriptor opened earlier
/// would still refer to the replaced file.
///
/// Exception safety: a complete line that is not a sluice output record (not JSON, or without
/// `custom_id`, `response` and `error`) means the file was not written by sluice or was
/// edited: std::runtime_error names the file and the line, and no file is changed. I/O failures
/// throw std::system_error and leave the old files in place. The handlers may have been called
/// before an exception; discard what they collected.
///
/// Thread safety: none; no other process may write the output while this runs.
journal_recovery recover_journal(const std::string& output_path,
                                 const journal_options& options,
                                 const final_id_handler& on_final_id,
                                 const final_line_handler& on_final_line);

} // namespace sluice
