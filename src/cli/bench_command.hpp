#pragma once

#include "cli/bench_options.hpp"
#include "cli/exit_status.hpp"

#include <CLI/CLI.hpp>

namespace sluice::cli {

/// Registers `sluice bench`.
void add_bench_command(CLI::App& app);

/// Runs a benchmark: the progress line on stderr, the report on stdout and in the --json and
/// --html files. Returns the exit status (docs/bench.md): 0 when the run completed, failed
/// requests included.
int bench(const bench_options& opts);

} // namespace sluice::cli
