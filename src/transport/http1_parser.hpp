#pragma once

#include "transport/http1_framing.hpp"
#include "transport/http1_grammar.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/optional/optional.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::detail {

// A sans-I/O, incremental HTTP/1.1 response parser with the semantics and the errors of
// Beast's basic_parser<false> (RFC 9112: status line, field syntax, Content-Length and
// Transfer-Encoding rules, Connection, bodies delimited by length, by chunks or by the end of
// the stream, 1xx/204/304 without body), at a fraction of its cost: lines are found with
// memchr and 16-byte steps, and the derived class is called without virtual dispatch (CRTP).
//
// Unlike Beast's, `put` takes every byte it is given up to the end of the message: a head
// line, chunk line or trailer split across calls is kept here (at most `header_limit` bytes),
// so the caller needs no buffer of its own; the bytes after the message are left to it.
//
// Derived provides (may be private, with this class a friend):
//   void on_response(int status, int version, error_code&);  // version 10 or 11
//   void on_field(std::string_view name, std::string_view value, error_code&);
//   void on_header(error_code&);              // head complete; may change body_limit
//   void on_body_init(boost::optional<std::uint64_t> length, error_code&);
//   std::size_t on_body(std::string_view piece, error_code&);  // bytes used
//   void on_finish(error_code&);
// A callback's error stops the parse and is what `put` or `put_eof` returns.
//
// Thread safety: none; one parser reads one response.
template <class Derived>
class http1_parser {
public:
    using error_code = http1::error_code;

    // Parses what it can of `buffer`; returns the bytes used, all of them unless the message
    // ended before their end or `ec` is set. Never fails with need_more.
    std::size_t put(boost::asio::const_buffer buffer, error_code& ec);

    // As `put`, but stops at the end of the head (as Beast's put does unless eager): for a
    // caller that acts on the head before it hands on the body.
    std::size_t put_header(boost::asio::const_buffer buffer, error_code& ec) {
        head_only_ = true;
        const std::size_t n = put(buffer, ec);
        head_only_ = false;
        return n;
    }

    // The connection ended: finishes a body delimited by the end of the stream; otherwise
    // partial_message (or end_of_stream when nothing at all came).
    void put_eof(error_code& ec);

    bool got_some() const noexcept { return state_ != state::nothing_yet; }
    bool is_header_done() const noexcept { return state_ > state::fields; }
    bool is_done() const noexcept { return state_ == state::complete; }
    bool chunked() const noexcept { return (framing_.flags & http1::framing::chunked) != 0; }
    bool need_eof() const noexcept { return (framing_.flags & http1::framing::need_eof) != 0; }

    // After the head: false for `Connection: close`, HTTP/1.0 without `keep-alive`, and a
    // body that ends with the stream.
    bool keep_alive() const noexcept { return framing_.persists(); }

    boost::optional<std::uint64_t> content_length() const noexcept {
        // Built with its value either way: an empty boost::optional copied (inlined) makes
        // g++ -O1 warn that its storage may be used uninitialized.
        return boost::optional<std::uint64_t>(
            (framing_.flags & http1::framing::content_length) != 0, framing_.length);
    }

    // The most bytes of the status line, and of the fields after it (counted apart, as Beast
    // does), of a chunk line, and of the trailers; default 8 KiB.
    void header_limit(std::uint32_t v) noexcept { header_limit_ = v; }

    // The most body bytes; none for no limit. Default 8 MiB, as Beast's for a response.
    void body_limit(boost::optional<std::uint64_t> v) noexcept { body_limit_ = v; }

    // Beast's option, kept for callers written for it: this parser is always eager.
    void eager(bool) noexcept {}

private:
    // Each state ending in 0 (the body not begun) comes right before its own.
    enum class state : std::uint8_t {
        nothing_yet,
        start_line,
        fields,
        body0,
        body,
        body_to_eof0,
        body_to_eof,
        chunk_header0,
        chunk_header,
        chunk_body,
        complete,
    };

    Derived& derived() noexcept { return static_cast<Derived&>(*this); }

    void step(const char*& p, const char* last, error_code& ec);
    bool keep_pending(std::size_t pending, error_code& ec) const noexcept;
    bool body_piece(const char*& p, const char* last, error_code& ec);
    void parse_fields(const char*& in, const char* last, error_code& ec);
    void finish_header(error_code& ec);
    void parse_chunk_header(const char*& p0, const char* last, error_code& ec);

    std::string buf_;  // an element split across calls to put
    std::string fold_; // a value joined from obs-fold lines
    boost::optional<std::uint64_t> body_limit_ = std::uint64_t{8 * 1024 * 1024};
    http1::framing framing_;
    std::uint64_t len_ = 0;      // body or chunk bytes still to come
    std::size_t head_bytes_ = 0; // of the fields
    std::uint32_t header_limit_ = 8192;
    int status_ = 0;
    bool expect_crlf_ = false; // the CRLF after a chunk's data, read with the next chunk line
    bool head_only_ = false;   // in put_header
    state state_ = state::nothing_yet;
};

template <class Derived>
std::size_t http1_parser<Derived>::put(boost::asio::const_buffer buffer, error_code& ec) {
    ec = {};
    const char* const first = static_cast<const char*>(buffer.data());
    const char* const end = first + buffer.size();
    const char* p = first;
    while (p < end && state_ != state::complete && !(head_only_ && is_header_done())) {
        if (buf_.empty()) {
            const char* q = p;
            step(q, end, ec);
            if (keep_pending(static_cast<std::size_t>(end - q), ec)) {
                buf_.assign(q, end);
                return buffer.size();
            }
            return static_cast<std::size_t>(q - first);
        }
        // Completing a split element: add the input a line (and the byte after it, which
        // tells an obs-fold) at a time, so that the body behind the head is not copied.
        const auto* lf =
            static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        std::size_t take = lf ? static_cast<std::size_t>(lf - p) + 2 : header_limit_ + 4u;
        take = std::min(take, static_cast<std::size_t>(end - p));
        buf_.append(p, take);
        p += take;
        const char* const b = buf_.data();
        const char* const be = b + buf_.size();
        const char* q = b;
        step(q, be, ec);
        if (keep_pending(static_cast<std::size_t>(be - q), ec)) {
            buf_.erase(0, static_cast<std::size_t>(q - b));
            continue;
        }
        if (ec)
            return static_cast<std::size_t>(p - first);
        const auto left = static_cast<std::size_t>(be - q);
        if (left <= take) {
            p -= left; // the rest is the input's own: go on in place
            buf_.clear();
        } else {
            buf_.erase(0, static_cast<std::size_t>(q - b));
        }
    }
    return static_cast<std::size_t>(p - first);
}

template <class Derived>
void http1_parser<Derived>::put_eof(error_code& ec) {
    ec = {};
    switch (state_) {
    case state::nothing_yet:
        ec = http1::error::end_of_stream;
        return;
    case state::start_line:
    case state::fields:
        ec = http1::error::partial_message;
        return;
    case state::complete:
        return;
    default:
        break;
    }
    if (framing_.flags & (http1::framing::content_length | http1::framing::chunked)) {
        ec = http1::error::partial_message;
        return;
    }
    derived().on_finish(ec);
    if (!ec)
        state_ = state::complete;
}

// After `step`: true when it stopped for want of bytes and the `pending` ones of the unfinished
// element may be kept (`ec` cleared). A head, chunk line or trailers that would pass the
// header limit fails here instead, whatever the pieces it came in.
template <class Derived>
bool http1_parser<Derived>::keep_pending(std::size_t pending, error_code& ec) const noexcept {
    if (ec != http1::error::need_more)
        return false;
    const bool head = state_ <= state::fields;
    if (head ? head_bytes_ + pending >= header_limit_ : pending > header_limit_) {
        ec = http1::error::header_limit;
        return false;
    }
    ec = {};
    return true;
}

template <class Derived>
void http1_parser<Derived>::step(const char*& p, const char* last, error_code& ec) {
    for (;;) {
        switch (state_) {
        case state::nothing_yet:
            state_ = state::start_line;
            [[fallthrough]];
        case state::start_line: {
            int version = 0;
            const char* q = p;
            const char* lim =
                static_cast<std::size_t>(last - p) > header_limit_ ? p + header_limit_ : last;
            http1::parse_status_line(q, lim, version, status_, ec);
            if (ec == http1::error::need_more &&
                static_cast<std::size_t>(last - p) >= header_limit_)
                ec = http1::error::header_limit;
            if (ec)
                return;
            if (version == 11)
                framing_.flags |= http1::framing::http11;
            p = q;
            derived().on_response(status_, version, ec);
            if (ec)
                return;
            state_ = state::fields;
            [[fallthrough]];
        }
        case state::fields: {
            const std::size_t room = header_limit_ - head_bytes_;
            const char* lim = static_cast<std::size_t>(last - p) > room ? p + room : last;
            const char* q = p;
            parse_fields(q, lim, ec);
            head_bytes_ += static_cast<std::size_t>(q - p);
            p = q;
            if (ec == http1::error::need_more &&
                head_bytes_ + static_cast<std::size_t>(last - p) >= header_limit_)
                ec = http1::error::header_limit;
            if (ec)
                return;
            finish_header(ec);
            if (ec || head_only_)
                return;
            break;
        }
        case state::body0:
        case state::body_to_eof0:
        case state::chunk_header0:
            if (p == last)
                return;
            derived().on_body_init(content_length(), ec); // none when chunked or to the end
            if (ec)
                return;
            state_ = static_cast<state>(static_cast<int>(state_) + 1);
            break;
        case state::body:
            if (p == last)
                return;
            if (!body_piece(p, last, ec))
                return;
            if (len_ == 0) {
                derived().on_finish(ec);
                if (ec)
                    return;
                state_ = state::complete;
            }
            break;
        case state::body_to_eof: {
            if (p == last)
                return;
            const auto n = static_cast<std::uint64_t>(last - p);
            if (body_limit_) {
                if (n > *body_limit_) {
                    ec = http1::error::body_limit;
                    return;
                }
                *body_limit_ -= n;
            }
            p += derived().on_body(std::string_view(p, static_cast<std::size_t>(n)), ec);
            if (ec)
                return;
            break;
        }
        case state::chunk_header:
            if (p == last)
                return;
            parse_chunk_header(p, last, ec);
            if (ec)
                return;
            break;
        case state::chunk_body: {
            if (p == last)
                return;
            const bool ok = body_piece(p, last, ec);
            if (len_ == 0)
                state_ = state::chunk_header;
            if (!ok)
                return;
            break;
        }
        case state::complete:
            return;
        }
    }
}

// Gives the derived class what [p, last) holds of the `len_` bytes still to come.
template <class Derived>
bool http1_parser<Derived>::body_piece(const char*& p, const char* last, error_code& ec) {
    const auto avail = static_cast<std::uint64_t>(last - p);
    const std::size_t n =
        derived().on_body(std::string_view(p, static_cast<std::size_t>(std::min(len_, avail))), ec);
    p += n;
    len_ -= n;
    return !ec;
}

template <class Derived>
void http1_parser<Derived>::parse_fields(const char*& in, const char* last, error_code& ec) {
    std::string_view name;
    std::string_view value;
    const char* p = in;
    for (;;) {
        if (last - p < 2) {
            ec = http1::error::need_more;
            return;
        }
        if (p[0] == '\r') {
            if (p[1] != '\n')
                ec = http1::error::bad_line_ending;
            in = p + 2;
            return;
        }
        http1::parse_field(p, last, name, value, fold_, ec);
        if (ec)
            return;
        framing_.field(name, value, ec);
        if (ec)
            return;
        derived().on_field(name, value, ec);
        if (ec)
            return;
        in = p;
    }
}

template <class Derived>
void http1_parser<Derived>::finish_header(error_code& ec) {
    if (status_ / 100 == 1 || status_ == 204 || status_ == 304) {
        state_ = state::complete; // no body, whatever the fields say (RFC 9112 section 6.3)
    } else if (framing_.flags & http1::framing::content_length) {
        len_ = framing_.length;
        if (len_ > 0) {
            state_ = state::body0;
            if (body_limit_ && len_ > *body_limit_) {
                ec = http1::error::body_limit;
                return;
            }
        } else {
            state_ = state::complete;
        }
    } else if (framing_.flags & http1::framing::chunked) {
        state_ = state::chunk_header0;
    } else {
        framing_.flags |= http1::framing::need_eof;
        state_ = state::body_to_eof0;
    }
    derived().on_header(ec);
    if (ec)
        return;
    if (state_ == state::complete)
        derived().on_finish(ec);
}

// chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk = 1*"0" [ chunk-ext ]
// CRLF trailer-section CRLF. The CRLF after a chunk's data is read with the next chunk line,
// and, as in Beast, only once four bytes are there.
template <class Derived>
void http1_parser<Derived>::parse_chunk_header(const char*& p0, const char* last, error_code& ec) {
    const char* p = p0;
    if (expect_crlf_) {
        if (last - p < 4) {
            ec = http1::error::need_more;
            return;
        }
        if (p[0] != '\r' || p[1] != '\n') {
            ec = http1::error::bad_chunk;
            return;
        }
        p += 2;
    }
    const char* eol = http1::find_eol(p, last, ec);
    if (ec)
        return;
    if (!eol) {
        ec = http1::error::need_more;
        return;
    }
    if (static_cast<std::size_t>(eol - p0) > header_limit_) {
        ec = http1::error::header_limit;
        return;
    }
    std::uint64_t size = 0;
    if (!http1::parse_hex(p, size)) {
        ec = http1::error::bad_chunk;
        return;
    }
    if (size != 0) {
        if (body_limit_ && size > *body_limit_) {
            ec = http1::error::body_limit;
            return;
        }
        if (!http1::chunk_extensions_end(p, last, eol - 2, ec))
            return;
        // Only now: a line read again once more bytes came (its extensions ran on past the
        // line end) must not be charged twice.
        if (body_limit_)
            *body_limit_ -= size;
        len_ = size;
        p0 = eol;
        expect_crlf_ = true;
        state_ = state::chunk_body;
        return;
    }
    // The last chunk: wait for the end of the trailers before reading any of it.
    const char* eom = http1::find_eom(eol - 2, last);
    if (!eom) {
        ec = http1::error::need_more;
        return;
    }
    if (!http1::chunk_extensions_end(p, last, eol - 2, ec))
        return;
    if (static_cast<std::size_t>(eom - p0) > header_limit_) {
        ec = http1::error::header_limit;
        return;
    }
    p = eol;
    parse_fields(p, eom, ec);
    if (ec)
        return;
    p0 = eom;
    derived().on_finish(ec);
    if (ec)
        return;
    state_ = state::complete;
}

} // namespace sluice::detail
