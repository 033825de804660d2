#include "harness/json_fields.hpp"
#include "harness/report_metrics.hpp"
#include "harness/sweep_table.hpp"

#include <sluice/harness/sweep_report.hpp>

#include <algorithm>

namespace sluice {

namespace detail {

std::string level_word(double v) {
    return percentile_word(v); // the shortest round-trip spelling, as a percentile's
}

namespace {

// A percentile in ms with two decimals; "-" when the metric has no values.
std::string cell_ms(const timing_histogram& h, double percentile) {
    if (h.empty())
        return "-";
    return fixed2(to_ms(static_cast<double>(h.percentile(percentile).count())));
}

bool any_goodput(std::span<const sweep_level> levels) {
    return std::any_of(levels.begin(), levels.end(), [](const sweep_level& l) {
        return goodput_of(*l.rec, l.context.extras).has_value();
    });
}

} // namespace

sweep_table make_sweep_table(sweep_parameter p, std::span<const sweep_level> levels) {
    const bool goodput = any_goodput(levels);
    sweep_table t;
    t.header = {p == sweep_parameter::rate ? "rate (req/s)" : "concurrency",
                "completed",
                "failed",
                "req/s",
                "output tok/s"};
    if (goodput)
        t.header.push_back("goodput (req/s)");
    for (const char* h : {"TTFT p50", "TTFT p99", "TPOT p50", "ITL p99", "E2EL p50", "E2EL p99"})
        t.header.push_back(std::string(h) + " (ms)");
    t.header.push_back("send lag p99 (ms)");
    for (const sweep_level& l : levels) {
        const recorder& r = *l.rec;
        std::vector<std::string> row{level_word(l.value),
                                     std::to_string(r.completed()),
                                     std::to_string(r.failed()),
                                     fixed2(r.request_throughput()),
                                     fixed2(r.output_throughput())};
        if (goodput) {
            const auto g = goodput_of(r, l.context.extras);
            row.push_back(g ? fixed2(*g) : "-");
        }
        for (const std::string& c : {cell_ms(r.ttft(), 50),
                                     cell_ms(r.ttft(), 99),
                                     cell_ms(r.tpot(), 50),
                                     cell_ms(r.itl(), 99),
                                     cell_ms(r.e2e(), 50),
                                     cell_ms(r.e2e(), 99),
                                     cell_ms(r.send_lag(), 99)})
            row.push_back(c);
        t.rows.push_back(std::move(row));
    }
    return t;
}

} // namespace detail

std::string_view to_string(sweep_parameter p) noexcept {
    switch (p) {
    case sweep_parameter::rate:
        return "rate";
    case sweep_parameter::concurrency:
        return "concurrency";
    }
    return "unknown";
}

std::string sweep_level_name(sweep_parameter p, double value) {
    return p == sweep_parameter::rate ? "rate " + detail::level_word(value) + "/s"
                                      : "concurrency " + detail::level_word(value);
}

std::string report_sweep_line(sweep_parameter p,
                              const sweep_level& level,
                              std::size_t index,
                              std::size_t count) {
    const recorder& r = *level.rec;
    std::string line = "level " + std::to_string(index + 1) + "/" + std::to_string(count) + "  " +
                       sweep_level_name(p, level.value) + ": " + std::to_string(r.completed()) +
                       " completed, " + std::to_string(r.failed()) + " failed, " +
                       detail::fixed2(r.request_throughput()) + " req/s";
    if (!r.ttft().empty())
        line += ", TTFT p50 " + detail::cell_ms(r.ttft(), 50) + " ms";
    if (!r.e2e().empty())
        line += ", E2EL p50 " + detail::cell_ms(r.e2e(), 50) + " ms p99 " +
                detail::cell_ms(r.e2e(), 99) + " ms";
    return line + '\n';
}

std::string report_sweep_text(sweep_parameter p, std::span<const sweep_level> levels) {
    const detail::sweep_table t = detail::make_sweep_table(p, levels);
    std::vector<std::size_t> width(t.header.size());
    for (std::size_t i = 0; i < width.size(); ++i) {
        width[i] = t.header[i].size();
        for (const auto& row : t.rows)
            width[i] = std::max(width[i], row[i].size());
    }
    // Right-aligned columns two spaces apart, as numbers read best.
    const auto line = [&](const std::vector<std::string>& cells) {
        std::string out;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            out.append((i ? 2 : 0) + width[i] - cells[i].size(), ' ');
            out += cells[i];
        }
        return out + '\n';
    };
    std::string out = "Sweep of " + std::string(to_string(p)) + ", " +
                      std::to_string(levels.size()) + (levels.size() == 1 ? " level" : " levels");
    if (!levels.empty() && !levels.front().context.backend.empty())
        out += ", backend " + levels.front().context.backend;
    if (!levels.empty() && !levels.front().context.model_id.empty())
        out += ", model " + levels.front().context.model_id;
    out += ":\n" + line(t.header);
    for (const auto& row : t.rows)
        out += line(row);
    return out;
}

std::string report_sweep_json(sweep_parameter p, std::span<const sweep_level> levels) {
    std::string out = "[";
    for (std::size_t i = 0; i < levels.size(); ++i) {
        out += i ? ",\n" : "\n";
        detail::json_fields f(out);
        f.string("sweep_parameter", to_string(p));
        f.number("sweep_level", levels[i].value);
        detail::json_report_fields(f, *levels[i].rec, levels[i].context);
        f.close();
    }
    out += "\n]";
    return out;
}

} // namespace sluice
