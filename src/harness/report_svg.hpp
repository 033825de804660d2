#pragma once

#include <string>
#include <string_view>
#include <vector>

// The pieces of the HTML reports' inline SVG line charts (the run over time, latency against
// load): geometry, round axis scales, axes with their labels, legend. No script.

namespace sluice::detail {

/// A chart's size in pixels and the ranges of its axes (both start at 0).
struct svg_chart {
    int width = 900;
    int height = 220;
    /// Margins around the plot: room for tick labels and the axis labels.
    int left = 70;
    int right = 20;
    int top = 24;
    int bottom = 34;
    double x_max = 1;
    double y_max = 1;

    int plot_w() const noexcept { return width - left - right; }
    int plot_h() const noexcept { return height - top - bottom; }
    /// The pixel column of `v` on the x axis, the pixel row of `v` on the y axis.
    int x(double v) const noexcept { return left + static_cast<int>(v / x_max * plot_w()); }
    int y(double v) const noexcept {
        return top + plot_h() - static_cast<int>(v / y_max * plot_h());
    }
};

/// One line of a chart: its legend entry and a value per point.
struct chart_series {
    std::string_view name;
    std::string_view colour;
    std::vector<double> values;
};

/// A number for an axis or a label: whole above 1000, else four significant digits.
std::string svg_number(double v);

/// The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at
/// or above `v`, so that a chart's top is near its highest point; 1 for nothing to show.
double nice_ceiling(double v);

/// A round step for about `parts` ticks up to `v`: 1, 2 or 5 times a power of ten.
double nice_step(double v, double parts);

/// `<svg ...>` of the chart's size.
void svg_open(std::string& out, const svg_chart& c);

/// Grid lines and tick labels of both axes, `x_label` under the x axis and `y_label` (units
/// included) along the y axis; the labels are escaped.
void svg_axes(std::string& out,
              const svg_chart& c,
              std::string_view x_label,
              std::string_view y_label);

/// A coloured square and the (escaped) name of each series, along the top of the chart.
void svg_legend(std::string& out, const svg_chart& c, const std::vector<chart_series>& all);

/// The highest value of any series; 0 for none.
double max_value(const std::vector<chart_series>& all);

} // namespace sluice::detail
