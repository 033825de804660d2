#include "detail/redact.hpp"

#include <cstring>

namespace sluice::detail {

std::size_t secret_scrubber::scrub(std::string& text) const {
    if (secret_.empty() || text.size() < secret_.size())
        return 0;
    // memmem (glibc's two-way search) is linear and fast on a body that holds no key, the
    // case of nearly every answer.
    const void* hit = ::memmem(text.data(), text.size(), secret_.data(), secret_.size());
    if (!hit)
        return 0;
    std::string out;
    out.reserve(text.size() + 4 * redacted.size() + 64); // the parser's padding, as before
    std::size_t count = 0;
    std::size_t from = 0;
    while (hit) {
        const auto at = static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
        out.append(text, from, at - from);
        out.append(redacted);
        from = at + secret_.size();
        ++count;
        hit = ::memmem(text.data() + from, text.size() - from, secret_.data(), secret_.size());
    }
    out.append(text, from, std::string::npos);
    text.swap(out);
    return count;
}

} // namespace sluice::detail
