#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

// Putting one batch back together after its shards ran on several machines
// (`sluice run --shard K/N`, then `sluice merge`).

namespace sluice {

/// How `merge_outputs` reports what it finds.
struct merge_options {
    /// custom_ids named per kind of problem; the rest are only counted.
    std::size_t max_listed = 20;
};

/// The custom_ids of one kind of problem: how many, and the first few.
struct merge_id_list {
    std::uint64_t count = 0;
    /// At most merge_options::max_listed, in the order they were found.
    std::vector<std::string> first;
};

/// What `merge_outputs` found and did.
struct merge_report {
    /// Lines of the input (blank lines not counted): one record is expected for each.
    std::uint64_t input_lines = 0;
    /// Records read from the shard outputs, all of them.
    std::uint64_t records = 0;
    /// Input lines with no final record in any shard output, listed by custom_id (an id on
    /// two lines is listed once per line missing). Includes the lines of `unanswered`.
    merge_id_list missing;
    /// Records beyond the one per input line of their custom_id: the same shard merged twice,
    /// two runs of one shard into two files, or shards of different N mixed.
    merge_id_list duplicated;
    /// Records whose custom_id no input line has: an output of another input.
    merge_id_list unknown;
    /// Records that are not final answers (not_attempted, stopped, quota_exhausted,
    /// unauthorized, certificate_rejected): their shard stopped before the end, and resuming
    /// it (the same `sluice run` command) finishes it. Their lines count as missing.
    merge_id_list unanswered;
    /// True when the merged output was written: only when nothing is missing, duplicated or
    /// unknown.
    bool written = false;

    /// Exactly one final record per input line.
    bool complete() const noexcept {
        return missing.count == 0 && duplicated.count == 0 && unknown.count == 0;
    }
};

/// Merges the outputs of a batch's shards into `output`, checking that it holds exactly one
/// final record per line of `input`, as a run over the whole input would have written.
///
/// Each shard output's records are copied byte for byte, file after file, in the order given
/// (Batch API outputs are not in input order; `custom_id` joins them). A record is matched to
/// input lines by its custom_id (an id used by k lines expects k records: the first line's
/// answer and k - 1 duplicate_custom_id errors; a line without an id is `line-N`, as the run
/// records it). `output` is written under a temporary name beside it and renamed into place
/// once complete (created with mode 0600, less the umask; an existing file keeps its mode), so
/// it is never seen half-written; when anything is missing, duplicated or unknown it is not
/// written at all, and an existing file is left as it was.
///
/// Memory: 24 bytes per distinct custom_id of the input (its 128-bit hash, as the run's
/// duplicate detection compares ids, and two counters), never whole records. The input is read
/// once, and a second time only to name missing ids when some are missing.
///
/// Exception safety: throws std::invalid_argument when `output` is the input or one of the
/// shard outputs; std::runtime_error naming the file and line for a line that is not a sluice
/// output record, or a shard output that ends in a torn record (its run was killed: resume it
/// first); std::system_error when a file cannot be read or written. No output is written then.
merge_report merge_outputs(const std::vector<std::string>& shard_outputs,
                           const std::string& input,
                           const std::string& output,
                           const merge_options& options = {});

} // namespace sluice
