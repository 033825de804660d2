#pragma once

// The pieces of HTTP/1.1 syntax (RFC 9112) that sluice's response parser (http1_parser.hpp)
// reads: each takes the bytes at hand, [p, last), and either consumes one element, fails with
// the boost::beast::http::error Beast's basic_parser gives for the same bytes, or asks for
// more (error::need_more) without consuming anything. The checks are Beast's, one for one, so
// that what a server gets refused for, and the message a user reads, stay the same; the speed
// comes from scanning with memchr and 16 bytes at a time where Beast goes byte by byte.

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::detail::http1 {

using boost::beast::error_code;
using boost::beast::http::error;

// tchar (RFC 9110 section 5.6.2): a visible ASCII byte other than a separator.
inline bool is_token_char(char c) noexcept {
    static constexpr auto table = [] {
        struct {
            bool at[256] = {};
        } t;
        constexpr const char* separators = "\"(),/:;<=>?@[\\]{}";
        for (int b = 0x21; b < 0x7f; ++b) {
            t.at[b] = true;
            for (const char* s = separators; *s; ++s)
                if (*s == b)
                    t.at[b] = false;
        }
        return t;
    }();
    return table.at[static_cast<unsigned char>(c)];
}

// The first byte in [p, last) that is not a tchar (where a field name ends).
inline const char* skip_token_chars(const char* p, const char* last) noexcept {
#if defined(__SSE2__)
    const auto in = [](__m128i x, char lo, char hi) { // lo <= x <= hi, unsigned
        return _mm_cmpeq_epi8(_mm_max_epu8(_mm_min_epu8(x, _mm_set1_epi8(hi)), _mm_set1_epi8(lo)),
                              x);
    };
    const auto is = [](__m128i x, char c) {
        return _mm_cmpeq_epi8(x, _mm_set1_epi8(c));
    };
    while (last - p >= 16) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i separator =
            _mm_or_si128(_mm_or_si128(_mm_or_si128(is(x, '"'), in(x, '(', ')')),
                                      _mm_or_si128(is(x, ','), is(x, '/'))),
                         _mm_or_si128(_mm_or_si128(in(x, ':', '@'), in(x, '[', ']')),
                                      _mm_or_si128(is(x, '{'), is(x, '}'))));
        const __m128i token = _mm_andnot_si128(separator, in(x, '!', '~'));
        if (const unsigned m = ~static_cast<unsigned>(_mm_movemask_epi8(token)) & 0xffffu)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < last && is_token_char(*p))
        ++p;
    return p;
}

// `s` equals `lower` (lower case ASCII) but for the case of letters.
inline bool ascii_iequals(std::string_view s, std::string_view lower) noexcept {
    if (s.size() != lower.size())
        return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const char l = lower[i];
        if (c != l && !(static_cast<unsigned char>(l - 'a') < 26 && (c | 0x20) == l))
            return false;
    }
    return true;
}

inline bool is_digit(char c) noexcept {
    return static_cast<unsigned char>(c - '0') < 10;
}

inline int unhex(char c) noexcept {
    if (is_digit(c))
        return c - '0';
    const char l = static_cast<char>(c | 0x20);
    return l >= 'a' && l <= 'f' ? l - 'a' + 10 : -1;
}

// The first byte in [p, last) that may not appear in a field value or a reason phrase: a
// control character other than HTAB, or DEL (bytes from 0x80 are obs-text, allowed).
inline const char* find_control(const char* p, const char* last) noexcept {
#if defined(__SSE2__)
    const __m128i c1f = _mm_set1_epi8(0x1f);
    const __m128i tab = _mm_set1_epi8('\t');
    const __m128i del = _mm_set1_epi8(0x7f);
    while (last - p >= 16) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i low = _mm_cmpeq_epi8(_mm_max_epu8(x, c1f), c1f); // x <= 0x1f
        const __m128i bad =
            _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(x, tab), low), _mm_cmpeq_epi8(x, del));
        if (const int m = _mm_movemask_epi8(bad))
            return p + __builtin_ctz(static_cast<unsigned>(m));
        p += 16;
    }
#endif
    for (; p < last; ++p) {
        const auto c = static_cast<unsigned char>(*p);
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return p;
    }
    return last;
}

// Text up to CRLF: the position past the CRLF with `text_end` at the CR; nullptr for a
// control character in the text; `ec` need_more or bad_line_ending (a CR without LF).
inline const char*
to_eol(const char* p, const char* last, const char*& text_end, error_code& ec) noexcept {
    p = find_control(p, last);
    if (p == last) {
        ec = error::need_more;
        return last;
    }
    if (*p != '\r')
        return nullptr;
    if (p + 1 == last) {
        ec = error::need_more;
        return last;
    }
    if (p[1] != '\n') {
        ec = error::bad_line_ending;
        return last;
    }
    text_end = p;
    return p + 2;
}

// Past the first CRLF from `p`, nullptr when none yet; bad_line_ending for a CR without LF.
inline const char* find_eol(const char* p, const char* last, error_code& ec) noexcept {
    const auto* cr =
        static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(last - p)));
    if (!cr || cr + 1 == last)
        return nullptr;
    if (cr[1] != '\n') {
        ec = error::bad_line_ending;
        return nullptr;
    }
    return cr + 2;
}

// Past the first CRLF CRLF from `p`, nullptr when none yet.
inline const char* find_eom(const char* p, const char* last) noexcept {
    for (const char* at = p + 3; at < last;) {
        const auto* lf =
            static_cast<const char*>(std::memchr(at, '\n', static_cast<std::size_t>(last - at)));
        if (!lf)
            return nullptr;
        if (lf[-1] == '\r' && lf[-2] == '\n' && lf[-3] == '\r')
            return lf + 1;
        at = lf + 1;
    }
    return nullptr;
}

inline bool parse_dec(const char* p, const char* last, std::uint64_t& v) noexcept {
    if (p == last)
        return false;
    std::uint64_t n = 0;
    constexpr auto max = (std::numeric_limits<std::uint64_t>::max)();
    for (; p != last; ++p) {
        if (!is_digit(*p) || n > max / 10)
            return false;
        const auto d = static_cast<std::uint64_t>(*p - '0');
        n *= 10;
        if (max - n < d)
            return false;
        n += d;
    }
    v = n;
    return true;
}

// 1*HEXDIG; `p` stops at the first other byte (there is always one: the line's CR).
inline bool parse_hex(const char*& p, std::uint64_t& v) noexcept {
    int d = unhex(*p);
    if (d < 0)
        return false;
    std::uint64_t n = 0;
    do {
        if (n > (std::numeric_limits<std::uint64_t>::max)() / 16)
            return false;
        n = n * 16 + static_cast<unsigned>(d);
    } while ((d = unhex(*++p)) >= 0);
    v = n;
    return true;
}

// status-line = HTTP-version SP status-code SP reason-phrase CRLF, checked as Beast does
// (bad_version, bad_status, bad_reason), each check as soon as its bytes are there.
inline void parse_status_line(
    const char*& in, const char* last, int& version, int& status, error_code& ec) noexcept {
    const char* p = in;
    if (last - p < 8) {
        ec = error::need_more;
        return;
    }
    if (std::memcmp(p, "HTTP/", 5) != 0 || !is_digit(p[5]) || p[6] != '.' || !is_digit(p[7])) {
        ec = error::bad_version;
        return;
    }
    version = 10 * (p[5] - '0') + (p[7] - '0');
    if (version < 10 || version > 11) {
        ec = error::bad_version;
        return;
    }
    p += 8;
    if (p == last) {
        ec = error::need_more;
        return;
    }
    if (*p++ != ' ') {
        ec = error::bad_version;
        return;
    }
    if (last - p < 4) {
        ec = error::need_more;
        return;
    }
    for (int i = 0; i < 3; ++i) {
        if (!is_digit(p[i])) {
            ec = error::bad_status;
            return;
        }
    }
    if (p[3] != ' ') {
        ec = error::bad_status;
        return;
    }
    status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    p += 4;
    const char* text_end = nullptr;
    p = to_eol(p, last, text_end, ec);
    if (ec)
        return;
    if (!p) {
        ec = error::bad_reason;
        return;
    }
    in = p;
}

inline const char* skip_ws(const char* p, const char* last) noexcept {
    while (p < last && (*p == ' ' || *p == '\t'))
        ++p;
    return p;
}

inline const char* trim_back(const char* end, const char* first) noexcept {
    while (end != first && (end[-1] == ' ' || end[-1] == '\t'))
        --end;
    return end;
}

// A chunk extension's name or value (1*tchar) at `it`, which is not `last`; false with `ec`
// set when it is not there or goes on to `last`.
inline bool skip_token(const char*& it, const char* last, error_code& ec) noexcept {
    if (!is_token_char(*it)) {
        ec = error::bad_chunk_extension;
        return false;
    }
    while (++it != last && is_token_char(*it)) {
    }
    if (it == last) {
        ec = error::need_more;
        return false;
    }
    return true;
}

// chunk-ext, as Beast reads it: from `it` (just past the chunk size) for as long as the bytes
// read as extensions, which may run past the line end; the caller checks where it stopped.
inline void parse_chunk_extensions(const char*& it, const char* last, error_code& ec) noexcept {
    for (;;) {
        if (it == last) {
            ec = error::need_more;
            return;
        }
        if (*it != ' ' && *it != '\t' && *it != ';')
            return;
        it = skip_ws(it, last);
        if (it == last) {
            ec = error::need_more;
            return;
        }
        if (*it != ';') {
            ec = error::bad_chunk_extension;
            return;
        }
    semi:
        it = skip_ws(it + 1, last);
        if (it == last) {
            ec = error::need_more;
            return;
        }
        if (!skip_token(it, last, ec))
            return;
        const bool bws = *it == ' ' || *it == '\t';
        it = skip_ws(it, last);
        if (it == last) {
            ec = error::need_more;
            return;
        }
        if (*it == ';')
            goto semi;
        if (*it != '=') {
            if (bws)
                ec = error::bad_chunk_extension;
            return;
        }
        it = skip_ws(it + 1, last);
        if (it == last) {
            ec = error::need_more;
            return;
        }
        if (*it != '"') {
            if (!skip_token(it, last, ec))
                return;
            continue;
        }
        for (;;) { // quoted-string
            if (++it == last) {
                ec = error::need_more;
                return;
            }
            if (*it == '"')
                break;
            if (*it == '\\' && ++it == last) {
                ec = error::need_more;
                return;
            }
        }
        ++it;
    }
}

// The extensions of a chunk line, which must end at `line_end` (the CR).
inline bool chunk_extensions_end(const char*& it,
                                 const char* last,
                                 const char* line_end,
                                 error_code& ec) noexcept {
    parse_chunk_extensions(it, last, ec);
    if (!ec && it != line_end)
        ec = error::bad_chunk_extension;
    return !ec;
}

// field-line = field-name ":" OWS field-value OWS, with obs-fold joined by a space (as Beast).
inline void parse_field(const char*& p,
                        const char* last,
                        std::string_view& name,
                        std::string_view& value,
                        std::string& fold,
                        error_code& ec) {
    constexpr std::size_t max_obs_fold = 4096; // Beast's bound on a folded value
    const char* first = p;
    p = skip_token_chars(p, last);
    if (p == last) {
        ec = error::need_more;
        return;
    }
    if (*p != ':' || p == first) {
        ec = error::bad_field;
        return;
    }
    name = std::string_view(first, static_cast<std::size_t>(p - first));
    ++p;
    const char* text_end = nullptr;
    bool folded = false;
    for (;;) {
        p = skip_ws(p, last);
        if (p == last) {
            ec = error::need_more;
            return;
        }
        first = p;
        p = to_eol(p, last, text_end, ec);
        if (ec)
            return;
        if (!p) {
            ec = error::bad_value;
            return;
        }
        if (p == last) { // the next byte tells whether the value goes on (obs-fold)
            ec = error::need_more;
            return;
        }
        text_end = trim_back(text_end, first);
        if (!folded) {
            if (*p != ' ' && *p != '\t') {
                value = std::string_view(first, static_cast<std::size_t>(text_end - first));
                return;
            }
            ++p;
            if (text_end == first)
                continue; // nothing before the fold: the value starts on the next line
            folded = true;
            fold.assign(first, text_end);
            if (fold.size() > max_obs_fold) {
                ec = error::header_limit;
                return;
            }
            continue;
        }
        if (first != text_end) {
            fold += ' ';
            fold.append(first, text_end);
        }
        if (fold.size() > max_obs_fold) {
            ec = error::header_limit;
            return;
        }
        if (*p != ' ' && *p != '\t') {
            value = fold;
            return;
        }
        ++p;
    }
}

} // namespace sluice::detail::http1
