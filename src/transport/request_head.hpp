#pragma once

#include <sluice/transport/connection_pool.hpp>

#include <string>

namespace sluice::detail {

// The request line and the fixed headers of every request of a pool, up to (not including)
// Content-Length. Throws std::invalid_argument naming the field (never its value: it may be
// the API key) when a value holds a control character, which would end the header early.
std::string request_head(const endpoint& ep, const request_headers& h);

} // namespace sluice::detail
