#include <sluice/source/shard.hpp>

#include <charconv>
#include <stdexcept>
#include <string>

namespace sluice {

namespace {

constexpr std::uint32_t max_shards = 65536;

// Digits only: no sign, no spaces, no leading '+' that from_chars would refuse anyway.
bool read_number(std::string_view s, std::uint32_t& out) {
    if (s.empty() || s.size() > 6)
        return false;
    for (const char c : s)
        if (c < '0' || c > '9')
            return false;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
}

} // namespace

shard_spec shard_spec::parse(std::string_view text) {
    const auto slash = text.find('/');
    shard_spec s;
    if (slash == std::string_view::npos || !read_number(text.substr(0, slash), s.index) ||
        !read_number(text.substr(slash + 1), s.count))
        throw std::invalid_argument("shard: \"" + std::string(text) +
                                    "\" is not K/N (shard K of N, counted from 1, as 2/3)");
    s.validate();
    return s;
}

void shard_spec::validate() const {
    if (count < 1 || count > max_shards)
        throw std::invalid_argument("shard: N must be from 1 to " + std::to_string(max_shards));
    if (index < 1 || index > count)
        throw std::invalid_argument("shard: K must be from 1 to N (shards are counted from 1), "
                                    "got " +
                                    std::to_string(index) + "/" + std::to_string(count));
}

} // namespace sluice
