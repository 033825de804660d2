#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// %XX decoding of the user and password in a URL's userinfo (proxy URLs, redis:// URLs).

namespace sluice::detail {

/// The value of one hexadecimal digit, either case; -1 for any other character.
inline int hex_digit_value(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/// Decodes `in` into `out`; false on a '%' not followed by two hexadecimal digits.
inline bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size())
            return false;
        const int hi = hex_digit_value(in[i + 1]);
        const int lo = hex_digit_value(in[i + 2]);
        if (hi < 0 || lo < 0)
            return false;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

} // namespace sluice::detail
