#pragma once

#include "transport/stream_core.hpp"

#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <utility>

namespace sluice::detail {

// A plain TCP stream for the connection pool's http:// connections: it reads and writes the
// socket itself (recv and sendmsg, without blocking, and a wait through the reactor when the
// socket is not ready), under the one deadline it shares with tls_stream (stream_core).
//
// beast::tcp_stream, which plain connections used before, arms its timer for every read and
// write, and the timer's handler is Beast's own, so its memory came from the heap: more than
// one allocation per request that a TLS connection does not make. A request's write is one
// sendmsg of its gathered pieces, with MSG_NOSIGNAL (a library must not raise SIGPIPE in its
// host).
//
// It is an AsyncReadStream and AsyncWriteStream (Beast's HTTP algorithms and asio::async_write
// run on it). A read tries the socket first: the answer to a request is often there by the time
// it is asked for. The TCP connection is `next_layer()`, which connecting and a proxy's
// CONNECT go through before. Errors are the socket's, as Asio reports them (asio::error::eof
// at the end of the stream, connection_reset, broken_pipe), and beast::error::timeout when the
// deadline passed.
class plain_stream : public stream_core {
public:
    explicit plain_stream(const executor_type& ex)
        : stream_core(ex) {}

    template <class MutableBuffers, class Handler>
    auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        return initiate_read(*this, buffers, std::forward<Handler>(handler));
    }

    template <class ConstBuffers, class Handler>
    auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        return initiate_write(*this, buffers, std::forward<Handler>(handler));
    }

    // Nothing is held above the socket: what there is to read is in the socket.
    static bool input_ready() noexcept { return false; }

private:
    friend class stream_core;

    outcome try_read(boost::asio::mutable_buffer b);
    outcome try_write(const boost::asio::const_buffer* pieces, std::size_t count);
    // What a recv or sendmsg (`call`) gives: its count, a wait for the socket (`w`) when it
    // would block, or its error; tried again when a signal interrupted it.
    template <class Call>
    static outcome transfer(want w, Call call);

    struct read_step {
        boost::asio::mutable_buffer b;
        bool wait_first(plain_stream&) const { return false; }
        outcome operator()(plain_stream& s) { return s.try_read(b); }
    };

    void before_read_wait() noexcept {} // no buffers of its own to give back
};

} // namespace sluice::detail
