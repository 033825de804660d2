#pragma once

#include <string>
#include <string_view>

namespace sluice::detail {

/// What a secret is replaced with wherever sluice writes server-supplied text.
inline constexpr std::string_view redacted = "[REDACTED]";

/// Finds a secret (the API key) in text so that it can be cut out before anything is written:
/// servers echo request headers in error messages, so the key can come back in a body. Keys
/// shorter than `min_size` are not searched for: a placeholder such as "x" for a local server
/// is no secret, and replacing every "x" in every answer would ruin it.
class secret_scrubber {
public:
    static constexpr std::size_t min_size = 8;

    explicit secret_scrubber(std::string secret)
        : secret_(secret.size() >= min_size ? std::move(secret) : std::string()) {}

    /// Replaces every occurrence of the secret in `text` with `redacted`; returns how many.
    /// The replacement is plain ASCII without quotes or backslashes, so JSON text stays valid.
    std::size_t scrub(std::string& text) const;

    bool active() const noexcept { return !secret_.empty(); }

private:
    std::string secret_;
};

} // namespace sluice::detail
