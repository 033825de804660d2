#include "harness/report_svg.hpp"

#include "harness/report_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sluice::detail {

std::string svg_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, std::fabs(v) >= 1000 ? "%.0f" : "%.4g", v);
    return buf;
}

double nice_ceiling(double v) {
    if (!(v > 0))
        return 1;
    const double p = std::pow(10, std::floor(std::log10(v)));
    for (double m : {1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0})
        if (m * p >= v * (1 - 1e-12))
            return m * p;
    return 10 * p;
}

double nice_step(double v, double parts) {
    const double raw = v / parts;
    const double p = std::pow(10, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0})
        if (m * p >= raw * (1 - 1e-12))
            return m * p;
    return 10 * p;
}

void svg_open(std::string& out, const svg_chart& c) {
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(c.width) +
           "\" height=\"" + std::to_string(c.height) + "\">\n";
}

void svg_axes(std::string& out,
              const svg_chart& c,
              std::string_view x_label,
              std::string_view y_label) {
    for (int i = 0; i <= 4; ++i) {
        const int y = c.top + c.plot_h() - c.plot_h() * i / 4;
        out += "<line x1=\"" + std::to_string(c.left) + "\" y1=\"" + std::to_string(y) +
               "\" x2=\"" + std::to_string(c.left + c.plot_w()) + "\" y2=\"" + std::to_string(y) +
               "\" stroke=\"#ddd\"/>";
        out += "<text x=\"" + std::to_string(c.left - 6) + "\" y=\"" + std::to_string(y + 4) +
               "\" text-anchor=\"end\">" + svg_number(c.y_max * i / 4) + "</text>\n";
    }
    const double step = nice_step(c.x_max, 6);
    for (double t = 0; t <= c.x_max * (1 + 1e-9); t += step)
        out += "<text x=\"" + std::to_string(c.x(t)) + "\" y=\"" + std::to_string(c.height - 14) +
               "\" text-anchor=\"middle\">" + svg_number(t) + "</text>";
    out += "<text x=\"" + std::to_string(c.left + c.plot_w() / 2) + "\" y=\"" +
           std::to_string(c.height - 3) + "\" text-anchor=\"middle\">";
    append_escaped(out, x_label);
    out += "</text>\n";
    if (y_label.empty())
        return;
    // Along the axis, read bottom to top, left of the tick labels.
    out += "<text transform=\"rotate(-90)\" x=\"" + std::to_string(-(c.top + c.plot_h() / 2)) +
           "\" y=\"12\" text-anchor=\"middle\">";
    append_escaped(out, y_label);
    out += "</text>\n";
}

void svg_legend(std::string& out, const svg_chart& c, const std::vector<chart_series>& all) {
    int x = c.left;
    for (const chart_series& s : all) {
        out += "<rect x=\"" + std::to_string(x) + "\" y=\"6\" width=\"12\" height=\"12\" fill=\"" +
               std::string(s.colour) + "\"/><text x=\"" + std::to_string(x + 16) + "\" y=\"16\">";
        append_escaped(out, s.name);
        out += "</text>";
        x += 30 + static_cast<int>(s.name.size()) * 7;
    }
    out += '\n';
}

double max_value(const std::vector<chart_series>& all) {
    double top = 0;
    for (const chart_series& s : all)
        for (double v : s.values)
            top = std::max(top, v);
    return top;
}

} // namespace sluice::detail
