#pragma once

// RESP2, the Redis wire protocol, sans I/O: commands encoded as arrays of bulk strings, and
// replies parsed from bytes as they arrive. Only what the shared budget needs: simple
// strings, errors, integers, bulk strings (null included) and arrays of them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::detail {

/// One RESP2 reply.
struct resp_value {
    enum class kind { simple, error, integer, bulk, null, array };
    kind type = kind::null;
    std::string text;        // simple, error, bulk
    std::int64_t number = 0; // integer
    std::vector<resp_value> items;

    bool is_error() const noexcept { return type == kind::error; }
};

/// Appends `args` as one command (an array of bulk strings) to `out`.
void resp_encode(std::string& out, const std::vector<std::string>& args);

/// Parses one reply at the start of `in`. Returns the bytes it took, 0 when `in` holds only
/// part of a reply (read more), or -1 when the bytes are not RESP2 (`value` unset).
/// Nesting deeper than 8 and lengths beyond 64 MiB are refused as not RESP.
std::ptrdiff_t resp_parse(std::string_view in, resp_value& value);

} // namespace sluice::detail
