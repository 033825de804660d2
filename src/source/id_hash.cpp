#include <sluice/source/id_index.hpp>

#include <algorithm>
#include <bit>
#include <cstring>

// MurmurHash3_x64_128, written from its specification (see the declaration's doc).

namespace sluice {
namespace {

std::uint64_t load_le64(const unsigned char* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big)
        v = __builtin_bswap64(v);
    return v;
}

constexpr std::uint64_t fmix64(std::uint64_t k) noexcept {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

constexpr std::uint64_t murmur_c1 = 0x87c37b91114253d5ULL;
constexpr std::uint64_t murmur_c2 = 0x4cf5ad432745937fULL;

constexpr std::uint64_t mix_k1(std::uint64_t k1) noexcept {
    return std::rotl(k1 * murmur_c1, 31) * murmur_c2;
}
constexpr std::uint64_t mix_k2(std::uint64_t k2) noexcept {
    return std::rotl(k2 * murmur_c2, 33) * murmur_c1;
}

} // namespace

id_hash murmur3_x64_128(std::string_view data, std::uint32_t seed) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    const std::size_t len = data.size();
    std::uint64_t h1 = seed;
    std::uint64_t h2 = seed;

    const std::size_t blocks = len / 16;
    for (std::size_t i = 0; i < blocks; ++i, p += 16) {
        h1 ^= mix_k1(load_le64(p));
        h1 = std::rotl(h1, 27) + h2;
        h1 = h1 * 5 + 0x52dce729;
        h2 ^= mix_k2(load_le64(p + 8));
        h2 = std::rotl(h2, 31) + h1;
        h2 = h2 * 5 + 0x38495ab5;
    }

    // The tail: up to 15 bytes, little-endian into two words.
    std::uint64_t k1 = 0;
    std::uint64_t k2 = 0;
    const std::size_t tail = len & 15;
    for (std::size_t i = tail; i > 8; --i)
        k2 |= std::uint64_t{p[i - 1]} << ((i - 9) * 8);
    for (std::size_t i = std::min<std::size_t>(tail, 8); i > 0; --i)
        k1 |= std::uint64_t{p[i - 1]} << ((i - 1) * 8);
    if (tail > 8)
        h2 ^= mix_k2(k2);
    if (tail > 0)
        h1 ^= mix_k1(k1);

    h1 ^= len;
    h2 ^= len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    h2 += h1;
    return {h1, h2};
}

} // namespace sluice
