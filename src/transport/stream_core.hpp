#pragma once

#include <sluice/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace sluice::detail {

// What the pool's own streams (tls_stream, plain_stream) share: the TCP connection, one
// deadline for every operation, and the operation that drives a stream on its socket.
//
// The TCP connection is `next_layer()`, a beast::tcp_stream: connecting and a proxy's CONNECT
// go through it, with its own timeouts. After that the stream reads and writes the socket
// itself. An operation tries its step without blocking; when the step says it needs the
// socket, the operation waits for it to be readable or writable through the reactor and tries
// again. An operation that completes without waiting is posted, never run inside its
// initiating call. Its handler's executor and allocator are the caller's (the pool's handlers
// take their memory from op_memory).
//
// One deadline covers every operation, as beast::tcp_stream's expiry does (`expires_at`). It is
// kept by one timer, armed lazily at a wait: an exchange whose deadline is later than the armed
// one arms nothing, where tcp_stream arms a timer (and allocates its handler) for every read
// and write. When the deadline passes while an operation waits, the socket is closed (the
// connection is not used again) and the operation fails with beast::error::timeout.
class stream_core {
public:
    using executor_type = boost::asio::any_io_executor;
    using clock = std::chrono::steady_clock;

    explicit stream_core(const executor_type& ex)
        : tcp_(ex)
        , timer_(ex) {}
    stream_core(const stream_core&) = delete;
    stream_core& operator=(const stream_core&) = delete;

    executor_type get_executor() noexcept { return tcp_.get_executor(); }
    boost::beast::tcp_stream& next_layer() noexcept { return tcp_; }

    // Whoever owns this stream: the timer's handler runs only while it lives (a timer that
    // fired is run after the stream may have gone).
    void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

    // The deadline of every operation from now on (each fails with beast::error::timeout
    // once it passes); `expires_never` lifts it.
    void expires_at(clock::time_point t) noexcept { deadline_ = t; }
    void expires_never() noexcept { deadline_ = clock::time_point::max(); }

    // Completes with `void(error_code)` when `s` (a stream derived from this class) has
    // something to read: the socket is readable, or the stream holds bytes already (TLS
    // records received and not yet read: `s.input_ready()`). Under the deadline, cancelled
    // as a read is. A reader that holds no buffer while it waits takes one only then.
    template <class Stream, class Handler>
    static auto async_wait_readable(Stream& s, Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code)>(
            [&s](auto&& h) { start_op<void_result>(s, readable_step<Stream>{}, std::move(h)); },
            handler);
    }

    enum class want { nothing, read, write };

    // What one try of a step gave: done (with an error or a count), or the socket it waits for.
    struct outcome {
        want wait = want::nothing;
        error_code ec;
        std::size_t n = 0;
    };

    // One read of `s` into `b` now, without waiting: the bytes the stream has (a count), its
    // error (asio::error::eof at the end of the stream), or which way it must wait for the
    // socket first (async_wait_readable, async_wait_writable). For a reader that parses what
    // it reads before it returns to the loop, so that every connection can read into the same
    // buffer and none holds one of its own while it waits.
    template <class Stream>
    static outcome read_now(Stream& s, boost::asio::mutable_buffer b) {
        static_cast<stream_core&>(s).readable_ = false; // this read uses the readiness seen
        return s.try_read(b);
    }

    // One write of `count` pieces to `s` now, without waiting: the bytes it took (all of them,
    // or as many as the socket or one TLS record took), its error, or which way it must wait
    // first (then nothing was taken: a TLS write is retried with the same bytes).
    template <class Stream>
    static outcome
    write_now(Stream& s, const boost::asio::const_buffer* pieces, std::size_t count) {
        return s.try_write(pieces, count);
    }

    // Completes with `void(error_code)` once the socket is writable (a TLS read may need to
    // write first), under the deadline.
    template <class Stream, class Handler>
    static auto async_wait_writable(Stream& s, Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code)>(
            [&s](auto&& h) { start_op<void_result>(s, writable_step<Stream>{}, std::move(h)); },
            handler);
    }

protected:
    ~stream_core() = default;

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

    // One operation of `Stream` (a class derived from this one): tries its step, waits for
    // the socket when the step asks, and tries again, until it is done. A Step has
    // `bool wait_first(Stream&)` (wait until the socket is readable before the first try) and
    // `outcome operator()(Stream&)`; the stream has `void before_read_wait()`.
    template <class Stream, class Step, class Handler, class Result>
    class op {
    public:
        op(Stream& s, Step step, Handler h)
            : s_(&s)
            , step_(std::move(step))
            , handler_(std::move(h)) {}

        using executor_type =
            boost::asio::associated_executor_t<Handler, stream_core::executor_type>;
        // The handler's executor, or the stream's own when they are the same io_context. Beast's
        // operations give their handlers the executor with outstanding work tracked, which Asio
        // does not recognise as the io_context's: every wait that completes would be handed
        // through the type-erased executor (a wrapper allocated each time) instead of called.
        // Running on the io_context itself instead of through a work-tracking copy of its
        // executor runs it in the same place; the caller's work guard still holds the work.
        executor_type get_executor() const noexcept {
            // A handler with no executor of its own (the pool's, with_op_memory's) runs on the
            // stream's: returned at once, as the lines below would, without the two more
            // copies of the type-erased executor they make (Asio asks at every wait).
            if constexpr (std::is_same_v<
                              boost::asio::associated_executor_t<Handler,
                                                                 boost::asio::system_executor>,
                              boost::asio::system_executor>)
                return core().get_executor();
            executor_type ex =
                boost::asio::get_associated_executor(handler_, core().get_executor());
            if constexpr (std::is_same_v<executor_type, stream_core::executor_type>)
                if (core().same_loop(ex))
                    return core().get_executor();
            return ex;
        }
        using allocator_type = boost::asio::associated_allocator_t<Handler>;
        allocator_type get_allocator() const noexcept {
            return boost::asio::get_associated_allocator(handler_);
        }

        void start() {
            if (core().timed_out_) // the socket is closed: nothing to try
                return finish(outcome{want::nothing, boost::beast::error::timeout, 0}, false);
            if (!step_.wait_first(*s_))
                return run(false);
            wait(want::read, false);
        }

        // The socket is ready (or the wait was cancelled, or timed out).
        void operator()(error_code ec) {
            stream_core& c = core();
            --c.waiting_;
            if (c.timed_out_)
                ec = boost::beast::error::timeout;
            if (ec)
                return Result::call(handler_, outcome{want::nothing, ec, 0});
            run(true);
        }

    private:
        stream_core& core() const noexcept { return *s_; }

        void run(bool waited) {
            outcome o = step_(*s_);
            if (o.wait == want::nothing)
                return finish(o, waited);
            wait(o.wait, waited);
        }

        void wait(want w, bool waited) {
            stream_core& c = core();
            if (const error_code ec = c.before_wait(); ec)
                return finish(outcome{want::nothing, ec, 0}, waited);
            if (w == want::read)
                s_->before_read_wait();
            ++c.waiting_;
            c.tcp_.socket().async_wait(w == want::read ? boost::asio::socket_base::wait_read
                                                       : boost::asio::socket_base::wait_write,
                                       std::move(*this));
        }

        void finish(const outcome& o, bool waited) {
            if (waited)
                return Result::call(handler_, o);
            // Done within the initiating call: completed as if posted. When the handler runs on
            // the stream's io_context, it is posted to that io_context as a plain function: a
            // posted handler with an executor of its own would be handed on through that
            // executor, type-erased, at a cost of one more allocated wrapper.
            stream_core& c = core();
            if constexpr (std::is_same_v<executor_type, stream_core::executor_type>) {
                if (const auto loop = c.loop();
                    loop &&
                    c.same_loop(boost::asio::get_associated_executor(handler_, c.get_executor()))) {
                    boost::asio::post(*loop, posted_call{std::move(handler_), o});
                    return;
                }
            }
            auto ex = c.get_executor();
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

        Stream* s_;
        Step step_;
        Handler handler_;
    };

    template <class Stream>
    struct readable_step {
        bool wait_first(Stream& s) const { return !s.input_ready(); }
        outcome operator()(Stream& s) const {
            static_cast<stream_core&>(s).readable_ = true;
            return {};
        }
    };

    template <class Stream>
    struct writable_step {
        bool waited = false;
        bool wait_first(Stream&) const { return false; }
        outcome operator()(Stream&) {
            if (std::exchange(waited, true))
                return {};
            return {want::write, {}, 0};
        }
    };

    // The last wait for something to read found the socket readable, and no read has used
    // that yet: the next read need not wait for it again (once).
    bool take_readable() noexcept { return std::exchange(readable_, false); }

    // Starts an operation of `s` that completes with `void(error_code)` or
    // `void(error_code, std::size_t)` (Result).
    template <class Result, class Stream, class Step, class Handler>
    static void start_op(Stream& s, Step step, Handler&& h) {
        using H = std::decay_t<Handler>;
        op<Stream, Step, H, Result>(s, std::move(step), std::forward<Handler>(h)).start();
    }

    // A write of a stream: up to 16 pieces of `buffers` gathered into one
    // `try_write(pieces, count)` of the stream's.
    template <class Stream, class ConstBuffers>
    struct write_step {
        ConstBuffers buffers;
        bool wait_first(Stream&) const { return false; }
        outcome operator()(Stream& s) {
            boost::asio::const_buffer pieces[16];
            return s.try_write(pieces, gather(buffers, pieces));
        }
    };

    // async_read_some and async_write_some of a stream, with its `read_step{buffer}` and its
    // `try_write` (a stream names stream_core its friend).
    template <class Stream, class MutableBuffers, class Handler>
    static auto initiate_read(Stream& s, const MutableBuffers& buffers, Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code, std::size_t)>(
            [&s](auto&& h, const boost::asio::mutable_buffer& b) {
                start_op<size_result>(s, typename Stream::read_step{b}, std::move(h));
            },
            handler,
            first_mutable(buffers));
    }
    template <class Stream, class ConstBuffers, class Handler>
    static auto initiate_write(Stream& s, const ConstBuffers& buffers, Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code, std::size_t)>(
            [&s](auto&& h, const ConstBuffers& b) {
                start_op<size_result>(s, write_step<Stream, ConstBuffers>{b}, std::move(h));
            },
            handler,
            buffers);
    }

    // The first non-empty buffer of a sequence, or an empty one: what one read fills.
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

    // Up to 16 pieces of a sequence, for one gathered write: asio::async_write passes at most
    // 16 (its prepared buffers), and the pool's request head is 5. Returns how many.
    template <class ConstBuffers>
    static std::size_t gather(const ConstBuffers& buffers, boost::asio::const_buffer (&out)[16]) {
        std::size_t count = 0;
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers) && count < 16;
             ++it)
            out[count++] = boost::asio::const_buffer(*it);
        return count;
    }

    int socket_fd() noexcept { return tcp_.socket().native_handle(); }
    // The error a failed recv or send left in errno, as the socket's operations report it.
    static error_code socket_error(int e) noexcept {
        return error_code(e, boost::system::system_category());
    }

    boost::beast::tcp_stream tcp_;

private:
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
    bool same_loop(const executor_type& ex) noexcept;

    // Before each wait: the timer is made to fire no later than the deadline (at once when
    // it has passed); a stream that timed out fails the operation.
    error_code before_wait();
    void arm_timer();
    void on_timer();

    boost::asio::steady_timer timer_;
    std::weak_ptr<void> owner_;
    clock::time_point deadline_ = clock::time_point::max();
    clock::time_point armed_for_ = clock::time_point::max(); // max: the timer is not armed
    int waiting_ = 0;                                        // operations waiting for the socket
    bool timed_out_ = false;
    bool readable_ = false; // see take_readable
};

} // namespace sluice::detail
