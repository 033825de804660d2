#include "detail/redact.hpp"

#include <algorithm>
#include <cstring>

namespace sluice::detail {

secret_scrubber::secret_scrubber(std::vector<std::string> secrets) {
    for (std::string& s : secrets)
        if (s.size() >= min_size &&
            std::find(secrets_.begin(), secrets_.end(), s) == secrets_.end())
            secrets_.push_back(std::move(s));
    std::sort(secrets_.begin(), secrets_.end(), [](const std::string& a, const std::string& b) {
        return a.size() > b.size();
    });
}

std::size_t secret_scrubber::scrub(std::string& text) const {
    std::size_t count = 0;
    for (const std::string& secret : secrets_)
        count += scrub_one(text, secret);
    return count;
}

std::size_t secret_scrubber::scrub_one(std::string& text, const std::string& secret) {
    if (text.size() < secret.size())
        return 0;
    // memmem (glibc's two-way search) is linear and fast on a body that holds no key, the
    // case of nearly every answer.
    const void* hit = ::memmem(text.data(), text.size(), secret.data(), secret.size());
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
        from = at + secret.size();
        ++count;
        hit = ::memmem(text.data() + from, text.size() - from, secret.data(), secret.size());
    }
    out.append(text, from, std::string::npos);
    text.swap(out);
    return count;
}

} // namespace sluice::detail
