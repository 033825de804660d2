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

} // namespace sluice::cli
