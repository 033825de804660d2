#include "harness/report_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

// The HTML report's charts of the run over time: inline SVG line charts, one point per slice of
// the timeline, no script.

namespace sluice::detail {

namespace {

struct series {
    std::string_view name;
    std::string_view colour;
    std::vector<double> values;
};

constexpr int chart_w = 900, chart_h = 220, left = 70, right = 20, top = 24, bottom = 34;

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, std::fabs(v) >= 1000 ? "%.0f" : "%.4g", v);
    return buf;
}

// The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at
// or above `v`, so that a chart's top is near its highest point; 1 for nothing to show.
double nice_ceiling(double v) {
    if (!(v > 0))
        return 1;
    const double p = std::pow(10, std::floor(std::log10(v)));
    for (double m : {1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0})
        if (m * p >= v * (1 - 1e-12))
            return m * p;
    return 10 * p;
}

// A round step for about `parts` ticks up to `v`: 1, 2 or 5 times a power of ten.
double nice_step(double v, double parts) {
    const double raw = v / parts;
    const double p = std::pow(10, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0})
        if (m * p >= raw * (1 - 1e-12))
            return m * p;
    return 10 * p;
}

void axes(std::string& out, double y_max, double x_max) {
    const int plot_w = chart_w - left - right, plot_h = chart_h - top - bottom;
    for (int i = 0; i <= 4; ++i) {
        const int y = top + plot_h - plot_h * i / 4;
        out += "<line x1=\"" + std::to_string(left) + "\" y1=\"" + std::to_string(y) + "\" x2=\"" +
               std::to_string(left + plot_w) + "\" y2=\"" + std::to_string(y) +
               "\" stroke=\"#ddd\"/>";
        out += "<text x=\"" + std::to_string(left - 6) + "\" y=\"" + std::to_string(y + 4) +
               "\" text-anchor=\"end\">" + num(y_max * i / 4) + "</text>\n";
    }
    const double step = nice_step(x_max, 6);
    for (double t = 0; t <= x_max * (1 + 1e-9); t += step) {
        const int x = left + static_cast<int>(t / x_max * plot_w);
        out += "<text x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(chart_h - 14) +
               "\" text-anchor=\"middle\">" + num(t) + "</text>";
    }
    out += "<text x=\"" + std::to_string(left + plot_w / 2) + "\" y=\"" +
           std::to_string(chart_h - 1) + "\" text-anchor=\"middle\">seconds</text>\n";
}

void polyline(std::string& out, const series& s, double y_max, double bucket_s, double x_max) {
    const int plot_w = chart_w - left - right, plot_h = chart_h - top - bottom;
    std::string points;
    std::string dots;
    for (std::size_t i = 0; i < s.values.size(); ++i) {
        // Each slice's value at its middle.
        const double t = (static_cast<double>(i) + 0.5) * bucket_s;
        const int x = left + static_cast<int>(t / x_max * plot_w);
        const int y = top + plot_h - static_cast<int>(s.values[i] / y_max * plot_h);
        points += std::to_string(x) + "," + std::to_string(y) + " ";
        if (s.values.size() <= 60)
            dots += "<circle cx=\"" + std::to_string(x) + "\" cy=\"" + std::to_string(y) +
                    "\" r=\"2.5\" fill=\"" + std::string(s.colour) + "\"/>";
    }
    out += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + std::string(s.colour) +
           "\" points=\"" + points + "\"/>" + dots + "\n";
}

void legend(std::string& out, const std::vector<series>& all) {
    int x = left;
    for (const series& s : all) {
        out += "<rect x=\"" + std::to_string(x) + "\" y=\"6\" width=\"12\" height=\"12\" fill=\"" +
               std::string(s.colour) + "\"/><text x=\"" + std::to_string(x + 16) + "\" y=\"16\">" +
               std::string(s.name) + "</text>";
        x += 30 + static_cast<int>(s.name.size()) * 7;
    }
    out += '\n';
}

void line_chart(std::string& out,
                std::string_view title,
                const std::vector<series>& all,
                double bucket_s) {
    double y_max = 0;
    std::size_t n = 0;
    for (const series& s : all) {
        n = std::max(n, s.values.size());
        for (double v : s.values)
            y_max = std::max(y_max, v);
    }
    y_max = nice_ceiling(y_max);
    const double x_max = std::max(bucket_s * static_cast<double>(n), bucket_s);
    out += "<h3>" + std::string(title) + "</h3>\n";
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(chart_w) +
           "\" height=\"" + std::to_string(chart_h) + "\">\n";
    axes(out, y_max, x_max);
    for (const series& s : all)
        polyline(out, s, y_max, bucket_s, x_max);
    legend(out, all);
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
    out += "<h2>Over time</h2>\n<p>One point per " + num(w) +
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
    line_chart(out, "Requests per second", rate, w);
    line_chart(out,
               "Output tokens per second",
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
    line_chart(out, "Latency of the requests that ended in each slice", latency, w);
}

} // namespace sluice::detail
