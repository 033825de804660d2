#pragma once

#include <sluice/transport/connection_pool.hpp>

#include <string>

namespace sluice::detail {

// The request line and the fixed headers of every request of a pool, up to (not including)
// Content-Length. Throws std::invalid_argument naming the field (never its value: it may be
// the API key) when a value holds a control character, which would end the header early.
std::string request_head(const endpoint& ep, const request_headers& h);

// The fixed headers alone, from Host to the extra headers (what request_head puts between its
// request line and Content-Type), for requests with a line and content type of their own.
std::string request_fields(const endpoint& ep, const request_headers& h);

} // namespace sluice::detail
