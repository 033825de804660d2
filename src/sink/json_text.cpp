#include "sink/json_text.hpp"

#include "detail/json_string.hpp"

#include <array>
#include <cstddef>

// The sink checks JSON itself: it has no parser dependency, and what it needs is narrow (is
// this byte string one valid JSON document). Quoting is in core (detail/json_string.hpp).

namespace sluice::detail {
namespace {

// A strict RFC 8259 check that `s` is exactly one JSON value (surrounding whitespace allowed).
class json_validator {
public:
    explicit json_validator(std::string_view s)
        : s_(s) {}

    bool valid() {
        skip_ws();
        if (!value(0))
            return false;
        skip_ws();
        return pos_ == s_.size();
    }

private:
    static constexpr int max_depth = 1024;

    int peek() const noexcept {
        return pos_ < s_.size() ? static_cast<unsigned char>(s_[pos_]) : -1;
    }
    void skip_ws() noexcept {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
            ++pos_;
    }
    bool eat(char c) noexcept {
        if (peek() != static_cast<unsigned char>(c))
            return false;
        ++pos_;
        return true;
    }
    bool literal(std::string_view word) noexcept {
        if (s_.substr(pos_, word.size()) != word)
            return false;
        pos_ += word.size();
        return true;
    }
    bool digits() noexcept {
        const std::size_t start = pos_;
        while (peek() >= '0' && peek() <= '9')
            ++pos_;
        return pos_ > start;
    }
    bool number() noexcept {
        eat('-');
        if (!eat('0') && !(peek() >= '1' && peek() <= '9' && digits()))
            return false;
        if (eat('.') && !digits())
            return false;
        if (eat('e') || eat('E')) {
            if (!eat('+'))
                eat('-');
            if (!digits())
                return false;
        }
        return true;
    }
    bool hex4(unsigned& u) noexcept {
        if (s_.size() - pos_ < 4)
            return false;
        u = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = s_[pos_++];
            u <<= 4;
            if (c >= '0' && c <= '9')
                u |= static_cast<unsigned>(c - '0');
            else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                u |= static_cast<unsigned>((c | 0x20) - 'a' + 10);
            else
                return false;
        }
        return true;
    }
    bool escape() noexcept {
        const int c = peek();
        ++pos_;
        if (c != 'u')
            return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                   c == 'r' || c == 't';
        unsigned u = 0;
        if (!hex4(u))
            return false;
        if (u >= 0xDC00 && u <= 0xDFFF)
            return false; // a low surrogate must follow a high one
        if (u < 0xD800 || u > 0xDBFF)
            return true;
        unsigned low = 0;
        return eat('\\') && eat('u') && hex4(low) && low >= 0xDC00 && low <= 0xDFFF;
    }
    bool string() noexcept {
        ++pos_; // opening quote
        while (pos_ < s_.size()) {
            const auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                ++pos_;
                return true;
            }
            if (c < 0x20)
                return false;
            if (c == '\\') {
                ++pos_;
                if (!escape())
                    return false;
            } else if (c < 0x80) {
                ++pos_;
                // Plain text is most of a completion body: run over it in one tight loop.
                while (pos_ < s_.size() && plain_[static_cast<unsigned char>(s_[pos_])])
                    ++pos_;
            } else {
                const std::size_t n = utf8_sequence(s_, pos_);
                if (n == 0)
                    return false;
                pos_ += n;
            }
        }
        return false;
    }
    bool value(int depth) noexcept {
        switch (peek()) {
        case '{':
            return object(depth + 1);
        case '[':
            return array(depth + 1);
        case '"':
            return string();
        case 't':
            return literal("true");
        case 'f':
            return literal("false");
        case 'n':
            return literal("null");
        default:
            return number();
        }
    }
    bool array(int depth) noexcept {
        ++pos_;
        skip_ws();
        if (depth > max_depth)
            return false;
        if (eat(']'))
            return true;
        for (;;) {
            skip_ws();
            if (!value(depth))
                return false;
            skip_ws();
            if (eat(']'))
                return true;
            if (!eat(','))
                return false;
        }
    }
    bool object(int depth) noexcept {
        ++pos_;
        skip_ws();
        if (depth > max_depth)
            return false;
        if (eat('}'))
            return true;
        for (;;) {
            skip_ws();
            if (peek() != '"' || !string())
                return false;
            skip_ws();
            if (!eat(':'))
                return false;
            skip_ws();
            if (!value(depth))
                return false;
            skip_ws();
            if (eat('}'))
                return true;
            if (!eat(','))
                return false;
        }
    }

    // Bytes that may appear in a string as themselves: printable ASCII but '"' and '\\'.
    static constexpr auto plain_ = [] {
        std::array<bool, 256> table{};
        for (int c = 0x20; c < 0x80; ++c)
            table[c] = c != '"' && c != '\\';
        return table;
    }();

    std::string_view s_;
    std::size_t pos_ = 0;
};

} // namespace

bool is_json(std::string_view s) noexcept {
    return json_validator(s).valid();
}

} // namespace sluice::detail
