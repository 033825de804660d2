#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// JSON string quoting shared by the stages that write JSON text: the source (bodies it builds
// from prompt lines), the sink (output records) and the mock (responses). It lives in core so
// that none of them depends on another for it.

namespace sluice::detail {

/// Length of the valid UTF-8 sequence at `s[i]`, or 0 when the bytes there are not one
/// (overlong forms, surrogates and code points past U+10FFFF included). Shared so that the
/// quoting below and the sink's validator agree on what valid UTF-8 is.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept;

/// Appends `s` as a JSON string literal, quotes included: '"' and '\\' escaped, control
/// characters as \n, \r, \t or \u00XX, valid UTF-8 passed through, and every byte that is
/// not part of valid UTF-8 replaced by U+FFFD so the output stays valid for strict readers.
void append_json_string(std::string& out, std::string_view s);

} // namespace sluice::detail
