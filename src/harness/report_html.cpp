#include "harness/report_metrics.hpp"

#include <sluice/harness/report.hpp>

#include <algorithm>
#include <cstdio>
#include <iterator>

namespace sluice {

namespace detail {

void append_escaped(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }
}

} // namespace detail

namespace {

using detail::append_escaped;

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

double ms_of(timing_histogram::duration d) {
    return detail::to_ms(static_cast<double>(d.count()));
}

void row(std::string& out, std::string_view label, std::string_view value) {
    out += "<tr><th>";
    append_escaped(out, label);
    out += "</th><td>";
    append_escaped(out, value);
    out += "</td></tr>\n";
}

constexpr std::string_view page_head = R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>)";

constexpr std::string_view page_style = R"(</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
tr > th:first-child { text-align: left; }
svg text { font-size: 12px; font-family: system-ui, sans-serif; }
svg text.level-label { font-size: 11px; fill: #555; }
figure { margin: 0 0 1em 0; }
details { margin: 0.5em 0; border: 1px solid #ddd; padding: 0.3em 0.8em; }
summary { font-weight: bold; cursor: pointer; }
</style>
</head>
<body>
)";

void html_extras(std::string& out, const report_extras& x) {
    if (x.stream)
        row(out, "Streaming", *x.stream ? "yes" : "no");
    if (!x.input.empty())
        row(out, "Input", x.input);
    if (x.warmup.count() > 0)
        row(out,
            "Warm-up (s, requests excluded)",
            fmt("%.2f", std::chrono::duration<double>(x.warmup).count()) + ", " +
                std::to_string(x.warmup_requests));
    if (x.cancelled > 0)
        row(out, "Cancelled (not recorded)", std::to_string(x.cancelled));
}

void html_summary(std::string& out, const recorder& rec, const report_context& ctx) {
    const arrivals_options& load = ctx.load;
    out += "<table>\n";
    if (!ctx.date.empty())
        row(out, "Date", ctx.date);
    if (!ctx.backend.empty())
        row(out, "Backend", ctx.backend);
    if (!ctx.model_id.empty())
        row(out, "Model", ctx.model_id);
    row(out, "Request rate (req/s)", load.rate > 0 ? fmt("%.2f", load.rate) : "inf");
    row(out, "Arrival process", load.rate > 0 ? detail::process_name(load.process) : "unpaced");
    if (load.process == arrival_process::gamma)
        row(out, "Burstiness", fmt("%.2f", load.burstiness));
    row(out, "Maximum concurrency", load.concurrency ? std::to_string(load.concurrency) : "none");
    html_extras(out, ctx.extras);
    row(out, "Successful requests", std::to_string(rec.completed()));
    row(out, "Failed requests", std::to_string(rec.failed()));
    for (const auto& [kind, n] : rec.failures())
        row(out, "Failed: " + kind, std::to_string(n));
    row(out, "Duration (s)", fmt("%.2f", std::chrono::duration<double>(rec.wall()).count()));
    row(out, "Total input tokens", std::to_string(rec.input_tokens()));
    row(out, "Total output tokens", std::to_string(rec.output_tokens()));
    row(out, "Request throughput (req/s)", fmt("%.2f", rec.request_throughput()));
    if (const auto goodput = detail::goodput_of(rec, ctx.extras))
        row(out,
            "Request goodput (req/s, " + to_string(ctx.extras.goodput->slo()) + " ms)",
            fmt("%.2f", *goodput));
    row(out, "Output token throughput (tok/s)", fmt("%.2f", rec.output_throughput()));
    row(out, "Total token throughput (tok/s)", fmt("%.2f", rec.total_token_throughput()));
    out += "</table>\n";
}

void html_latency_table(std::string& out, const recorder& rec) {
    out += "<h2>Latencies (ms)</h2>\n<table>\n<tr><th>metric</th><th>count</th><th>mean</th>"
           "<th>std</th><th>min</th>";
    for (double p : report_percentiles)
        out += "<th>p" + detail::percentile_word(p) + "</th>";
    out += "<th>max</th></tr>\n";
    for (const auto& m : detail::report_metrics) {
        const timing_histogram& h = (rec.*m.histogram)();
        out += "<tr><th>";
        append_escaped(out, m.header);
        out += "</th><td>" + std::to_string(h.count()) + "</td>";
        out += "<td>" + fmt("%.3f", detail::to_ms(h.mean_ns())) + "</td>";
        out += "<td>" + fmt("%.3f", detail::to_ms(h.stddev_ns())) + "</td>";
        out += "<td>" + fmt("%.3f", ms_of(h.min())) + "</td>";
        for (double p : report_percentiles)
            out += "<td>" + fmt("%.3f", ms_of(h.percentile(p))) + "</td>";
        out += "<td>" + fmt("%.3f", ms_of(h.max())) + "</td></tr>\n";
    }
    out += "</table>\n";
}

// Horizontal bars of one metric's percentiles and max, scaled to the max.
void html_chart(std::string& out, const detail::report_metric& m, const timing_histogram& h) {
    constexpr int label_w = 60, bar_w = 360, bar_h = 18, gap = 4;
    constexpr int bars = static_cast<int>(std::size(report_percentiles)) + 1;
    const double top = ms_of(h.max()) > 0 ? ms_of(h.max()) : 1;
    out += "<h3>";
    append_escaped(out, m.header);
    out += "</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
           std::to_string(label_w + bar_w + 120) + "\" height=\"" +
           std::to_string(bars * (bar_h + gap)) + "\">\n";
    for (int i = 0; i < bars; ++i) {
        const bool is_max = i == bars - 1;
        const double v = is_max ? ms_of(h.max()) : ms_of(h.percentile(report_percentiles[i]));
        const std::string label =
            is_max ? "max" : "p" + detail::percentile_word(report_percentiles[i]);
        const int y = i * (bar_h + gap);
        const int w = std::max(1, static_cast<int>(v / top * bar_w));
        out += "<text x=\"0\" y=\"" + std::to_string(y + 13) + "\">" + label + "</text>";
        out += "<rect x=\"" + std::to_string(label_w) + "\" y=\"" + std::to_string(y) +
               "\" width=\"" + std::to_string(w) + "\" height=\"" + std::to_string(bar_h) +
               "\" fill=\"#4a7ab5\"/>";
        out += "<text x=\"" + std::to_string(label_w + w + 6) + "\" y=\"" + std::to_string(y + 13) +
               "\">" + fmt("%.3f ms", v) + "</text>\n";
    }
    out += "</svg>\n";
}

} // namespace

void detail::html_page_head(std::string& out, std::string_view title) {
    out += page_head;
    append_escaped(out, title);
    out += page_style;
    out += "<h1>";
    append_escaped(out, title);
    out += "</h1>\n";
}

void detail::html_run_sections(std::string& out, const recorder& rec, const report_context& ctx) {
    html_summary(out, rec, ctx);
    html_latency_table(out, rec);
    if (ctx.extras.over_time && !ctx.extras.over_time->buckets().empty())
        detail::html_timeline(out, *ctx.extras.over_time);
    for (const auto& m : detail::report_metrics) {
        const timing_histogram& h = (rec.*m.histogram)();
        if (!h.empty())
            html_chart(out, m, h);
    }
}

std::string report_html(const recorder& rec, const report_context& ctx) {
    std::string out;
    detail::html_page_head(out, "sluice bench report");
    detail::html_run_sections(out, rec, ctx);
    out += detail::html_page_tail;
    return out;
}

} // namespace sluice
