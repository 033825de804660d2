#pragma once

#include <string_view>

namespace sluice {

/// True when `value` can be sent as an HTTP header value: no control character but the tab.
/// A CR or LF would end the header and let the rest of the value be read as headers of its
/// own (the key then goes wherever the injected lines say); a NUL cuts the value short on some
/// servers. The connection pool refuses request_headers that fail this, throwing
/// std::invalid_argument that names the field (never its value) before any connection is
/// made; front ends check their inputs with it first, so that the error can name where the
/// value came from (a flag, a variable, a config key).
bool is_valid_header_value(std::string_view value) noexcept;

} // namespace sluice
