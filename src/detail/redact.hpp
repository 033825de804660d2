#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::detail {

/// What a secret is replaced with wherever sluice writes server-supplied text.
inline constexpr std::string_view redacted = "[REDACTED]";

/// Finds secrets (the API key, the values of custom headers, a proxy's password) in text so
/// that they can be cut out before anything is written: servers echo request headers in error
/// messages, so a key can come back in a body. Secrets shorter than `min_size` are not
/// searched for: a placeholder such as "x" for a local server is no secret, and replacing
/// every "x" in every answer would ruin it.
class secret_scrubber {
public:
    static constexpr std::size_t min_size = 8;

    explicit secret_scrubber(std::string secret)
        : secret_scrubber(std::vector<std::string>{std::move(secret)}) {}

    explicit secret_scrubber(std::vector<std::string> secrets);

    /// Replaces every occurrence of each secret in `text` with `redacted`; returns how many.
    /// The replacement is plain ASCII without quotes or backslashes, so JSON text stays valid.
    std::size_t scrub(std::string& text) const;

    bool active() const noexcept { return !secrets_.empty(); }

private:
    static std::size_t scrub_one(std::string& text, const std::string& secret);

    std::vector<std::string> secrets_; // longest first: a secret inside another goes with it
};

} // namespace sluice::detail
