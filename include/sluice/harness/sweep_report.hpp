#pragma once

#include <sluice/harness/recorder.hpp>
#include <sluice/harness/report.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

// Reports of a sweep: the same benchmark run at several levels of load, one after another,
// each level with its own recorder. The per-level figures are those of report.hpp.

namespace sluice {

/// What a sweep varies from level to level.
enum class sweep_parameter {
    /// The open loop's rate, requests per second (`arrivals_options::rate`).
    rate,
    /// The requests in flight: a closed loop's concurrency, or the cap of an open loop
    /// (`arrivals_options::concurrency`).
    concurrency,
};

/// "rate" or "concurrency", as `--sweep` and the JSON field `sweep_parameter` spell it.
std::string_view to_string(sweep_parameter p) noexcept;

/// A level in words: "rate 2.5/s" or "concurrency 4".
std::string sweep_level_name(sweep_parameter p, double value);

/// One level of a sweep: its value and its run's figures.
///
/// Object lifetimes: `rec` and whatever `context.extras` points to (goodput, timeline) must
/// outlive every report call given this level.
struct sweep_level {
    /// The level: requests per second for a rate sweep, requests in flight for a concurrency
    /// sweep.
    double value = 0;
    /// The level's results; never null when given to a report function.
    const recorder* rec = nullptr;
    /// What the level's run was (its load shape carries the level), as for report_text.
    report_context context;
};

/// One line for a level that has just finished, for a terminal: "level 2/4  concurrency 4:
/// 200 completed, 0 failed, 95.31 req/s, E2EL p50 41.20 ms p99 44.02 ms". `index` counts from
/// 0; `count` is the number of levels planned.
std::string report_sweep_line(sweep_parameter p,
                              const sweep_level& level,
                              std::size_t index,
                              std::size_t count);

/// The sweep as a text table, one row per level in the order given: the level, completed,
/// failed, request throughput (req/s), output token throughput (tok/s), goodput (req/s, only
/// when a level measured it), TTFT p50 and p99, TPOT p50, ITL p99, E2EL p50 and p99 and send
/// lag p99 (ms; "-" for a metric without values). Header lines name the backend and model of
/// the first level.
std::string report_sweep_text(sweep_parameter p, std::span<const sweep_level> levels);

/// The sweep as a JSON array with one object per level, in the order given. Each object is
/// exactly the object report_json writes for that level (vLLM's key names, so a reader of one
/// run reads each element) with two fields added: `sweep_parameter` ("rate" or
/// "concurrency") and `sweep_level` (the level's value).
std::string report_sweep_json(sweep_parameter p, std::span<const sweep_level> levels);

/// The sweep as one self-contained HTML page (inline CSS and SVG, no script, nothing
/// fetched): a table of the levels; charts of latency against the achieved request
/// throughput (TTFT p50 and p99, E2EL p50 and p99, TPOT p50, each when measured), one point
/// per level labelled with it; achieved against offered rate (a rate sweep) or throughput
/// against concurrency; then each level's full report (as report_html) in a `<details>`
/// element. Every string from the context is escaped.
std::string report_sweep_html(sweep_parameter p, std::span<const sweep_level> levels);

} // namespace sluice
