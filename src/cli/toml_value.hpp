#pragma once

#include "cli/config_file.hpp"

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::cli::detail {

/// A TOML file parsed, its syntax errors turned into config_error "path:line: what".
toml::table parse_file(const std::string& path);

/// TOML text compiled into the binary, parsed; errors name `path` as parse_file's do.
toml::table parse_toml(std::string_view text, const std::string& path);

/// "path:line: " for a node of the file at `path`.
std::string where(const std::string& path, const toml::node& n);

/// One key's value in one table of a config file, read as the type its schema wants.
///
/// Every reader throws config_error "path:line: [section] key: what" (no "[section] " at the
/// top level) when the value has another type or is out of range, so a schema entry is one
/// call and every error names the file, the line and the key the same way.
///
/// Object lifetimes: holds references; the file's path, the section name and the parsed
/// table must outlive it.
struct toml_value {
    const std::string& path;
    /// "" for a key at the top level.
    std::string_view section;
    std::string_view key;
    const toml::node& node;

    [[noreturn]] void fail(std::string_view what) const;

    /// An integer >= `min` that fits `Int`.
    template <class Int = std::int64_t>
    Int integer(std::int64_t min) const {
        constexpr auto int64_max = std::numeric_limits<std::int64_t>::max();
        constexpr auto int_max = std::numeric_limits<Int>::max();
        constexpr std::int64_t max =
            std::cmp_less(int64_max, int_max) ? int64_max : static_cast<std::int64_t>(int_max);
        return static_cast<Int>(integer_in(min, max));
    }

    /// Milliseconds, an integer >= `min`.
    std::chrono::milliseconds millis(std::int64_t min) const {
        return std::chrono::milliseconds(integer(min));
    }

    /// A finite number (an integer counts) >= `min`.
    double number(double min) const;

    /// A number >= `above` (else number's error), then also > `above` and <= `max`, else
    /// `what`: ranges open at the bottom, such as seconds in (0, 60].
    double number_in(double above, double max, std::string_view what) const;

    bool boolean() const;

    std::string string() const;

    /// A string with no CR, LF, NUL or other control character but the tab: a value sent as
    /// a header or in the request line (base_url, organization, project) or named in them
    /// (model). The error names the key, never the value.
    std::string header_value() const;

private:
    std::int64_t integer_in(std::int64_t min, std::int64_t max) const;
};

} // namespace sluice::cli::detail
