#include "transport/detail/pool_impl.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

namespace sluice::detail {

namespace asio = boost::asio;

// Acknowledges what arrives at once instead of after the delayed-ACK timer (40 ms or more
// on Linux). A server with Nagle's algorithm on holds a second small write until its first
// is acknowledged, so without this the real answer that follows a stray response would
// come only after the quiet period is over. Linux resets the mode by itself, so it is set
// again before each wait. Best effort: elsewhere it is a no-op.
void pool_impl::ack_at_once([[maybe_unused]] connection& conn) const {
    if (opts.reuse_quiet_period.count() == 0)
        return; // no window to arrive in: a syscall per wait saved
#ifdef TCP_QUICKACK
    const int on = 1;
    ::setsockopt(conn.tcp().socket().native_handle(), IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
#endif
}

// Between exchanges a read stays armed, so that a byte or an EOF from the server is seen
// when it comes, not taken later for the answer to the next request.
void pool_impl::arm_idle_read(const connection_ptr& conn) {
    conn->read_armed = true;
    conn->expires_never();
    ack_at_once(*conn);
    conn->with_stream([&](auto& s) {
        s.async_read_some(
            asio::buffer(conn->probe),
            with_op_memory([self = shared_from_this(), conn](error_code ec, std::size_t n) {
                self->on_idle_read(conn, ec, n);
            }));
    });
}

void pool_impl::on_idle_read(const connection_ptr& conn, error_code ec, std::size_t n) {
    conn->read_armed = false;
    if (!conn->open)
        return; // discarded meanwhile (idle sweep, close)
    using phase = connection::phase;
    switch (conn->state) {
    case phase::lending: {
        exchange_ptr x = std::move(conn->next);
        if (ec == asio::error::operation_aborted && n == 0 && !closed && !conn->has_unread_bytes())
            return start_on(conn, std::move(x));
        // Bytes or a close came first: the connection is not in step with our requests.
        discard(conn);
        if (closed)
            return complete_later(std::move(x), "");
        return submit(std::move(x));
    }
    case phase::quiet: {
        // The quiet period of the answer held here was broken: by bytes (the answer may
        // have been a stray response, and these bytes the real one) or by a close or a
        // reset (the answer stands: it was complete, and nothing followed it).
        exchange_ptr x = std::move(conn->held);
        discard(conn);
        on_slot_freed();
        if (n > 0 && !closed) {
            ++stats.untrusted;
            forget_answer(*x);
            return fail(std::move(x), errc::unexpected_bytes, "read (after the answer)");
        }
        return complete(std::move(x));
    }
    case phase::idle: {
        // Data or EOF on an idle connection: the server closed it, or sent what nobody
        // asked for. Either way it cannot carry another request.
        if (n > 0)
            ++stats.untrusted;
        const auto it = std::find(idle.begin(), idle.end(), conn);
        if (it != idle.end())
            idle.erase(it);
        discard(conn);
        return on_slot_freed();
    }
    case phase::busy:
    case phase::closing:
        return discard(conn);
    }
}

// Held until the connection has been silent for the quiet period (on_quiet_over), or failed
// when bytes come first (on_idle_read).
void pool_impl::hold_for_quiet_period(connection_ptr conn, exchange_ptr x) {
    conn->state = connection::phase::quiet;
    conn->held = std::move(x);
    arm_idle_read(conn);
    conn->quiet_timer.expires_after(opts.reuse_quiet_period);
    conn->quiet_timer.async_wait(with_op_memory(
        [self = shared_from_this(), conn](error_code ec) { self->on_quiet_over(conn, ec); }));
}

// The quiet period of the answer held on `conn` passed without a byte: it is delivered,
// and the connection (its read still armed) becomes idle.
void pool_impl::on_quiet_over(const connection_ptr& conn, error_code ec) {
    if (ec || !conn->open || conn->state != connection::phase::quiet)
        return;
    exchange_ptr x = std::move(conn->held);
    make_idle(conn, true);
    complete(std::move(x));
}

} // namespace sluice::detail
