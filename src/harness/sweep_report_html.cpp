#include "harness/report_metrics.hpp"
#include "harness/report_svg.hpp"
#include "harness/sweep_table.hpp"

#include <sluice/harness/sweep_report.hpp>

#include <algorithm>

// The HTML page of a sweep: its table, latency against load, throughput against the level,
// then each level's own report folded in a <details> element. Inline SVG, no script.

namespace sluice {

namespace {

using detail::append_escaped;
using detail::chart_series;
using detail::svg_chart;

double ms_at(const timing_histogram& h, double percentile) {
    return detail::to_ms(static_cast<double>(h.percentile(percentile).count()));
}

void html_table(std::string& out, const detail::sweep_table& t) {
    out += "<h2>Levels</h2>\n<table>\n<tr>";
    for (const std::string& h : t.header) {
        out += "<th>";
        append_escaped(out, h);
        out += "</th>";
    }
    out += "</tr>\n";
    for (const auto& row : t.rows) {
        out += "<tr>";
        for (std::size_t i = 0; i < row.size(); ++i) {
            out += i == 0 ? "<th>" : "<td>";
            append_escaped(out, row[i]);
            out += i == 0 ? "</th>" : "</td>";
        }
        out += "</tr>\n";
    }
    out += "</table>\n";
}

// What a chart draws: one x per level, series of one y per level, and the level labels.
struct sweep_chart {
    std::string_view id;
    std::string_view title;
    std::string_view x_label;
    std::string_view y_label;
    std::vector<double> xs;
    std::vector<chart_series> series;
    /// A dashed y = x line (achieved against offered: the points on it kept up).
    bool diagonal = false;
};

void diagonal_line(std::string& out, const svg_chart& c) {
    const double end = std::min(c.x_max, c.y_max);
    out += "<line x1=\"" + std::to_string(c.x(0)) + "\" y1=\"" + std::to_string(c.y(0)) +
           "\" x2=\"" + std::to_string(c.x(end)) + "\" y2=\"" + std::to_string(c.y(end)) +
           "\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n";
}

// One series: the line through its points in level order, a dot per level with its values
// as a tooltip, and (when `labelled`) the level written beside each dot.
void level_series(std::string& out,
                  const svg_chart& c,
                  const sweep_chart& ch,
                  const chart_series& s,
                  const std::vector<std::string>& levels,
                  bool labelled) {
    std::string points;
    for (std::size_t i = 0; i < ch.xs.size(); ++i)
        points += std::to_string(c.x(ch.xs[i])) + "," + std::to_string(c.y(s.values[i])) + " ";
    out += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + std::string(s.colour) +
           "\" points=\"" + points + "\"/>\n";
    for (std::size_t i = 0; i < ch.xs.size(); ++i) {
        const std::string x = std::to_string(c.x(ch.xs[i]));
        const std::string y = std::to_string(c.y(s.values[i]));
        out += "<circle class=\"level-point\" cx=\"" + x + "\" cy=\"" + y + "\" r=\"4\" fill=\"" +
               std::string(s.colour) + "\"><title>";
        append_escaped(out,
                       levels[i] + ": " + std::string(s.name) + " " +
                           detail::svg_number(s.values[i]) + ", " + std::string(ch.x_label) + " " +
                           detail::svg_number(ch.xs[i]));
        out += "</title></circle>";
        if (labelled) {
            out += "<text class=\"level-label\" x=\"" + std::to_string(c.x(ch.xs[i]) + 6) +
                   "\" y=\"" + std::to_string(c.y(s.values[i]) - 6) + "\">";
            append_escaped(out, levels[i]);
            out += "</text>";
        }
        out += '\n';
    }
}

void draw(std::string& out, const sweep_chart& ch, const std::vector<std::string>& levels) {
    svg_chart c;
    c.height = 300;
    c.bottom = 40;
    c.top = 36; // room for a level label above the highest point, below the legend
    c.x_max = detail::nice_ceiling(*std::max_element(ch.xs.begin(), ch.xs.end()));
    c.y_max = detail::nice_ceiling(detail::max_value(ch.series));
    if (ch.diagonal)
        c.x_max = c.y_max = std::max(c.x_max, c.y_max);
    out += "<figure id=\"" + std::string(ch.id) + "\">\n<h3>";
    append_escaped(out, ch.title);
    out += "</h3>\n";
    detail::svg_open(out, c);
    detail::svg_axes(out, c, ch.x_label, ch.y_label);
    if (ch.diagonal)
        diagonal_line(out, c);
    // The level beside the points of the last (highest) series only: one label per level.
    for (std::size_t i = 0; i < ch.series.size(); ++i)
        level_series(out, c, ch, ch.series[i], levels, i + 1 == ch.series.size());
    detail::svg_legend(out, c, ch.series);
    out += "</svg>\n</figure>\n";
}

std::vector<double> per_level(std::span<const sweep_level> levels,
                              const timing_histogram& (recorder::*metric)() const noexcept,
                              double percentile) {
    std::vector<double> v;
    for (const sweep_level& l : levels)
        v.push_back(ms_at(((*l.rec).*metric)(), percentile));
    return v;
}

bool measured(std::span<const sweep_level> levels,
              const timing_histogram& (recorder::*metric)() const noexcept) {
    return std::any_of(levels.begin(), levels.end(), [&](const sweep_level& l) {
        return !((*l.rec).*metric)().empty();
    });
}

void latency_charts(std::string& out,
                    std::span<const sweep_level> levels,
                    const std::vector<std::string>& names) {
    std::vector<double> xs;
    for (const sweep_level& l : levels)
        xs.push_back(l.rec->request_throughput());
    constexpr std::string_view x_label = "achieved request throughput (req/s)";
    out += "<h2>Latency against load</h2>\n";
    if (measured(levels, &recorder::ttft))
        draw(out,
             {"sweep-ttft",
              "Time to first token",
              x_label,
              "TTFT (ms)",
              xs,
              {{"TTFT p50", "#8e44ad", per_level(levels, &recorder::ttft, 50)},
               {"TTFT p99", "#c0392b", per_level(levels, &recorder::ttft, 99)}}},
             names);
    if (measured(levels, &recorder::tpot))
        draw(out,
             {"sweep-tpot",
              "Time per output token",
              x_label,
              "TPOT (ms)",
              xs,
              {{"TPOT p50", "#2e8b57", per_level(levels, &recorder::tpot, 50)}}},
             names);
    if (measured(levels, &recorder::e2e))
        draw(out,
             {"sweep-e2el",
              "End-to-end latency",
              x_label,
              "E2EL (ms)",
              xs,
              {{"E2EL p50", "#4a7ab5", per_level(levels, &recorder::e2e, 50)},
               {"E2EL p99", "#e67e22", per_level(levels, &recorder::e2e, 99)}}},
             names);
}

void load_chart(std::string& out,
                sweep_parameter p,
                std::span<const sweep_level> levels,
                const std::vector<std::string>& names) {
    sweep_chart ch{"sweep-load",
                   p == sweep_parameter::rate ? "Achieved against offered load"
                                              : "Throughput against concurrency",
                   p == sweep_parameter::rate ? "offered request rate (req/s)"
                                              : "concurrency (requests in flight)",
                   "achieved request throughput (req/s)",
                   {},
                   {{"achieved req/s", "#4a7ab5", {}}},
                   p == sweep_parameter::rate};
    for (const sweep_level& l : levels) {
        ch.xs.push_back(l.value);
        ch.series.front().values.push_back(l.rec->request_throughput());
    }
    out += "<h2>Throughput against the level</h2>\n";
    if (ch.diagonal)
        out += "<p>The dashed line is achieved = offered: a level below it did not keep up.</p>\n";
    draw(out, ch, names);
}

void level_details(std::string& out, sweep_parameter p, std::span<const sweep_level> levels) {
    out += "<h2>Each level</h2>\n";
    for (std::size_t i = 0; i < levels.size(); ++i) {
        out += "<details>\n<summary>";
        append_escaped(out,
                       "Level " + std::to_string(i + 1) + "/" + std::to_string(levels.size()) +
                           ": " + sweep_level_name(p, levels[i].value));
        out += "</summary>\n";
        detail::html_run_sections(out, *levels[i].rec, levels[i].context);
        out += "</details>\n";
    }
}

void html_intro(std::string& out, sweep_parameter p, std::span<const sweep_level> levels) {
    const report_context& first = levels.front().context;
    out += "<p>";
    append_escaped(out,
                   std::to_string(levels.size()) + " levels of " + std::string(to_string(p)) +
                       ", run one after another");
    for (const auto& [label, value] :
         {std::pair<std::string_view, std::string_view>{"backend", first.backend},
          {"model", first.model_id},
          {"date", first.date}})
        if (!value.empty()) {
            out += "; ";
            append_escaped(out, std::string(label) + " " + std::string(value));
        }
    out += ".</p>\n";
}

} // namespace

std::string report_sweep_html(sweep_parameter p, std::span<const sweep_level> levels) {
    std::string out;
    detail::html_page_head(out, "sluice bench sweep");
    if (levels.empty()) {
        out += "<p>No level was run.</p>\n";
        out += detail::html_page_tail;
        return out;
    }
    html_intro(out, p, levels);
    html_table(out, detail::make_sweep_table(p, levels));
    std::vector<std::string> names;
    for (const sweep_level& l : levels)
        names.push_back(p == sweep_parameter::rate ? detail::level_word(l.value) + "/s"
                                                   : "c=" + detail::level_word(l.value));
    latency_charts(out, levels, names);
    load_chart(out, p, levels, names);
    level_details(out, p, levels);
    out += detail::html_page_tail;
    return out;
}

} // namespace sluice
