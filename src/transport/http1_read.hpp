#pragma once

// Asynchronous reads of a response into an http1_parser, with the behaviour of Beast's
// http::async_read_some / async_read_header / async_read on a basic_parser: the buffer's bytes
// are parsed first, reads are sized by beast::read_size (at most 64 KiB), the end of the
// stream finishes a body that runs to it or fails with partial_message (end_of_stream when
// nothing came), and a read that needs no I/O completes through a post, never inline.
//
// The bridge at the end lets code written for Beast's functions (`http::async_read(stream,
// buffer, parser, handler)`) call these unchanged; it goes once the pool's read loop feeds
// the parser itself.

#include "transport/http1_parser.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/coroutine.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/read_size.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace sluice::detail {

namespace http1 {

struct header_done {
    template <class P>
    bool operator()(const P& p) const noexcept {
        return p.is_header_done();
    }
};

struct message_done {
    template <class P>
    bool operator()(const P& p) const noexcept {
        return p.is_done();
    }
};

// One read (unless the buffer already holds bytes), then the parser takes what came. Reads
// until `Done(parser)` when `Until` is set.
template <class Stream, class DynamicBuffer, class Derived, bool Until, class Done>
class read_op : boost::asio::coroutine {
public:
    read_op(Stream& s, DynamicBuffer& b, http1_parser<Derived>& p)
        : s_(s)
        , b_(b)
        , p_(p) {}

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t n = 0) {
        BOOST_ASIO_CORO_REENTER(*this) {
            if (Until && Done{}(p_)) {
                BOOST_ASIO_CORO_YIELD boost::asio::post(
                    boost::beast::bind_front_handler(std::move(self), ec, std::size_t{0}));
                return self.complete(ec, used_);
            }
            for (;;) {
                if (b_.size() > 0) {
                    feed(ec);
                    if (ec || !Until || Done{}(p_))
                        break;
                }
                BOOST_ASIO_CORO_YIELD {
                    read_ = true;
                    const std::size_t size = boost::beast::read_size(b_, 65536);
                    if (size == 0) {
                        ec = error::buffer_overflow;
                        goto upcall;
                    }
                    s_.async_read_some(b_.prepare(size), std::move(self));
                }
                b_.commit(n);
                if (ec == boost::asio::error::eof) {
                    ec = {};
                    if (p_.got_some())
                        p_.put_eof(ec);
                    else
                        ec = error::end_of_stream;
                    break;
                }
                if (ec)
                    break;
                if (!Until && b_.size() > 0) {
                    feed(ec);
                    break;
                }
            }
        upcall:
            if (!read_) {
                BOOST_ASIO_CORO_YIELD boost::asio::post(
                    boost::beast::bind_front_handler(std::move(self), ec, std::size_t{0}));
            }
            self.complete(ec, used_);
        }
    }

private:
    // A head read leaves the body in the buffer, as Beast's does: the caller notes the time of
    // the head before any of the body is handed on.
    void feed(error_code& ec) {
        const std::size_t used = std::is_same_v<Done, header_done> ? p_.put_header(b_.data(), ec)
                                                                   : p_.put(b_.data(), ec);
        used_ += used;
        b_.consume(used);
    }

    Stream& s_;
    DynamicBuffer& b_;
    http1_parser<Derived>& p_;
    std::size_t used_ = 0;
    bool read_ = false;
};

template <bool Until, class Done, class Stream, class DynamicBuffer, class Derived, class Token>
auto async_read(Stream& s, DynamicBuffer& b, http1_parser<Derived>& p, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        read_op<Stream, DynamicBuffer, Derived, Until, Done>(s, b, p), token, s);
}

} // namespace http1

// Reads once (or parses what the buffer holds) and parses it.
template <class Stream, class DynamicBuffer, class Derived, class Token>
auto async_read_some(Stream& s, DynamicBuffer& b, http1_parser<Derived>& p, Token&& token) {
    return http1::async_read<false, http1::message_done>(s, b, p, std::forward<Token>(token));
}

// Reads until the head is parsed (with whatever of the body came with it).
template <class Stream, class DynamicBuffer, class Derived, class Token>
auto async_read_header(Stream& s, DynamicBuffer& b, http1_parser<Derived>& p, Token&& token) {
    return http1::async_read<true, http1::header_done>(s, b, p, std::forward<Token>(token));
}

// Reads until the response is parsed.
template <class Stream, class DynamicBuffer, class Derived, class Token>
auto async_read(Stream& s, DynamicBuffer& b, http1_parser<Derived>& p, Token&& token) {
    return http1::async_read<true, http1::message_done>(s, b, p, std::forward<Token>(token));
}

} // namespace sluice::detail

// The bridge: Beast's names, for a parser of ours.
namespace boost::beast::http {

template <class Stream, class DynamicBuffer, class Derived, class Token>
auto async_read_some(Stream& s,
                     DynamicBuffer& b,
                     sluice::detail::http1_parser<Derived>& p,
                     Token&& token) {
    return sluice::detail::async_read_some(s, b, p, std::forward<Token>(token));
}

template <class Stream, class DynamicBuffer, class Derived, class Token>
auto async_read_header(Stream& s,
                       DynamicBuffer& b,
                       sluice::detail::http1_parser<Derived>& p,
                       Token&& token) {
    return sluice::detail::async_read_header(s, b, p, std::forward<Token>(token));
}

template <class Stream, class DynamicBuffer, class Derived, class Token>
auto async_read(Stream& s,
                DynamicBuffer& b,
                sluice::detail::http1_parser<Derived>& p,
                Token&& token) {
    return sluice::detail::async_read(s, b, p, std::forward<Token>(token));
}

} // namespace boost::beast::http
