#pragma once

#include <cstdint>
#include <string>
#include <vector>

// The state file of a deferred job (`sluice batch`): what was split, uploaded, created and
// collected, so that any command can be killed and run again without doing a step twice.
namespace sluice::detail {

// One provider batch of the job: its input file here, and what the provider made of it.
struct batch_part {
    std::uint32_t index = 0; // 1-based, in the order the parts were made
    std::string file;        // its Batch API input, relative to the state directory
    std::uint64_t lines = 0;
    std::uint64_t bytes = 0;
    // An upload (or a create) was started and not seen to end: on resume, the provider is
    // searched for it before it is made again.
    bool upload_pending = false;
    std::string file_id;
    bool create_pending = false;
    std::string batch_id;
    // As last polled.
    std::string status;
    std::uint64_t total = 0, completed = 0, failed = 0;
    std::string output_file_id, error_file_id;
    // Its records are in the output; `unfinished` lines (expired, cancelled, a failed batch)
    // are in `unfinished_file` in Batch API form, and `finished_by` says what took them on
    // ("live", "resubmitted as part N"), empty while nothing has.
    bool merged = false;
    std::uint64_t unfinished = 0;
    std::string unfinished_file;
    std::string finished_by;
    // 0 for a part of the input; 1 + its source's for a part made by --resubmit.
    std::uint32_t generation = 0;
};

// The whole job. Written whole, atomically, after every step (save()).
struct batch_state {
    std::uint32_t version = 1;
    std::string job;   // random id, in every part's metadata and upload name
    std::string input; // as given to submit
    long long created_at = 0;
    std::string endpoint = "/v1/chat/completions";
    std::string completion_window = "24h";
    std::uint64_t input_lines = 0;
    std::uint64_t bad_lines = 0;
    std::string bad_lines_file; // records of the bad lines, relative to the state directory
    std::vector<batch_part> parts;

    // The directory beside `state_path` that holds the parts and downloads: STATE + ".d".
    static std::string directory_of(const std::string& state_path);

    // Reads a state file; throws std::runtime_error naming the file when it is not one.
    static batch_state load(const std::string& path);

    // Replaces the state file in one atomic step (synced, renamed, directory synced).
    void save(const std::string& path) const;
};

} // namespace sluice::detail
