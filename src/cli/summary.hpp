#pragma once

#include <sluice/metrics.hpp>

#include <chrono>
#include <cstdint>
#include <iosfwd>

namespace sluice::cli {

/// Prints the end-of-run summary: lines, successes, failures by kind, retries by cause,
/// tokens, wall time, rate and latency percentiles.
void print_summary(std::ostream& os,
                   const stats_snapshot& stats,
                   std::uint64_t lines,
                   std::uint64_t bad_lines,
                   std::chrono::steady_clock::duration wall);

/// Writes the same summary as one JSON object (for `sluice run --summary FILE`): lines,
/// requests, succeeded, failed, bad_lines, failures and retries by kind, rate_limited,
/// prompt/completion tokens, wall_seconds, requests_per_second, and latency_ms percentiles.
void write_summary_json(std::ostream& os,
                        const stats_snapshot& stats,
                        std::uint64_t lines,
                        std::uint64_t bad_lines,
                        std::chrono::steady_clock::duration wall,
                        int exit_status);

} // namespace sluice::cli
