#pragma once

#include "cli/exit_status.hpp"
#include "cli/run_options.hpp"

#include <CLI/CLI.hpp>

namespace sluice::cli {

/// Registers `sluice run`.
void add_run_command(CLI::App& app);

/// Runs a batch job; returns the exit status.
int run(const run_options& opts);

} // namespace sluice::cli
