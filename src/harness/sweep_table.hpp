#pragma once

#include <sluice/harness/sweep_report.hpp>

#include <span>
#include <string>
#include <vector>

// The table of a sweep, one row per level, as both the text and the HTML report show it.

namespace sluice::detail {

/// Column headings and the cells of each row, formatted.
struct sweep_table {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
};

/// The table of `levels` (see report_sweep_text for the columns).
sweep_table make_sweep_table(sweep_parameter p, std::span<const sweep_level> levels);

/// The level's value as a word: "4", "2.5" (the shortest spelling that reads back the same).
std::string level_word(double v);

} // namespace sluice::detail
