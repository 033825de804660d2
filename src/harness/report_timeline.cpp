#include "harness/report_metrics.hpp"
#include "harness/report_svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

// The HTML report's charts of the run over time: inline SVG line charts, one point per slice of
// the timeline, no script.

namespace sluice::detail {

namespace {

using series = chart_series;

void polyline(std::string& out, const svg_chart& c, const series& s, double bucket_s) {
    std::string points;
    std::string dots;
    for (std::size_t i = 0; i < s.values.size(); ++i) {
        // Each slice's value at its middle.
        const int x = c.x((static_cast<double>(i) + 0.5) * bucket_s);
        const int y = c.y(s.values[i]);
        points += std::to_string(x) + "," + std::to_string(y) + " ";
        if (s.values.size() <= 60)
            dots += "<circle cx=\"" + std::to_string(x) + "\" cy=\"" + std::to_string(y) +
                    "\" r=\"2.5\" fill=\"" + std::string(s.colour) + "\"/>";
    }
    out += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + std::string(s.colour) +
           "\" points=\"" + points + "\"/>" + dots + "\n";
}

void line_chart(std::string& out,
                std::string_view title,
                std::string_view y_label,
                const std::vector<series>& all,
                double bucket_s) {
    std::size_t n = 0;
    for (const series& s : all)
        n = std::max(n, s.values.size());
    svg_chart c;
    c.y_max = nice_ceiling(max_value(all));
    c.x_max = std::max(bucket_s * static_cast<double>(n), bucket_s);
    out += "<h3>" + std::string(title) + "</h3>\n";
    svg_open(out, c);
    svg_axes(out, c, "seconds", y_label);
    for (const series& s : all)
        polyline(out, c, s, bucket_s);
    svg_legend(out, c, all);
    out += "</svg>\n";
}

template <class F>
std::vector<double> column(const timeline& t, F f) {
    std::vector<double> v;
    v.reserve(t.buckets().size());
    for (const timeline_bucket& b : t.buckets())
        v.push_back(f(b));
    return v;
}

double mean_ms(std::chrono::nanoseconds sum, std::uint64_t n) {
    return n ? to_ms(static_cast<double>(sum.count())) / static_cast<double>(n) : 0.0;
}

} // namespace

void html_timeline(std::string& out, const timeline& t) {
    const double w = std::chrono::duration<double>(t.width()).count();
    bool failures = false, ttft = false;
    for (const timeline_bucket& b : t.buckets()) {
        failures = failures || b.failed > 0;
        ttft = ttft || b.ttft_count > 0;
    }
    out += "<h2>Over time</h2>\n<p>One point per " + svg_number(w) +
           " s; the last slice may be partial.</p>\n";
    std::vector<series> rate{
        {"sent/s", "#999999", column(t, [&](const timeline_bucket& b) { return b.sent / w; })},
        {"completed/s", "#4a7ab5", column(t, [&](const timeline_bucket& b) {
             return b.completed / w;
         })}};
    if (failures)
        rate.push_back({"failed/s", "#c0392b", column(t, [&](const timeline_bucket& b) {
                            return b.failed / w;
                        })});
    line_chart(out, "Requests per second", "requests/s", rate, w);
    line_chart(out,
               "Output tokens per second",
               "tokens/s",
               {{"output tok/s",
                 "#2e8b57",
                 column(t, [&](const timeline_bucket& b) { return b.output_tokens / w; })}},
               w);
    std::vector<series> latency{
        {"mean E2EL (ms)",
         "#4a7ab5",
         column(t, [](const timeline_bucket& b) { return mean_ms(b.e2el_sum, b.completed); })},
        {"max E2EL (ms)", "#e67e22", column(t, [](const timeline_bucket& b) {
             return to_ms(static_cast<double>(b.e2el_max.count()));
         })}};
    if (ttft)
        latency.push_back({"mean TTFT (ms)", "#8e44ad", column(t, [](const timeline_bucket& b) {
                               return mean_ms(b.ttft_sum, b.ttft_count);
                           })});
    line_chart(out, "Latency of the requests that ended in each slice", "ms", latency, w);
}

} // namespace sluice::detail
