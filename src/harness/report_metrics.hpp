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

/// The charts of throughput and latency over the run (report_timeline.cpp).
void html_timeline(std::string& out, const timeline& t);

} // namespace sluice::detail
