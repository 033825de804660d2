#pragma once

#include "transport/http1_grammar.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/optional/optional.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string_view>

namespace sluice::detail::http1 {

// How a response's head delimits its body and its connection (RFC 9112 sections 6 and 9.3),
// from the fields that say so: Connection (and Proxy-Connection), Content-Length and
// Transfer-Encoding, with Beast's rules and errors: equal Content-Length values are one,
// differing ones fail; chunked counts only as the last coding; both at once fail.
struct framing {
    enum : std::uint8_t {
        http11 = 1,
        close = 2,
        keep_alive = 4,
        need_eof = 8,
        content_length = 16,
        chunked = 32,
    };
    std::uint8_t flags = 0;
    std::uint64_t length = 0; // the Content-Length, with the content_length flag

    // Takes one field of the head (or of the trailers, as Beast does); others are ignored.
    void field(std::string_view name, std::string_view value, error_code& ec);

    bool persists() const noexcept {
        if (flags & http11) {
            if (flags & close)
                return false;
        } else if (!(flags & keep_alive)) {
            return false;
        }
        return !(flags & need_eof);
    }
};

inline void framing::field(std::string_view name, std::string_view value, error_code& ec) {
    using boost::beast::iequals;
    const boost::beast::string_view v(value.data(), value.size());
    const auto named = [&](std::string_view n) {
        return ascii_iequals(name, n);
    };
    switch (name.size()) {
    case 10:   // Connection
    case 16: { // Proxy-Connection
        if (!named("connection") && !named("proxy-connection"))
            return;
        if (ascii_iequals(value, "keep-alive")) {
            flags |= keep_alive;
            return;
        }
        if (ascii_iequals(value, "close")) {
            flags |= close;
            return;
        }
        const boost::beast::http::opt_token_list list{v};
        if (!boost::beast::http::validate_list(list)) {
            ec = error::bad_value;
            return;
        }
        for (const auto& s : list) {
            if (iequals(s, "close"))
                flags |= close;
            else if (iequals(s, "keep-alive"))
                flags |= keep_alive;
        }
        return;
    }
    case 14: { // Content-Length
        if (!named("content-length"))
            return;
        if (flags & chunked) {
            ec = error::bad_content_length;
            return;
        }
        std::uint64_t n = 0;
        const bool had = (flags & content_length) != 0;
        if (parse_dec(value.data(), value.data() + value.size(), n)) {
            // the usual single number
        } else {
            // A list of numbers, all equal (RFC 9110 section 8.6), as Beast reads it.
            auto unprocessed = 1 + std::count(value.begin(), value.end(), ',');
            const boost::beast::http::opt_token_list tokens{v};
            if (tokens.begin() == tokens.end() || !boost::beast::http::validate_list(tokens)) {
                ec = error::bad_content_length;
                return;
            }
            std::optional<std::uint64_t> seen;
            if (had)
                seen = length;
            for (const auto& tok : tokens) {
                std::uint64_t t = 0;
                if (!parse_dec(tok.data(), tok.data() + tok.size(), t)) {
                    ec = error::bad_content_length;
                    return;
                }
                --unprocessed;
                if (seen && *seen != t) {
                    ec = error::multiple_content_length;
                    return;
                }
                seen = t;
            }
            if (unprocessed) {
                ec = error::bad_content_length;
                return;
            }
            n = *seen;
        }
        if (had && n != length) {
            ec = error::multiple_content_length;
            return;
        }
        length = n;
        flags |= content_length;
        return;
    }
    case 17: { // Transfer-Encoding
        if (!named("transfer-encoding"))
            return;
        if (flags & (chunked | content_length)) {
            ec = error::bad_transfer_encoding;
            return;
        }
        // Chunked only when it is the last coding (RFC 9112 section 6.3).
        if (ascii_iequals(value, "chunked")) {
            flags |= chunked;
            return;
        }
        const boost::beast::http::token_list list{v};
        const auto it = std::find_if(
            list.begin(), list.end(), [](const auto& s) { return iequals(s, "chunked"); });
        if (it != list.end() && std::next(it) == list.end()) {
            flags |= chunked;
        }
        return;
    }
    default:
        return;
    }
}

} // namespace sluice::detail::http1
