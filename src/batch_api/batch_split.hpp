#pragma once

#include <sluice/source/jsonl_reader.hpp>

#include "batch_api/batch_state.hpp"
#include "sink/atomic_file.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// Turning an input file into the input files of provider batches, within the provider's limits.
namespace sluice::detail {

// The provider's limits on one batch's input file, and the endpoint its lines name.
struct split_options {
    // Requests per batch (OpenAI: 50,000).
    std::uint64_t max_requests = 50'000;
    // Bytes per batch input file (OpenAI: 200 MB).
    std::uint64_t max_bytes = 200'000'000;
    // The `url` of every line, the batch's endpoint.
    std::string url = "/v1/chat/completions";
    // How prompt lines become requests (model, system).
    reader_options reader;
};

// Writes Batch API lines into part files `dir/part-K.jsonl`, starting a new part when the next
// line would take the current one past a limit. Each part file is synced when it is closed.
class part_writer {
public:
    part_writer(std::string dir, split_options opts, std::uint32_t first_index);

    // Appends one line (no newline) to the current part. False when the line alone is larger
    // than max_bytes: it can never be sent in a batch.
    bool add(std::string_view line);

    // Closes the last part; returns every part written.
    std::vector<batch_part> finish();

private:
    void close_current();

    std::string dir_;
    split_options opts_;
    std::uint32_t next_index_;
    std::vector<batch_part> parts_;
    file_handle fd_;
    std::string buffer_;
};

// What split_input found.
struct split_result {
    std::uint64_t lines = 0; // non-blank input lines
    std::uint64_t bad = 0;   // of which bad: recorded, never sent
    std::vector<batch_part> parts;
};

// Reads `input` with the reader `sluice run` uses and writes its good lines as Batch API lines
// into part files in `dir`, and each bad line (not a request, a repeated custom_id, too large
// for a batch) as the error record `sluice run` would write into `dir/bad_lines_name`.
split_result split_input(const std::string& input,
                         const std::string& dir,
                         const std::string& bad_lines_name,
                         const split_options& opts);

// The Batch API line of a request: {"custom_id","method":"POST","url","body"}.
std::string batch_line(std::string_view custom_id, std::string_view body, std::string_view url);

} // namespace sluice::detail
