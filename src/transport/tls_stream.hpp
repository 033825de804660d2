#pragma once

#include <sluice/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <type_traits>
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
// it to be readable or writable through the reactor; an operation that completes without
// waiting is posted, never run inside its initiating call. One deadline covers every
// operation, as beast::tcp_stream's expiry does (`expires_at`): it is kept by one timer,
// armed lazily, so that an exchange whose deadline is later than the armed one arms nothing.
//
// The TCP connection itself is `next_layer()`, a beast::tcp_stream: connecting and a proxy's
// CONNECT go through it, with its own timeouts, before `attach()` hands the socket to
// OpenSSL. Errors: OpenSSL's in Asio's ssl category (with ssl::error::stream_truncated for an
// end of stream without close_notify, and asio::error::eof for a close_notify), the socket's
// in the system category, beast::error::timeout when the deadline passed.
class tls_stream {
public:
    using executor_type = boost::asio::any_io_executor;
    using clock = std::chrono::steady_clock;

    tls_stream(const executor_type& ex, boost::asio::ssl::context& ctx);
    ~tls_stream();
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;

    executor_type get_executor() noexcept { return tcp_.get_executor(); }
    SSL* native_handle() noexcept { return ssl_; }
    boost::beast::tcp_stream& next_layer() noexcept { return tcp_; }

    // Whoever owns this stream: the timer's handler runs only while it lives (a timer that
    // fired is run after the stream may have gone).
    void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

    // Gives the connected socket to OpenSSL. Before the handshake, after connecting.
    void attach(error_code& ec);

    // The deadline of every operation from now on (each fails with beast::error::timeout
    // once it passes); `expires_never` lifts it.
    void expires_at(clock::time_point t) noexcept { deadline_ = t; }
    void expires_never() noexcept { deadline_ = clock::time_point::max(); }

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

    template <class Handler>
    auto async_handshake(Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code)>(
            [this](auto&& h) {
                using H = std::decay_t<decltype(h)>;
                op<handshake_step, H, void_result>(*this, handshake_step{}, std::move(h)).start();
            },
            handler);
    }

    template <class MutableBuffers, class Handler>
    auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code, std::size_t)>(
            [this](auto&& h, const boost::asio::mutable_buffer& b) {
                using H = std::decay_t<decltype(h)>;
                op<read_step, H, size_result>(*this, read_step{b}, std::move(h)).start();
            },
            handler,
            first_mutable(buffers));
    }

    template <class ConstBuffers, class Handler>
    auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code, std::size_t)>(
            [this](auto&& h, const ConstBuffers& b) {
                using H = std::decay_t<decltype(h)>;
                op<write_step<ConstBuffers>, H, size_result>(
                    *this, write_step<ConstBuffers>{b}, std::move(h))
                    .start();
            },
            handler,
            buffers);
    }

private:
    enum class want { nothing, read, write };

    // What one try of an OpenSSL call gave: done (with an error or a count), or the socket
    // it waits for.
    struct outcome {
        want wait = want::nothing;
        error_code ec;
        std::size_t n = 0;
    };

    outcome try_handshake();
    outcome try_read(boost::asio::mutable_buffer b);
    // Writes at most one TLS record's worth of the gathered bytes.
    outcome try_write(const boost::asio::const_buffer* pieces, std::size_t count);
    outcome failure(int ret);

    // Each step says whether it waits for the socket before its first try.
    struct handshake_step {
        static bool wait_first(tls_stream&) { return false; }
        outcome operator()(tls_stream& s) { return s.try_handshake(); }
    };
    // A read with nothing received waits until the socket is readable before it asks
    // OpenSSL, which allocates its 17 KiB record buffer at the first try and keeps it while
    // the read waits: 10,000 connections waiting on answers would hold 170 MB for nothing
    // (and a try on an empty socket is a recv that finds nothing).
    struct read_step {
        boost::asio::mutable_buffer b;
        static bool wait_first(tls_stream& s) { return !s.has_pending() && !s.read_ended(); }
        outcome operator()(tls_stream& s) { return s.try_read(b); }
    };
    template <class ConstBuffers>
    struct write_step {
        ConstBuffers buffers;
        static bool wait_first(tls_stream&) { return false; }
        outcome operator()(tls_stream& s) {
            // Up to 16 pieces go into one record: asio::async_write passes at most 16 (its
            // prepared buffers), and the pool's request head is 5.
            boost::asio::const_buffer pieces[16];
            std::size_t count = 0;
            for (auto it = boost::asio::buffer_sequence_begin(buffers);
                 it != boost::asio::buffer_sequence_end(buffers) && count < 16;
                 ++it)
                pieces[count++] = boost::asio::const_buffer(*it);
            return s.try_write(pieces, count);
        }
    };

    struct void_result {
        template <class H>
        static void call(H& h, const outcome& o) {
            std::move(h)(o.ec);
        }
        template <class H>
        static auto bind(H&& h, const outcome& o) {
            return boost::beast::bind_front_handler(std::move(h), o.ec);
        }
    };
    struct size_result {
        template <class H>
        static void call(H& h, const outcome& o) {
            std::move(h)(o.ec, o.n);
        }
        template <class H>
        static auto bind(H&& h, const outcome& o) {
            return boost::beast::bind_front_handler(std::move(h), o.ec, o.n);
        }
    };

    // One operation: tries its OpenSSL call, waits for the socket when OpenSSL asks, and
    // tries again, until it is done. Its handler's executor and allocator are the caller's.
    template <class Step, class Handler, class Result>
    class op {
    public:
        op(tls_stream& s, Step step, Handler h)
            : s_(&s)
            , step_(std::move(step))
            , handler_(std::move(h)) {}

        using executor_type =
            boost::asio::associated_executor_t<Handler, tls_stream::executor_type>;
        // The handler's executor, or the stream's own when they are the same io_context. Beast's
        // operations give their handlers the executor with outstanding work tracked, which Asio
        // does not recognise as the io_context's: every wait that completes would be handed
        // through the type-erased executor (a wrapper allocated each time) instead of called.
        // Running on the io_context itself instead of through a work-tracking copy of its
        // executor runs it in the same place; the caller's work guard still holds the work.
        executor_type get_executor() const noexcept {
            executor_type ex = boost::asio::get_associated_executor(handler_, s_->get_executor());
            if constexpr (std::is_same_v<executor_type, tls_stream::executor_type>)
                if (s_->same_loop(ex))
                    return s_->get_executor();
            return ex;
        }
        using allocator_type = boost::asio::associated_allocator_t<Handler>;
        allocator_type get_allocator() const noexcept {
            return boost::asio::get_associated_allocator(handler_);
        }

        void start() {
            if (b_empty() || !Step::wait_first(*s_))
                return run(false);
            wait(want::read, false);
        }

        // The socket is ready (or the wait was cancelled, or timed out).
        void operator()(error_code ec) {
            --s_->waiting_;
            if (s_->timed_out_)
                ec = boost::beast::error::timeout;
            if (ec)
                return Result::call(handler_, outcome{want::nothing, ec, 0});
            run(true);
        }

    private:
        void run(bool waited) {
            outcome o = step_(*s_);
            if (o.wait == want::nothing)
                return finish(o, waited);
            wait(o.wait, waited);
        }

        void wait(want w, bool waited) {
            if (const error_code ec = s_->before_wait(); ec)
                return finish(outcome{want::nothing, ec, 0}, waited);
            if (w == want::read)
                s_->release_buffers();
            ++s_->waiting_;
            s_->tcp_.socket().async_wait(w == want::read ? boost::asio::socket_base::wait_read
                                                         : boost::asio::socket_base::wait_write,
                                         std::move(*this));
        }

        // A read into no room completes at once, as a socket's does.
        bool b_empty() const {
            if constexpr (std::is_same_v<Step, read_step>)
                return step_.b.size() == 0;
            else
                return false;
        }

        void finish(const outcome& o, bool waited) {
            if (waited)
                return Result::call(handler_, o);
            // Done within the initiating call: completed as if posted. When the handler runs on
            // the stream's io_context, it is posted to that io_context as a plain function: a
            // posted handler with an executor of its own would be handed on through that
            // executor, type-erased, at a cost of one more allocated wrapper.
            if constexpr (std::is_same_v<executor_type, tls_stream::executor_type>) {
                if (const auto loop = s_->loop();
                    loop && s_->same_loop(boost::asio::get_associated_executor(
                                handler_, s_->get_executor()))) {
                    boost::asio::post(*loop, posted_call{std::move(handler_), o});
                    return;
                }
            }
            auto ex = s_->get_executor();
            boost::asio::post(ex, Result::bind(std::move(handler_), o));
        }

        // The handler and its outcome, posted; the handler's allocator takes the post's memory
        // too. A plain function to Asio otherwise: no executor of its own.
        struct posted_call {
            Handler h;
            outcome o;
            using allocator_type = boost::asio::associated_allocator_t<Handler>;
            allocator_type get_allocator() const noexcept {
                return boost::asio::get_associated_allocator(h);
            }
            void operator()() { Result::call(h, o); }
        };

        tls_stream* s_;
        Step step_;
        Handler handler_;
    };

    // The io_context executor the stream runs on, when it runs on one (not a strand). A copy:
    // get_executor() returns a temporary, and target() points into it.
    std::optional<boost::asio::io_context::executor_type> loop() noexcept {
        const executor_type ex = tcp_.get_executor();
        if (const auto* t = ex.target<boost::asio::io_context::executor_type>())
            return *t;
        return std::nullopt;
    }
    // `ex` runs handlers where the stream's io_context executor does: it is that executor,
    // perhaps tracking outstanding work (as Beast's operations hold it).
    bool same_loop(const executor_type& ex) noexcept {
        using tracked = std::decay_t<decltype(boost::asio::prefer(
            std::declval<boost::asio::io_context::executor_type>(),
            boost::asio::execution::outstanding_work.tracked))>;
        const auto own = loop();
        if (!own)
            return false;
        if (const auto* t = ex.target<tracked>())
            return &t->context() == &own->context();
        if (const auto* u = ex.target<boost::asio::io_context::executor_type>())
            return &u->context() == &own->context();
        return false;
    }

    template <class MutableBuffers>
    static boost::asio::mutable_buffer first_mutable(const MutableBuffers& buffers) {
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers);
             ++it) {
            boost::asio::mutable_buffer b(*it);
            if (b.size() > 0)
                return b;
        }
        return {};
    }

    // Before each wait: the timer is made to fire no later than the deadline (at once when
    // it has passed); a stream that timed out fails the operation.
    error_code before_wait();
    // Before a read waits: OpenSSL's record buffers are freed if the stream is to release
    // them (SSL_MODE_RELEASE_BUFFERS) and nothing is pending. OpenSSL frees its read buffer
    // only after a record of data, so one allocated by the handshake or by a session ticket
    // would stay through the whole wait for an answer.
    void release_buffers();
    void arm_timer();
    void on_timer();

    boost::beast::tcp_stream tcp_;
    SSL* ssl_ = nullptr;
    boost::asio::steady_timer timer_;
    std::weak_ptr<void> owner_;
    clock::time_point deadline_ = clock::time_point::max();
    clock::time_point armed_for_ = clock::time_point::max(); // max: the timer is not armed
    int waiting_ = 0;                                        // operations waiting for the socket
    bool timed_out_ = false;
    int last_errno_ = 0;       // of the socket BIO's last recv or send; 0 for an end of stream
    error_code pending_error_; // a read's failure after bytes it delivered: the next read's

    friend struct socket_bio;
};

} // namespace sluice::detail
