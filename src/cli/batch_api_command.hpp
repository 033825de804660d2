#pragma once

#include "cli/exit_status.hpp"
#include "cli/run_options.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace sluice::cli {

/// Options of `sluice batch submit|status|collect|cancel`: the deferred way through the
/// provider's Batch API. `run` carries the server flags, the config file and, for
/// `--finish-live`, the engine's flags, as `sluice run` takes them.
struct batch_api_options {
    run_options run;
    /// The job's state file; default: the output's (or the input's) name + ".batch.json".
    std::string state;
    std::uint64_t max_batch_requests = 50'000;
    std::uint64_t max_batch_bytes = 200'000'000;
    std::string completion_window = "24h";
    /// collect: wait until every part is final (else collect what is, and say what is not).
    bool wait = false;
    /// collect: first and longest pause between two polls of the parts, in seconds.
    double poll_interval_s = 30;
    double max_poll_interval_s = 300;
    /// collect: send the lines of expired, failed or cancelled parts live, or in new batches.
    bool finish_live = false;
    bool resubmit = false;
};

/// Registers `sluice batch` and its subcommands.
void add_batch_api_command(CLI::App& app);

/// The subcommands; each returns the exit status.
int batch_submit(batch_api_options& o);
int batch_status(batch_api_options& o);
int batch_collect(batch_api_options& o);
int batch_cancel(batch_api_options& o);

} // namespace sluice::cli
