#pragma once

#include <string>
#include <string_view>

namespace sluice::detail {

/// Appends `s` as a JSON string literal, quotes included: '"' and '\\' escaped, control
/// characters as \n, \r, \t or \u00XX, valid UTF-8 passed through, and every byte that is
/// not part of valid UTF-8 replaced by U+FFFD so the output stays valid for strict readers.
void append_json_string(std::string& out, std::string_view s);

/// True when `s` is exactly one JSON value per RFC 8259 (surrounding whitespace allowed):
/// strict numbers, escapes and UTF-8, paired surrogates, nesting at most 1024 deep.
bool is_json(std::string_view s) noexcept;

} // namespace sluice::detail
