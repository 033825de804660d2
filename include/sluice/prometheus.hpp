#pragma once

#include <sluice/metrics.hpp>

#include <string>

// The engine's counters in the Prometheus text exposition format, for a service that serves
// its own /metrics (`sluice run --metrics-listen` serves the same text).

namespace sluice {

/// Appends `stats` (from `dispatcher::stats()`, or several dispatchers' `merge`d) to `out` in
/// the Prometheus text exposition format 0.0.4: for each metric a `# HELP` and a `# TYPE` line,
/// then its samples; names prefixed `sluice_`, units in the name (`_seconds`), counters ending
/// in `_total`, label values escaped (`\\`, `\"`, `\n`). docs/scale-out.md lists every metric.
///
/// Scopes are labelled `scope="(endpoint)"` for the endpoint's and `scope="MODEL"` for a
/// model's own. Latencies are histograms with the same cumulative `le` bounds (1 ms to 300 s),
/// so series of several processes can be summed; `timing_histogram::count_at_most` says how a
/// value near a bound is counted.
///
/// Thread safety: a pure function of its arguments.
void render_prometheus(const stats_snapshot& stats, std::string& out);

} // namespace sluice
