#pragma once

#include <sluice/harness/arrivals.hpp>
#include <sluice/harness/recorder.hpp>

#include <string>

namespace sluice {

/// What the run was, echoed at the top of a report: the recorder knows only the results.
/// Never put a secret here (an API key, a URL with credentials); reports are written to files
/// and shared.
struct report_context {
    /// Name of the server or backend under test ("vllm", "llama.cpp"); empty = left out.
    std::string backend;
    /// The model asked for; empty = left out.
    std::string model_id;
    /// When the run was made, formatted by the caller (vLLM writes "%Y%m%d-%H%M%S"); the
    /// report never reads a clock. Empty = left out.
    std::string date;
    /// The load shape the run used: rate, burstiness, concurrency cap, request count.
    arrivals_options load;
};

/// Percentiles reported for every latency metric, besides mean, median, std, min and max.
/// The median is the 50th percentile.
inline constexpr double report_percentiles[] = {50, 90, 95, 99, 99.9};

/// The summary as a text table for a terminal, laid out like vLLM's benchmark_serving.py
/// result ("Successful requests:", "Mean TTFT (ms):", ...), with send lag and failures by
/// kind added. Milliseconds with two decimals.
std::string report_text(const recorder& rec, const report_context& ctx);

/// The summary as one JSON object whose fields carry vLLM's result names and units where
/// they correspond: `date`, `backend`, `model_id`, `num_prompts` (null without a count
/// limit), `request_rate` ("inf" without pacing), `burstiness`, `max_concurrency` (null
/// without a cap), `duration` (s), `completed`, `total_input_tokens`, `total_output_tokens`,
/// `request_throughput` (req/s), `output_throughput` and `total_token_throughput` (tok/s),
/// and for each metric m of `ttft`, `tpot`, `itl`, `e2el` the fields `mean_m_ms`,
/// `median_m_ms`, `std_m_ms` and `p99_m_ms` (likewise `p50`, `p90`, `p95`, `p99.9`). Added
/// beside them: `arrivals` (the process name), `failed`, `failures` (an object of counts by
/// kind), `count_m` (values recorded), `min_m_ms` and `max_m_ms`, and the metric `send_lag`.
/// A metric with no values reports 0, as vLLM does; `count_m` tells such a 0 from a measured
/// one.
std::string report_json(const recorder& rec, const report_context& ctx);

/// The same summary as a standalone HTML page: one file with inline CSS and SVG bar charts
/// of the percentiles, no scripts and no external assets, so it opens anywhere offline.
std::string report_html(const recorder& rec, const report_context& ctx);

} // namespace sluice
