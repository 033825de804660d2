#pragma once

#include <string_view>

namespace sluice::detail {

/// True when `s` is exactly one JSON value per RFC 8259 (surrounding whitespace allowed):
/// strict numbers, escapes and UTF-8, paired surrogates, nesting at most 1024 deep.
bool is_json(std::string_view s) noexcept;

} // namespace sluice::detail
