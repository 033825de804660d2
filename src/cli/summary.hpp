#pragma once

#include <sluice/metrics.hpp>

#include <chrono>
#include <cstdint>
#include <iosfwd>

namespace sluice::cli {

/// What the batch job counted itself, beside the engines' statistics.
struct job_counts {
    /// Input lines read (blank lines excluded).
    std::uint64_t lines = 0;
    /// Lines written as error records without a request (bad input, repeated custom_id).
    std::uint64_t bad_lines = 0;
    /// Lines whose final record was already in the output (a resumed run).
    std::uint64_t skipped = 0;
};

/// Prints the end-of-run summary: lines, successes, failures by kind, retries by cause,
/// tokens, wall time, rate and latency percentiles.
void print_summary(std::ostream& os,
                   const stats_snapshot& stats,
                   const job_counts& job,
                   std::chrono::steady_clock::duration wall);

/// Writes the same summary as one JSON object (for `sluice run --summary FILE`): lines,
/// requests, succeeded, failed, bad_lines, skipped, failures and retries by kind, rate_limited,
/// prompt/completion tokens, wall_seconds, requests_per_second, and latency_ms percentiles.
void write_summary_json(std::ostream& os,
                        const stats_snapshot& stats,
                        const job_counts& job,
                        std::chrono::steady_clock::duration wall,
                        int exit_status);

} // namespace sluice::cli
