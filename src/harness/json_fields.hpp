#pragma once

#include "detail/json_string.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

// The JSON writer of the reports: the single-run object and the sweep's array of them are
// written field by field with it, so that both spell every field the same way.

namespace sluice::detail {

// Writes the fields of one JSON object, commas and quoting included.
class json_fields {
public:
    explicit json_fields(std::string& out)
        : out_(out) {
        out_ += '{';
    }

    void string(std::string_view k, std::string_view v) {
        key(k);
        detail::append_json_string(out_, v);
    }
    void number(std::string_view k, double v) {
        key(k);
        // JSON has no NaN or infinity; none should arise, but a report must stay parseable.
        if (!std::isfinite(v)) {
            out_ += "null";
            return;
        }
        char buf[32];
        const auto res = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, res.ptr);
    }
    void integer(std::string_view k, std::uint64_t v) {
        key(k);
        char buf[24];
        const auto res = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, res.ptr);
    }
    void null(std::string_view k) {
        key(k);
        out_ += "null";
    }
    json_fields object(std::string_view k) {
        key(k);
        return json_fields(out_);
    }
    void boolean(std::string_view k, bool v) {
        key(k);
        out_ += v ? "true" : "false";
    }
    // An array of numbers, one per element of `items` as `value` maps it.
    template <class Items, class Value>
    void numbers(std::string_view k, const Items& items, Value value) {
        key(k);
        out_ += '[';
        bool first = true;
        for (const auto& item : items) {
            if (!first)
                out_ += ',';
            first = false;
            const double v = value(item);
            char buf[32];
            const auto res = std::to_chars(buf, buf + sizeof buf, std::isfinite(v) ? v : 0.0);
            out_.append(buf, res.ptr);
        }
        out_ += ']';
    }
    void close() { out_ += '}'; }

private:
    void key(std::string_view k) {
        if (!first_)
            out_ += ',';
        first_ = false;
        detail::append_json_string(out_, k);
        out_ += ':';
    }

    std::string& out_;
    bool first_ = true;
};

} // namespace sluice::detail
