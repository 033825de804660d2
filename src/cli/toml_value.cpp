#include "cli/toml_value.hpp"

#include <sluice/transport/header_value.hpp>

#include <cmath>
#include <cstdio>

namespace sluice::cli::detail {

namespace {

config_error parse_failure(const std::string& path, const toml::parse_error& e) {
    const auto line = e.source().begin.line;
    // toml++ reports a file it cannot open at line 0, which would point nowhere.
    if (line == 0)
        return config_error(path + ": " + std::string(e.description()));
    return config_error(path + ":" + std::to_string(line) + ": " + std::string(e.description()));
}

} // namespace

toml::table parse_file(const std::string& path) {
    try {
        return toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        throw parse_failure(path, e);
    }
}

toml::table parse_toml(std::string_view text, const std::string& path) {
    try {
        return toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        throw parse_failure(path, e);
    }
}

std::string where(const std::string& path, const toml::node& n) {
    return path + ":" + std::to_string(n.source().begin.line) + ": ";
}

void toml_value::fail(std::string_view what) const {
    std::string msg = where(path, node);
    if (!section.empty())
        msg += "[" + std::string(section) + "] ";
    msg += std::string(key) + ": " + std::string(what);
    throw config_error(msg);
}

std::int64_t toml_value::integer_in(std::int64_t min, std::int64_t max) const {
    const auto v = node.value<std::int64_t>();
    if (!node.is_integer() || !v)
        fail("expected an integer >= " + std::to_string(min));
    if (*v < min)
        fail("expected an integer >= " + std::to_string(min) + ", got " + std::to_string(*v));
    if (*v > max)
        fail("expected an integer <= " + std::to_string(max) + ", got " + std::to_string(*v));
    return *v;
}

double toml_value::number(double min) const {
    if (!node.is_number())
        fail("expected a number");
    const double v = *node.value<double>();
    if (!std::isfinite(v) || v < min) {
        // "%g": ">= 0", not std::to_string's ">= 0.000000".
        char bound[32];
        std::snprintf(bound, sizeof bound, "%g", min);
        fail(std::string("expected a number >= ") + bound);
    }
    return v;
}

double toml_value::number_in(double above, double max, std::string_view what) const {
    const double v = number(above);
    if (v <= above || v > max)
        fail(what);
    return v;
}

bool toml_value::boolean() const {
    if (!node.is_boolean())
        fail("expected true or false");
    return *node.value<bool>();
}

std::string toml_value::string() const {
    if (!node.is_string())
        fail("expected a string");
    return *node.value<std::string>();
}

std::string toml_value::header_value() const {
    std::string s = string();
    if (!is_valid_header_value(s))
        fail("contains a CR, LF, NUL or other control character; refused before anything is "
             "sent");
    return s;
}

} // namespace sluice::cli::detail
