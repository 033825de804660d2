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

/// True when `name` can be sent as an HTTP header name: a non-empty token of RFC 9110
/// (letters, digits and ``!#$%&'*+-.^_`|~``), so no space, colon or control character.
bool is_valid_header_name(std::string_view name) noexcept;

/// True when `a` and `b` are the same header name (header names ignore ASCII case).
bool same_header_name(std::string_view a, std::string_view b) noexcept;

/// The headers the connection pool writes itself to frame every request and manage its
/// connection (Host, Content-Length, Content-Type, Transfer-Encoding, Connection, Accept,
/// ...): a custom header of one of these names is refused, since a second Content-Length or
/// Host would make the request mean something else to the server than to sluice. Returns
/// true for such a name (any case).
bool is_framing_header(std::string_view name) noexcept;

} // namespace sluice
