#pragma once

#include "transport/stream_core.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>

#include <openssl/ssl.h>

#include <cstddef>
#include <utility>

namespace sluice::detail {

// A client TLS stream that drives OpenSSL straight on the socket, for the connection pool.
//
// Asio's ssl::stream (under Beast's ssl_stream) talks to OpenSSL through a BIO pair: each
// stream allocates two 17 KiB record buffers when made and two more at its first I/O, none
// of them settable, and every received record is copied from its buffer into the BIO pair
// and from there into OpenSSL's. That is 68 KiB per connection, which 10,000 connections
// waiting on slow answers cannot afford, and two copies of every byte of a streamed answer.
// Here OpenSSL reads and writes the socket itself (through a small BIO that uses recv and
// send with MSG_NOSIGNAL: a library must not raise SIGPIPE in its host), reads ahead a whole
// socket read at a time, and keeps no buffer of its own but OpenSSL's record buffers, which
// SSL_MODE_RELEASE_BUFFERS frees between reads.
//
// It is an AsyncReadStream and AsyncWriteStream (Beast's HTTP algorithms and asio::async_write
// run on it) with an async_handshake. When OpenSSL needs the socket, an operation waits for
// it to be readable or writable through the reactor, under the stream's one deadline
// (stream_core, which plain_stream shares).
//
// The TCP connection itself is `next_layer()`, a beast::tcp_stream: connecting and a proxy's
// CONNECT go through it, with its own timeouts, before `attach()` hands the socket to
// OpenSSL. Errors: OpenSSL's in Asio's ssl category (with ssl::error::stream_truncated for an
// end of stream without close_notify, and asio::error::eof for a close_notify), the socket's
// in the system category, beast::error::timeout when the deadline passed.
class tls_stream : public stream_core {
public:
    tls_stream(const executor_type& ex, boost::asio::ssl::context& ctx);
    ~tls_stream();
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;

    SSL* native_handle() noexcept { return ssl_; }

    // Gives the connected socket to OpenSSL. Before the handshake, after connecting.
    void attach(error_code& ec);

    // Bytes that arrived and are not read yet: decrypted, or received and not yet decrypted
    // (which may be records without data: a session ticket, a close_notify).
    bool has_pending() const noexcept { return ::SSL_has_pending(ssl_) == 1; }

    // Application data that arrived and is not read yet. Records received but not decrypted
    // are processed to tell: a session ticket or a close_notify after an answer is not data
    // (a close_notify is `read_ended()`), and a record not received whole counts as data.
    // Never waits.
    bool has_unread_data();

    // A read has an answer without the socket: an error it owes, or the peer's close_notify.
    bool read_ended() const noexcept {
        return pending_error_ || (::SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0;
    }

    // A read may have an answer without waiting for the socket: bytes inside OpenSSL, an end
    // it owes, or bytes the last recv may have left in the socket (it took all it asked for).
    // The reactor reports a socket readable when new bytes arrive, not while it holds some: a
    // wait for bytes already there could wait for ever.
    bool input_ready() const noexcept { return has_pending() || read_ended() || socket_full_; }

    template <class Handler>
    auto async_handshake(Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code)>(
            [this](auto&& h) { start_op<void_result>(*this, handshake_step{}, std::move(h)); },
            handler);
    }

    template <class MutableBuffers, class Handler>
    auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        return initiate_read(*this, buffers, std::forward<Handler>(handler));
    }

    template <class ConstBuffers, class Handler>
    auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        return initiate_write(*this, buffers, std::forward<Handler>(handler));
    }

private:
    friend class stream_core;
    friend struct socket_bio;

    outcome try_handshake();
    outcome try_read(boost::asio::mutable_buffer b);
    // Writes at most one TLS record's worth of the gathered bytes.
    outcome try_write(const boost::asio::const_buffer* pieces, std::size_t count);
    outcome failure(int ret);

    struct handshake_step {
        bool wait_first(tls_stream&) const { return false; }
        outcome operator()(tls_stream& s) { return s.try_handshake(); }
    };
    // A read with nothing received waits until the socket is readable before it asks
    // OpenSSL, which allocates its 17 KiB record buffer at the first try and keeps it while
    // the read waits: 10,000 connections waiting on answers would hold 170 MB for nothing
    // (and a try on an empty socket is a recv that finds nothing). A read into no room
    // completes at once, as a socket's does, and one right after async_wait_readable found
    // the socket readable does not wait for it a second time.
    struct read_step {
        boost::asio::mutable_buffer b;
        bool wait_first(tls_stream& s) const {
            return b.size() > 0 && !s.input_ready() && !s.take_readable();
        }
        outcome operator()(tls_stream& s) { return s.try_read(b); }
    };

    // Before a read waits: OpenSSL's record buffers are freed if the stream is to release
    // them (SSL_MODE_RELEASE_BUFFERS) and nothing is pending. OpenSSL frees its read buffer
    // only after a record of data, so one allocated by the handshake or by a session ticket
    // would stay through the whole wait for an answer.
    void before_read_wait();

    SSL* ssl_ = nullptr;
    int last_errno_ = 0;       // of the socket BIO's last recv or send; 0 for an end of stream
    bool socket_full_ = false; // the socket BIO's last recv took as many bytes as asked
    error_code pending_error_; // a read's failure after bytes it delivered: the next read's
};

} // namespace sluice::detail
