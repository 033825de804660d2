#include "detail/json_string.hpp"

#include <cstdint>
#include <cstring>

namespace sluice::detail {

std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
    auto byte = [&](std::size_t k) -> unsigned {
        return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
    };
    auto cont = [&](std::size_t k) {
        return (byte(k) & 0xC0) == 0x80;
    };
    const unsigned c = byte(0);
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;
        const unsigned hi = c == 0xED ? 0x9F : 0xBF;
        return byte(1) >= lo && byte(1) <= hi && cont(2) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        const unsigned lo = c == 0xF0 ? 0x90 : 0x80;
        const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
        return byte(1) >= lo && byte(1) <= hi && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
}

namespace {

// Whether any of the 8 bytes at `p` needs more than copying into a JSON string: a control
// character, a quote, a backslash or a byte of a multi-byte sequence. The "has a zero byte"
// test of Hacker's Delight, which is exact for "any" (it may flag more bytes after the first
// one, never none when there is one), on a word at a time: a streamed answer's content, a
// few KB of plain text, is copied 8 bytes per step instead of tested byte by byte.
bool any_special(const char* p) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101;
    constexpr std::uint64_t high = 0x8080808080808080;
    std::uint64_t x;
    std::memcpy(&x, p, sizeof x);
    const std::uint64_t quote = x ^ (ones * '"');
    const std::uint64_t backslash = x ^ (ones * '\\');
    const std::uint64_t below_space = (x - ones * 0x20) & ~x;
    const std::uint64_t is_quote = (quote - ones) & ~quote;
    const std::uint64_t is_backslash = (backslash - ones) & ~backslash;
    return ((below_space | is_quote | is_backslash | x) & high) != 0;
}

// A byte copied into a JSON string as it is.
bool plain_byte(unsigned char c) noexcept {
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

} // namespace

void append_json_string(std::string& out, std::string_view s) {
    // Ids, names and most text need no escape: found so eight bytes at a time, and copied with
    // their quotes in one step.
    std::size_t i = 0;
    while (i + 8 <= s.size() && !any_special(s.data() + i))
        i += 8;
    while (i < s.size() && plain_byte(static_cast<unsigned char>(s[i])))
        ++i;
    if (i == s.size()) {
        const std::size_t at = out.size();
        out.resize(at + s.size() + 2);
        char* d = out.data() + at;
        d[0] = '"';
        if (!s.empty())
            std::memcpy(d + 1, s.data(), s.size());
        d[s.size() + 1] = '"';
        return;
    }
    static constexpr char hex[] = "0123456789abcdef";
    out.reserve(out.size() + s.size() + 2);
    out += '"';
    out.append(s.data(), i);
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (plain_byte(c)) {
            std::size_t j = i + 1;
            while (j + 8 <= s.size() && !any_special(s.data() + j))
                j += 8;
            while (j < s.size()) {
                const auto d = static_cast<unsigned char>(s[j]);
                if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\')
                    break;
                ++j;
            }
            out.append(s.data() + i, j - i);
            i = j;
            continue;
        }
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
            } else if (const std::size_t n = utf8_sequence(s, i)) {
                out.append(s.data() + i, n);
                i += n;
                continue;
            } else {
                // Output lines must stay valid UTF-8 for strict readers: a stray byte from a
                // server's non-UTF-8 error page becomes U+FFFD.
                out += "\\ufffd";
            }
        }
        ++i;
    }
    out += '"';
}

} // namespace sluice::detail
