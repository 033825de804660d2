#pragma once

#include <string_view>

namespace sluice::detail {

/// What counts as blank differs by format: HTTP header values (OWS: space, tab), JSONL lines
/// (also a CR left by CRLF files), JSON text (also LF). The caller names it.
inline constexpr std::string_view http_blanks = " \t";
inline constexpr std::string_view json_blanks = " \t\r\n";

/// `s` without the characters of `blanks` at its end.
constexpr std::string_view trim_right(std::string_view s, std::string_view blanks) noexcept {
    const std::size_t last = s.find_last_not_of(blanks);
    return last == std::string_view::npos ? std::string_view{} : s.substr(0, last + 1);
}

/// `s` without the characters of `blanks` at either end.
constexpr std::string_view trim(std::string_view s, std::string_view blanks) noexcept {
    const std::size_t first = s.find_first_not_of(blanks);
    return first == std::string_view::npos ? std::string_view{}
                                           : trim_right(s.substr(first), blanks);
}

} // namespace sluice::detail
