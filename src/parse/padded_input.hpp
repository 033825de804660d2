#pragma once

#include <sluice/http_response.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

namespace sluice::detail {

// The bytes a parser hands to simdjson, which reads up to `parse_padding` bytes past the end:
// in place when the caller's buffer has that much readable room behind them, else as a copy in
// a scratch buffer kept for the next call (it only grows).
class padded_input {
public:
    // Points `data`/`capacity` at readable, padded bytes: unchanged when there is room.
    void pad(const char*& data, std::size_t size, std::size_t& capacity) {
        if (capacity >= size + parse_padding)
            return;
        if (capacity_ < size + parse_padding) {
            capacity_ = std::max(size + parse_padding, capacity_ * 2);
            scratch_ = std::make_unique<char[]>(capacity_);
        }
        // An empty view may have no buffer at all (a null pointer), which memcpy must not see.
        if (size != 0)
            std::memcpy(scratch_.get(), data, size);
        std::memset(scratch_.get() + size, 0, parse_padding);
        data = scratch_.get();
        capacity = capacity_;
    }

private:
    std::unique_ptr<char[]> scratch_;
    std::size_t capacity_ = 0;
};

} // namespace sluice::detail
