#pragma once

#include <cstdint>
#include <string_view>

// Which machine of several runs which line of one batch (`sluice run --shard K/N`).

namespace sluice {

/// FNV-1a, 64 bits (Fowler, Noll, Vo): offset basis 14695981039346656037 (0xcbf29ce484222325),
/// then for each byte `h = (h ^ byte) * 1099511628211` (prime 0x100000001b3) modulo 2^64. Chosen
/// for the shard function because it is a few lines in any language, so a user can check
/// which shard a custom_id falls in without sluice, and it has no seed and no platform
/// dependence: the same bytes give the same value on every machine and build.
constexpr std::uint64_t fnv1a_64(std::string_view bytes) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

/// The shard, from 1 to `count`, of a line whose record carries `custom_id`:
/// `fnv1a_64(custom_id) % count + 1`, over the custom_id's bytes as UTF-8 after JSON
/// unescaping (the string the output record holds, not its quoted spelling). A line without a
/// usable custom_id is recorded as `line-N` (its 1-based line number), and that is what it is
/// sharded by. Lines with the same custom_id fall in the same shard, so repeated ids are found
/// within a shard exactly as in a run over the whole input. `count` 0 is taken as 1.
constexpr std::uint32_t shard_of(std::string_view custom_id, std::uint32_t count) noexcept {
    return count <= 1 ? 1 : static_cast<std::uint32_t>(fnv1a_64(custom_id) % count) + 1;
}

/// One shard of a batch: the lines whose `shard_of(custom_id, count)` is `index`. The default,
/// 1 of 1, is the whole input. Shards are counted from 1, as people count machines ("shard 1
/// of 3"), the way test runners' `--shard=1/3` count them.
struct shard_spec {
    /// Which shard, from 1 to `count`.
    std::uint32_t index = 1;
    /// How many shards the input is split into; 1: no split.
    std::uint32_t count = 1;

    /// True for a line whose record carries `custom_id` (see `shard_of`).
    constexpr bool contains(std::string_view custom_id) const noexcept {
        return count <= 1 || shard_of(custom_id, count) == index;
    }

    /// Reads "K/N" (1 <= K <= N, N at most 65536; decimal digits only). Throws
    /// std::invalid_argument saying what is wrong.
    static shard_spec parse(std::string_view text);

    /// Throws std::invalid_argument unless 1 <= index <= count.
    void validate() const;
};

} // namespace sluice
