#include "detail/json_string.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using sluice::detail::append_json_string;

namespace {

// The rules of append_json_string written the slow way, one byte at a time: the fast path
// (plain text copied 8 bytes per step) must give exactly this.
std::string reference(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"') {
            out += "\\\"";
        } else if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        } else if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (const std::size_t n = sluice::detail::utf8_sequence(s, i)) {
            out.append(s.substr(i, n));
            i += n;
            continue;
        } else {
            out += "\\ufffd";
        }
        ++i;
    }
    return out + "\"";
}

std::string escaped(std::string_view s) {
    std::string out = "prefix:";
    append_json_string(out, s);
    return out.substr(7);
}

} // namespace

TEST_CASE("a JSON string escapes what it must at every position, plain text around it") {
    // Each byte that is not copied as it is, and multi-byte sequences whole, cut and wrong,
    // at every offset of plain text long enough for several 8-byte steps on both sides.
    const std::string specials[] = {"\"",
                                    "\\",
                                    "\n",
                                    "\r",
                                    "\t",
                                    std::string(1, '\0'),
                                    "\x01",
                                    "\x1F",
                                    "\x7F",
                                    "\xC3\xA9",
                                    "\xE2\x82\xAC",
                                    "\xF0\x9F\x98\x80",
                                    "\xC3",
                                    "\xE2\x82",
                                    "\xFF",
                                    "\x80",
                                    " "};
    std::size_t checked = 0;
    for (const std::string& special : specials) {
        for (std::size_t before = 0; before <= 24; ++before) {
            for (std::size_t after = 0; after <= 17; after += 1) {
                const std::string s = std::string(before, 'a') + special + std::string(after, 'z');
                INFO("special " << static_cast<int>(static_cast<unsigned char>(special[0]))
                                << " after " << before << " bytes, " << after << " after");
                REQUIRE(escaped(s) == reference(s));
                ++checked;
            }
        }
    }
    CHECK(checked == std::size(specials) * 25 * 18);
    // Bytes that only look special to a word-wide test: 0x20 and 0x21 beside the quote
    // (0x22), '[' and ']' beside the backslash (0x5C), 0x7E beside 0x7F and 0x80.
    const std::string near = " !#$[]^~ !#$[]^~ !#$[]^~";
    CHECK(escaped(near) == "\"" + near + "\"");
    CHECK(escaped("") == "\"\"");
}
