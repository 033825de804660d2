#pragma once

#include "sink/atomic_file.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

// Merging what the provider returned into the job's output, one record per custom_id.
namespace sluice::detail {

// The job's output (OUT.jsonl) opened as a journal, as `sluice run` resumes its output: the
// torn tail of a killed writer cut off, the final records' ids and bad-line numbers read,
// then opened for appending. A record is appended only for an id (or bad line) not yet there.
class merged_output {
public:
    explicit merged_output(std::string path);

    bool has_id(std::string_view custom_id) const;
    bool has_bad_line(std::uint64_t line) const;

    // Appends one record (no newline) for `custom_id` unless the output has one; true when
    // appended.
    bool append(std::string_view record, std::string_view custom_id);
    // Appends a bad-line record unless the output has one for that line.
    bool append_bad_line(std::string_view record, std::uint64_t line);
    // Writes what is buffered and syncs the file.
    void sync();

    std::uint64_t records() const noexcept { return ids_.size() + bad_lines_.size(); }

private:
    void flush();

    std::string path_;
    std::unordered_set<std::string> ids_;
    std::unordered_set<std::uint64_t> bad_lines_;
    file_handle fd_;
    std::string buffer_;
};

// What merging one provider file did.
struct merge_counts {
    std::uint64_t written = 0;    // records appended
    std::uint64_t duplicates = 0; // ids the output had already
    std::uint64_t unfinished = 0; // expired or cancelled requests: not answered, not written
};

// Appends the records of a downloaded output or error file of a batch to `out`, in the form
// `sluice run` writes: an answer as the provider wrote it; a request the provider answered
// with an error status with `error` set as `sluice run` sets it (code from the status, the
// provider's message); requests the batch did not run (batch_expired, batch_cancelled) not
// at all, so that they stay to be finished. Throws std::runtime_error on a line that is not a
// Batch API output record.
merge_counts merge_provider_file(const std::string& path, merged_output& out);

// Copies the lines of a part's input file whose custom_id has no record in `out` into
// `unfinished_path` (synced): what a batch that expired, was cancelled or failed left undone.
// Returns how many.
std::uint64_t write_unfinished(const std::string& part_path,
                               const merged_output& out,
                               const std::string& unfinished_path);

// Appends the bad-line records of `bad_lines_path` (written by split_input) to `out`; returns
// how many were new.
std::uint64_t merge_bad_lines(const std::string& bad_lines_path, merged_output& out);

} // namespace sluice::detail
