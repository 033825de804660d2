#pragma once

#include <sluice/harness/arrivals.hpp>
#include <sluice/harness/recorder.hpp>
#include <sluice/harness/slo.hpp>
#include <sluice/harness/timeline.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace sluice {

/// What a load generator adds to the recorder's figures: goodput, the course of the run over
/// time, and how the requests were made. Every member is optional; the defaults add nothing
/// but `request_goodput: null` to the JSON, as vLLM writes it without `--goodput`.
struct report_extras {
    /// The requests that met the objectives; null, or no objective set: goodput not measured.
    /// Goodput is good requests per second of the recorder's wall time.
    const goodput_counter* goodput = nullptr;
    /// Throughput and latency over time: charts in the HTML page, arrays in the JSON
    /// (`timeline`); null: neither.
    const timeline* over_time = nullptr;
    /// Whether the requests asked for streamed answers; empty: not said.
    std::optional<bool> stream;
    /// Where the prompts came from, in words ("prompts.jsonl", "synthetic: 1024 input, 128
    /// output tokens"); empty: not said. Never a secret.
    std::string input;
    /// Warm-up left out of the figures, and the requests sent during it.
    std::chrono::milliseconds warmup{0};
    std::uint64_t warmup_requests = 0;
    /// Requests cut off by a stop (a signal, a fatal error such as a refused key) and not
    /// recorded as failures of the server.
    std::uint64_t cancelled = 0;
};

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
    /// Goodput, the run over time and how requests were made, when a load generator has them.
    report_extras extras;
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
/// one. From `ctx.extras`: `request_goodput` (req/s, null without objectives, as vLLM),
/// `good_requests` and `goodput_slo_ms` (the objectives), `seed`, `stream`, `input`,
/// `warmup_s`, `warmup_requests`, `cancelled`, and `timeline` (`bucket_s` and arrays per
/// slice: `sent`, `completed`, `failed`, `output_tokens`, `mean_e2el_ms`, `max_e2el_ms`,
/// `mean_ttft_ms`).
std::string report_json(const recorder& rec, const report_context& ctx);

/// The same summary as a standalone HTML page: one file with inline CSS and SVG bar charts
/// of the percentiles (and, with `ctx.extras.over_time`, charts of throughput and latency over
/// the run), no scripts and no external assets, so it opens anywhere offline.
std::string report_html(const recorder& rec, const report_context& ctx);

} // namespace sluice
