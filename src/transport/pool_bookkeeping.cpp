#include "transport/detail/pool_impl.hpp"
#include "transport/request_head.hpp"

#include <algorithm>
#include <stdexcept>

namespace sluice::detail {

namespace asio = boost::asio;

namespace {

// How long a parked connection goes without a read armed. One lent again sooner is checked
// by a peek instead (lend); one idle longer has its read armed, and is closed within this
// delay of the server closing it or sending what nobody asked for, instead of when next lent.
constexpr std::chrono::milliseconds idle_watch_delay{5};

} // namespace

pool_impl::pool_impl(asio::any_io_executor e,
                     endpoint endp,
                     request_headers h,
                     pool_options o,
                     asio::ssl::context* t,
                     proxy_endpoint p)
    : ex(std::move(e))
    , loop_ex(concrete_loop_executor(ex))
    , ep(std::move(endp))
    , opts(o)
    , tls(ep.tls ? t : nullptr)
    , proxy(std::move(p))
    , resolver(ex)
    , resolve_timer(ex)
    , idle_timer(ex)
    , watch_timer(ex)
    , host_is_ip(ep.host_is_ip())
    , scratch(std::make_unique_for_overwrite<char[]>(read_scratch_bytes))
    , first_contact(tls && (::SSL_CTX_get_verify_mode(tls->native_handle()) & SSL_VERIFY_PEER)) {
    if (ep.tls && !tls)
        throw std::invalid_argument("connection_pool: an https endpoint needs a TLS context");
    head = request_head(ep, h);
    fields = request_fields(ep, h);
    if (!proxy.empty()) {
        // The server's authority, with its port always (RFC 9110 9.3.6), in the request line
        // and Host. The credentials go here only, never in the requests inside the tunnel.
        const std::string authority =
            (ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host) + ":" +
            std::to_string(ep.port);
        connect_request = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
        if (!proxy.authorization.empty())
            connect_request += "Proxy-Authorization: " + proxy.authorization + "\r\n";
        connect_request += "\r\n";
    }
    bodies.limit = opts.max_body_bytes_in_flight;
    live.reserve(std::min<std::size_t>(opts.max_connections, 1024));
}

void pool_impl::submit(exchange_ptr x) {
    if (!idle.empty()) {
        connection_ptr conn = std::move(idle.back()); // the most recently used: the least
        idle.pop_back();                              // likely to be stale
        if (!conn->read_armed)
            --unwatched;
        lend(std::move(conn), std::move(x));
    } else if (may_open()) {
        open_connection(std::move(x));
    } else {
        waiters.push_back(std::move(x));
    }
}

// An idle connection with its read armed: the read is cancelled, and its handler
// (on_idle_read) starts the exchange once it knows that nothing arrived meanwhile. One
// lent again before its read was armed is checked on the spot.
void pool_impl::lend(connection_ptr conn, exchange_ptr x) {
    if (!conn->read_armed) {
        if (!conn->has_unread_bytes())
            return start_on(std::move(conn), std::move(x));
        // Not counted as untrusted: the peek cannot tell stray bytes from a plain close.
        discard(std::move(conn));
        return submit(std::move(x));
    }
    conn->state = connection::phase::lending;
    conn->next = std::move(x);
    error_code ignored;
    conn->tcp().socket().cancel(ignored);
}

// Starts `x` on `conn`, a connection that served an earlier exchange and has nothing
// unread on it.
void pool_impl::start_on(connection_ptr conn, exchange_ptr x) {
    conn->state = connection::phase::busy;
    x->conn = std::move(conn);
    x->deadline = std::min(clock::now() + opts.request_timeout, x->not_after);
    start_write(std::move(x));
}

// A connection whose exchange is over and whose answer is delivered (or held elsewhere)
// goes to the longest waiter, or is parked idle, its read armed after idle_watch_delay.
void pool_impl::make_idle(connection_ptr conn, bool read_armed) {
    if (closed || !conn->open)
        return discard(std::move(conn));
    conn->state = connection::phase::idle;
    if (!waiters.empty()) {
        exchange_ptr next = std::move(waiters.front());
        waiters.pop_front();
        if (read_armed)
            return lend(std::move(conn), std::move(next));
        if (conn->has_unread_bytes()) {
            discard(std::move(conn));
            return open_connection(std::move(next));
        }
        return start_on(std::move(conn), std::move(next));
    }
    conn->idle_since = clock::now();
    if (!read_armed) {
        // Its read is armed only if it stays idle (watch_idle): at a high rate the next
        // request takes it sooner, after a peek, and a read armed and cancelled per request
        // (a wait registered with the reactor, its cancellation, its handler) is saved.
        ++unwatched;
        arm_watch_timer(conn->idle_since + idle_watch_delay);
    }
    idle.push_back(std::move(conn));
    arm_idle_timer();
}

// A slot was freed by a closed connection, or the first contact is over: the longest waiters
// may open new connections, as many as there are free slots.
void pool_impl::on_slot_freed() {
    while (!waiters.empty() && !closed && may_open()) {
        exchange_ptr next = std::move(waiters.front());
        waiters.pop_front();
        open_connection(std::move(next));
    }
}

// An exchange is done with `conn`, which cannot be reused (a failure, `Connection:
// close`, bytes after the answer): it is closed and its slot goes to the longest waiter.
void pool_impl::release_broken(connection_ptr conn) {
    discard(std::move(conn));
    on_slot_freed();
}

// Every open connection (connecting, busy or idle) is listed in `live`, so that close()
// reaches the ones exchanges own; swap-and-pop keeps that free of allocation.
connection_ptr pool_impl::make_connection() {
    auto conn = std::make_shared<connection>(ex, tls);
    conn->stream().set_owner(conn);
    conn->slot = live.size();
    live.push_back(conn.get());
    conn->connecting = true;
    ++connecting;
    ++stats.connects;
    return conn;
}

void pool_impl::connected(connection& conn) {
    if (!conn.connecting)
        return;
    conn.connecting = false;
    --connecting;
    on_slot_freed();
}

void pool_impl::discard(connection_ptr conn) {
    if (!conn->open)
        return;
    conn->open = false;
    if (conn->connecting) {
        conn->connecting = false;
        --connecting;
    }
    conn->close();
    live[conn->slot] = live.back();
    live[conn->slot]->slot = conn->slot;
    live.pop_back();
}

// One timer for the pool, due when the oldest idle connection (the front: idle
// connections are kept most recently used last) reaches idle_timeout.
void pool_impl::arm_idle_timer() {
    if (idle_timer_armed || idle.empty())
        return;
    idle_timer_armed = true;
    idle_timer.expires_at(idle.front()->idle_since + opts.idle_timeout);
    idle_timer.async_wait([self = shared_from_this()](error_code ec) {
        self->idle_timer_armed = false;
        if (!ec && !self->closed)
            self->sweep_idle();
    });
}

void pool_impl::sweep_idle() {
    const auto cutoff = clock::now() - opts.idle_timeout;
    std::size_t stale = 0;
    while (stale < idle.size() && idle[stale]->idle_since <= cutoff) {
        if (!idle[stale]->read_armed)
            --unwatched;
        idle[stale]->state = connection::phase::closing;
        discard(std::move(idle[stale++]));
    }
    idle.erase(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(stale));
    arm_idle_timer();
}

// One timer for the idle reads still to arm, due when the oldest connection without one has
// been idle for idle_watch_delay. Armed when the first such connection is parked and left
// alone after: at a high rate each is lent again before then, and the timer, once armed, is
// not moved for each of them.
void pool_impl::arm_watch_timer(clock::time_point due) {
    if (watch_timer_armed)
        return; // due earlier: it arms the later ones again when it fires
    watch_timer_armed = true;
    watch_timer.expires_at(due);
    watch_timer.async_wait([self = shared_from_this()](error_code ec) {
        self->watch_timer_armed = false;
        if (!ec && !self->closed)
            self->watch_idle();
    });
}

// Arms the read of each connection idle for idle_watch_delay. Those without one are the most
// recently parked but for a few (one parked with its read armed after a quiet period may sit
// behind them), so the list is walked from its newest end until all of them were seen.
void pool_impl::watch_idle() {
    const auto cutoff = clock::now() - idle_watch_delay;
    std::size_t left = unwatched;
    std::size_t young = 0;
    clock::time_point oldest_young{};
    for (auto it = idle.rbegin(); it != idle.rend() && left > 0; ++it) {
        connection_ptr& conn = *it;
        if (conn->read_armed)
            continue;
        --left;
        if (conn->idle_since > cutoff) {
            ++young;
            oldest_young = conn->idle_since; // older at each step: the list is newest last
            continue;
        }
        arm_idle_read(conn);
    }
    unwatched = young;
    if (young > 0)
        arm_watch_timer(oldest_young + idle_watch_delay);
}

void pool_impl::close_all() {
    if (closed)
        return;
    closed = true;
    idle_timer.cancel();
    watch_timer.cancel();
    ++resolve_gen; // a resolution under way is forgotten
    resolve_timer.cancel();
    resolver.cancel();
    for (auto& conn : idle) {
        conn->state = connection::phase::closing;
        discard(std::move(conn));
    }
    idle.clear();
    unwatched = 0;
    for (auto& x : resolving) {
        discard(std::move(x->conn));
        complete_later(std::move(x), "connect");
    }
    resolving.clear();
    for (auto& x : waiters)
        complete_later(std::move(x), "");
    waiters.clear();
    // What is left belongs to running exchanges, to answers in their quiet period and to
    // connections being lent: cutting the socket completes their operation with
    // operation_aborted, and its handler (fail(), on_idle_read) releases the connection.
    for (connection* c : live) {
        error_code ignored;
        c->tcp().socket().cancel(ignored);
        c->tcp().socket().close(ignored);
    }
}

} // namespace sluice::detail
