#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace sluice::cli {

/// Options of `sluice merge`, bound to its flags.
struct merge_command_options {
    /// The shard outputs, in the order their records are copied.
    std::vector<std::string> shard_outputs;
    /// The merged output (-o).
    std::string output;
    /// The input all the shards were cut from (--input).
    std::string input;
    bool quiet = false;
};

/// Registers `sluice merge`: the outputs of `sluice run --shard K/N` into one, checked against
/// the input.
void add_merge_command(CLI::App& app);

/// Merges; prints what was found on stderr and returns the exit status: 0 merged, 1 missing,
/// duplicated or unknown records (nothing written), 2 bad arguments, 4 a file that cannot be
/// read or written, or is not a sluice output.
int merge(const merge_command_options& opts);

} // namespace sluice::cli
