#pragma once

#include <sluice/harness/arrivals.hpp>
#include <sluice/harness/recorder.hpp>

#include <sluice/harness/report.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>

// The metric table the three report forms share, so that text, JSON and HTML list the same
// metrics under the same names in the same order (vLLM's order, send lag last).

namespace sluice::detail {

struct report_metric {
    /// Field stem in JSON: mean_<key>_ms.
    std::string_view key;
    /// Short name in the text table: "Mean <name> (ms):".
    std::string_view name;
    /// Section header in the text table and the HTML page.
    std::string_view header;
    const timing_histogram& (recorder::*histogram)() const noexcept;
};

inline constexpr std::array<report_metric, 5> report_metrics{{
    {"ttft", "TTFT", "Time to First Token", &recorder::ttft},
    {"tpot", "TPOT", "Time per Output Token (excl. 1st token)", &recorder::tpot},
    {"itl", "ITL", "Inter-token Latency", &recorder::itl},
    {"e2el", "E2EL", "End-to-end Latency", &recorder::e2e},
    {"send_lag", "send lag", "Send Lag (sent - scheduled)", &recorder::send_lag},
}};

/// "99" for 99, "99.9" for 99.9: vLLM's spelling of a percentile in a field name.
std::string percentile_word(double p);

/// Milliseconds in a nanosecond count.
inline double to_ms(double ns) noexcept {
    return ns / 1e6;
}

/// The name of an arrival process as options and reports spell it.
std::string_view process_name(arrival_process p) noexcept;

/// Good requests per second of wall time; empty when goodput is not measured.
std::optional<double> goodput_of(const recorder& rec, const report_extras& extras);

/// `v` with two decimals ("12.35").
std::string fixed2(double v);

class json_fields;

/// Every field of the single-run JSON object (report_json) into `f`, left open so that a
/// caller can add its own fields (the sweep adds the level).
void json_report_fields(json_fields& f, const recorder& rec, const report_context& ctx);

/// Appends `s` with the characters HTML gives a meaning escaped (& < > " ').
void append_escaped(std::string& out, std::string_view s);

/// The start of a report page up to its `<h1>` of `title` (escaped), with the shared style.
void html_page_head(std::string& out, std::string_view title);

/// The end of a report page.
inline constexpr std::string_view html_page_tail = "</body>\n</html>\n";

/// One run's sections of the HTML report: summary, latency table, the run over time and the
/// percentile charts (report_html.cpp).
void html_run_sections(std::string& out, const recorder& rec, const report_context& ctx);

/// The charts of throughput and latency over the run (report_timeline.cpp).
void html_timeline(std::string& out, const timeline& t);

} // namespace sluice::detail
