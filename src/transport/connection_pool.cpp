#include <sluice/transport/connection_pool.hpp>

#include "detail/complete.hpp"
#include "transport/connection.hpp"
#include "transport/request_head.hpp"
#include "transport/tls_peer.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/read.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <stdexcept>
#include <vector>

namespace sluice {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;
using detail::connection;
using detail::connection_ptr;
using detail::exchange;
using detail::exchange_ptr;

// More 1xx responses before one answer than any server sends for a reason.
constexpr unsigned max_informational = 8;

struct connection_pool::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e,
         endpoint endp,
         request_headers h,
         pool_options o,
         asio::ssl::context* t)
        : ex(std::move(e))
        , ep(std::move(endp))
        , opts(o)
        , tls(ep.tls ? t : nullptr)
        , resolver(ex)
        , resolve_timer(ex)
        , idle_timer(ex)
        , host_is_ip(ep.host_is_ip()) {
        if (ep.tls && !tls)
            throw std::invalid_argument("connection_pool: an https endpoint needs a TLS context");
        head = detail::request_head(ep, h);
        bodies.limit = opts.max_body_bytes_in_flight;
        live.reserve(std::min<std::size_t>(opts.max_connections, 1024));
    }

    // --- lending connections ----------------------------------------------------------------

    void submit(exchange_ptr x) {
        if (!idle.empty()) {
            connection_ptr conn = std::move(idle.back()); // the most recently used: the least
            idle.pop_back();                              // likely to be stale
            lend(std::move(conn), std::move(x));
        } else if (live.size() < opts.max_connections) {
            open_connection(std::move(x));
        } else {
            waiters.push_back(std::move(x));
        }
    }

    // An idle connection with its read armed: the read is cancelled, and its handler
    // (on_idle_read) starts the exchange once it knows that nothing arrived meanwhile. One
    // lent again before its read was armed is checked on the spot.
    void lend(connection_ptr conn, exchange_ptr x) {
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
    void start_on(connection_ptr conn, exchange_ptr x) {
        conn->state = connection::phase::busy;
        x->conn = std::move(conn);
        x->deadline = clock::now() + opts.request_timeout;
        start_write(std::move(x));
    }

    // A connection whose exchange is over and whose answer is delivered (or held elsewhere)
    // goes to the longest waiter, or is parked idle with a read armed.
    void make_idle(connection_ptr conn, bool read_armed) {
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
        if (!read_armed) {
            // Armed once the handlers already queued have run: the answer's own handler
            // usually submits the next request at once, and this connection then goes to it
            // straight away (checked by a peek), without a read armed and cancelled for
            // nothing.
            asio::post(ex, [self = shared_from_this(), conn] {
                if (conn->open && conn->state == connection::phase::idle && !conn->read_armed)
                    self->arm_idle_read(conn);
            });
        }
        conn->idle_since = clock::now();
        idle.push_back(std::move(conn));
        arm_idle_timer();
    }

    // Acknowledges what arrives at once instead of after the delayed-ACK timer (40 ms or more
    // on Linux). A server with Nagle's algorithm on holds a second small write until its first
    // is acknowledged, so without this the real answer that follows a stray response would
    // come only after the quiet period is over. Linux resets the mode by itself, so it is set
    // again before each wait. Best effort: elsewhere it is a no-op.
    void ack_at_once([[maybe_unused]] connection& conn) const {
        if (opts.reuse_quiet_period.count() == 0)
            return; // no window to arrive in: a syscall per wait saved
#ifdef TCP_QUICKACK
        const int on = 1;
        ::setsockopt(
            conn.tcp().socket().native_handle(), IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
#endif
    }

    // Between exchanges a read stays armed, so that a byte or an EOF from the server is seen
    // when it comes, not taken later for the answer to the next request.
    void arm_idle_read(const connection_ptr& conn) {
        conn->read_armed = true;
        conn->tcp().expires_never();
        ack_at_once(*conn);
        conn->with_stream([&](auto& s) {
            s.async_read_some(asio::buffer(conn->probe),
                              [self = shared_from_this(), conn](error_code ec, std::size_t n) {
                                  self->on_idle_read(conn, ec, n);
                              });
        });
    }

    void on_idle_read(const connection_ptr& conn, error_code ec, std::size_t n) {
        conn->read_armed = false;
        if (!conn->open)
            return; // discarded meanwhile (idle sweep, close)
        using phase = connection::phase;
        switch (conn->state) {
        case phase::lending: {
            exchange_ptr x = std::move(conn->next);
            if (ec == asio::error::operation_aborted && n == 0 && !closed &&
                !conn->has_unread_bytes())
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

    // The quiet period of the answer held on `conn` passed without a byte: it is delivered,
    // and the connection (its read still armed) becomes idle.
    void on_quiet_over(const connection_ptr& conn, error_code ec) {
        if (ec || !conn->open || conn->state != connection::phase::quiet)
            return;
        exchange_ptr x = std::move(conn->held);
        make_idle(conn, true);
        complete(std::move(x));
    }

    // A slot was freed by a closed connection: the longest waiter may open a new one.
    void on_slot_freed() {
        if (!waiters.empty() && !closed && live.size() < opts.max_connections) {
            exchange_ptr next = std::move(waiters.front());
            waiters.pop_front();
            open_connection(std::move(next));
        }
    }

    // An exchange is done with `conn`, which cannot be reused (a failure, `Connection:
    // close`, bytes after the answer): it is closed and its slot goes to the longest waiter.
    void release_broken(connection_ptr conn) {
        discard(std::move(conn));
        on_slot_freed();
    }

    // Every open connection (connecting, busy or idle) is listed in `live`, so that close()
    // reaches the ones exchanges own; swap-and-pop keeps that free of allocation.
    connection_ptr make_connection() {
        auto conn = std::make_shared<connection>(ex, tls);
        conn->slot = live.size();
        live.push_back(conn.get());
        ++stats.connects;
        return conn;
    }

    void discard(connection_ptr conn) {
        if (!conn->open)
            return;
        conn->open = false;
        conn->close();
        live[conn->slot] = live.back();
        live[conn->slot]->slot = conn->slot;
        live.pop_back();
    }

    // One timer for the pool, due when the oldest idle connection (the front: idle
    // connections are kept most recently used last) reaches idle_timeout.
    void arm_idle_timer() {
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

    void sweep_idle() {
        const auto cutoff = clock::now() - opts.idle_timeout;
        std::size_t stale = 0;
        while (stale < idle.size() && idle[stale]->idle_since <= cutoff) {
            idle[stale]->state = connection::phase::closing;
            discard(std::move(idle[stale++]));
        }
        idle.erase(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(stale));
        arm_idle_timer();
    }

    // --- connecting -------------------------------------------------------------------------

    void open_connection(exchange_ptr x) {
        x->conn = make_connection();
        // The request timeout covers connecting and the handshake too (each within its own
        // timeout as well): a stalled handshake must not add its whole timeout to the request's.
        x->deadline = clock::now() + opts.request_timeout;
        if (resolved)
            return do_connect(std::move(x));
        // One resolution per pool: exchanges that need it meanwhile wait for the same one.
        resolving.push_back(std::move(x));
        if (resolving.size() == 1)
            do_resolve();
    }

    // A resolver cannot abort a running getaddrinfo, so connect_timeout (which includes the
    // resolution) is kept by a timer, and a late answer is recognised by its generation.
    void do_resolve() {
        const std::uint64_t gen = ++resolve_gen;
        resolve_timer.expires_after(opts.connect_timeout);
        resolve_timer.async_wait([self = shared_from_this(), gen](error_code ec) {
            if (!ec)
                self->on_resolve(gen, beast::error::timeout, {});
        });
        resolver.async_resolve(
            ep.host,
            std::to_string(ep.port),
            [self = shared_from_this(), gen](error_code ec, tcp::resolver::results_type r) {
                self->on_resolve(gen, ec, std::move(r));
            });
    }

    void on_resolve(std::uint64_t gen, error_code ec, tcp::resolver::results_type r) {
        if (gen != resolve_gen)
            return; // the other half of a resolution already answered
        ++resolve_gen;
        resolve_timer.cancel();
        if (!ec)
            resolved = std::move(r);
        auto batch = std::move(resolving);
        resolving.clear();
        for (auto& x : batch) {
            if (ec)
                fail(std::move(x), ec, "connect");
            else
                do_connect(std::move(x));
        }
    }

    // What is left of the request timeout, but at most `step_timeout`; zero when it is over.
    clock::duration step_budget(const exchange& x, std::chrono::milliseconds step_timeout) const {
        const auto left = x.deadline - clock::now();
        return std::max(clock::duration::zero(), std::min<clock::duration>(left, step_timeout));
    }

    void do_connect(exchange_ptr x) {
        const auto budget = step_budget(*x, opts.connect_timeout);
        if (budget == clock::duration::zero())
            return fail(std::move(x), beast::error::timeout, "connect");
        beast::tcp_stream& s = x->conn->tcp();
        s.expires_after(budget);
        s.async_connect(*resolved,
                        [self = shared_from_this(),
                         x = std::move(x)](error_code ec, const tcp::endpoint&) mutable {
                            self->on_connect(std::move(x), ec);
                        });
    }

    void on_connect(exchange_ptr x, error_code ec) {
        if (ec) {
            resolved.reset(); // the address may have changed: resolve again next time
            return fail(std::move(x), ec, "connect");
        }
        if (closed)
            return fail(std::move(x), asio::error::operation_aborted, "connect");
        error_code ignored; // without TCP_NODELAY the exchange still works, only slower
        x->conn->tcp().socket().set_option(tcp::no_delay(true), ignored);
        if (!x->conn->tls)
            return start_write(std::move(x));

        detail::set_peer_name(x->conn->tls->native_handle(), ep.host, host_is_ip, ec);
        if (ec)
            return fail(std::move(x), ec, "handshake");
        const auto budget = step_budget(*x, opts.handshake_timeout);
        if (budget == clock::duration::zero())
            return fail(std::move(x), beast::error::timeout, "handshake");
        x->conn->tcp().expires_after(budget);
        auto& stream = *x->conn->tls;
        stream.async_handshake(
            asio::ssl::stream_base::client,
            [self = shared_from_this(), x = std::move(x)](error_code ec) mutable {
                self->on_handshake(std::move(x), ec);
            });
    }

    void on_handshake(exchange_ptr x, error_code ec) {
        if (ec) {
            // A certificate that does not verify fails every connection alike: said as such,
            // with OpenSSL's reason, so that the engine stops instead of retrying.
            SSL* ssl = x->conn->tls->native_handle();
            const long verify = ::SSL_get_verify_result(ssl);
            if (ec.category() == asio::error::get_ssl_category() &&
                (::SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 && verify != X509_V_OK) {
                x->resp.failed_reason = ::X509_verify_cert_error_string(verify);
                return fail(std::move(x), errc::certificate_rejected, "handshake");
            }
            return fail(std::move(x), ec, "handshake");
        }
        if (closed)
            return fail(std::move(x), asio::error::operation_aborted, "handshake");
        start_write(std::move(x));
    }

    // --- one exchange -----------------------------------------------------------------------

    // The fixed head, the Content-Length line and the caller's body go out as one gather
    // write: no serializer, no copy of the body.
    void start_write(exchange_ptr x) {
        const int n = std::snprintf(x->length_line.data(),
                                    x->length_line.size(),
                                    "Content-Length: %zu\r\n\r\n",
                                    x->body.size());
        x->length_line_size = static_cast<std::size_t>(n);
        const std::array<asio::const_buffer, 3> buffers{
            asio::buffer(head),
            asio::buffer(x->length_line.data(), x->length_line_size),
            asio::buffer(x->body.data(), x->body.size())};
        connection& c = *x->conn;
        // One deadline for connecting, writing the request and reading the whole response.
        c.tcp().expires_at(x->deadline);
        new_parser(*x);
        auto on_written = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                        std::size_t) mutable {
            self->on_write(std::move(x), ec);
        };
        c.with_stream([&](auto& s) { asio::async_write(s, buffers, std::move(on_written)); });
    }

    void new_parser(exchange& x) {
        x.conn->parser.emplace(x.resp, bodies, x.body_charge, opts.max_body_size);
    }

    void on_write(exchange_ptr x, error_code ec) {
        if (ec)
            return fail_or_replay(std::move(x), ec, "write");
        x->resp.sent = clock::now();
        read_head(std::move(x));
    }

    void read_head(exchange_ptr x) {
        connection& c = *x->conn;
        ack_at_once(c);
        auto on_head = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                     std::size_t) mutable {
            self->on_header(std::move(x), ec);
        };
        c.with_stream(
            [&](auto& s) { http::async_read_header(s, c.buffer, *c.parser, std::move(on_head)); });
    }

    void on_header(exchange_ptr x, error_code ec) {
        if (ec)
            return fail_or_replay(std::move(x), ec, "read");
        if (x->resp.first_byte == clock::time_point{})
            x->resp.first_byte = clock::now();
        const unsigned status = x->resp.status;
        if (status >= 100 && status < 200)
            return on_informational(std::move(x));
        connection& c = *x->conn;
        auto on_rest = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                     std::size_t) mutable {
            self->on_body(std::move(x), ec);
        };
        c.with_stream(
            [&](auto& s) { http::async_read(s, c.buffer, *c.parser, std::move(on_rest)); });
    }

    // A 1xx response (100 Continue, 103 Early Hints) is not the answer (RFC 9110 section
    // 15.2): the final response follows on the same stream. 101 switches protocols, which no
    // request of ours asks for; and a server that sends 1xx without end is cut off.
    void on_informational(exchange_ptr x) {
        if (x->resp.status == 101)
            return fail(std::move(x),
                        http::error::bad_status,
                        "read (101 Switching Protocols, which no request asked for)");
        if (++x->informational > max_informational)
            return fail(std::move(x), http::error::bad_status, "read (endless 1xx responses)");
        forget_answer(*x);
        new_parser(*x);
        read_head(std::move(x));
    }

    // Drops what was read of a response but its timings: its headers must not be taken for
    // those of the answer that replaces it.
    static void forget_answer(exchange& x) {
        const auto sent = x.resp.sent;
        const auto first_byte = x.resp.first_byte;
        x.resp = http_response{};
        x.resp.sent = sent;
        x.resp.first_byte = first_byte;
    }

    void on_body(exchange_ptr x, error_code ec) {
        if (ec)
            return fail(std::move(x), ec, "read");
        connection_ptr conn = std::move(x->conn);
        // keep_alive() is false for `Connection: close`, HTTP/1.0 without keep-alive, and a
        // body that ended with the stream. Bytes past the response mean the stream is out of
        // step with our requests (we never pipeline): on a connection that carried an earlier
        // request, the answer just read may be a stray response and these bytes the real one.
        const bool extra =
            conn->buffer.size() > 0 || (conn->tls && ::SSL_pending(conn->tls->native_handle()) > 0);
        const bool keep = conn->parser->keep_alive() && !extra;
        conn->parser.reset();
        if (extra)
            ++stats.untrusted; // never reused, whoever the answer is credited to
        if (extra && conn->reused) {
            release_broken(std::move(conn));
            forget_answer(*x);
            return fail(std::move(x), errc::unexpected_bytes, "read (bytes after the answer)");
        }
        if (!keep) {
            release_broken(std::move(conn));
            return complete(std::move(x));
        }
        if (conn->reused && opts.reuse_quiet_period.count() > 0) {
            // Held until the connection has been silent for the quiet period (on_quiet_over),
            // or failed when bytes come first (on_idle_read).
            conn->state = connection::phase::quiet;
            conn->held = std::move(x);
            arm_idle_read(conn);
            conn->quiet_timer.expires_after(opts.reuse_quiet_period);
            conn->quiet_timer.async_wait([self = shared_from_this(), conn](error_code ec) {
                self->on_quiet_over(conn, ec);
            });
            return;
        }
        // The first answer on a connection is the answer to the only request written on it.
        conn->reused = true;
        make_idle(std::move(conn), false);
        complete(std::move(x));
    }

    // A reused connection that fails before any response byte was most likely closed by the
    // server while idle (the keep-alive race): the request never reached the application, so
    // it is replayed once on a fresh connection. A timeout is not that race, and a fresh
    // connection failing so is an answer of the server: both are reported.
    void fail_or_replay(exchange_ptr x, error_code ec, const char* step) {
        connection& c = *x->conn;
        const bool nothing_received =
            !c.parser->got_some() && c.buffer.size() == 0 && x->informational == 0;
        if (c.reused && nothing_received && !x->replayed && !closed &&
            ec != asio::error::operation_aborted && ec != beast::error::timeout) {
            x->replayed = true;
            ++stats.replayed;
            c.parser.reset();
            discard(std::move(x->conn));
            forget_answer(*x);
            open_connection(std::move(x));
            return;
        }
        fail(std::move(x), ec, step);
    }

    void fail(exchange_ptr x, error_code ec, const char* step) {
        if (x->conn && x->conn->parser && x->conn->parser->over_budget())
            x->body_over_budget = true;
        if (x->conn) {
            x->conn->parser.reset();
            release_broken(std::move(x->conn));
        }
        if (closed)
            ec = asio::error::operation_aborted; // whatever the cut socket reported
        // A Content-Length over the limit is refused while reading the header, a chunked
        // body while reading it: either way it is the same failure for the caller.
        if (ec == http::error::body_limit || ec == errc::body_too_large) {
            step = x->body_over_budget ? "read (responses in flight reached "
                                         "pool.max_body_bytes_in_flight)"
                                       : "read (body over pool.max_body_size)";
            ec = errc::body_too_large;
        }
        x->resp.ec = ec;
        x->resp.failed_step = step;
        complete(std::move(x));
    }

    void complete(exchange_ptr x) {
        bodies.give(x->body_charge);
        x->body_charge = 0;
        const auto& handler = x->handler;
        detail::dispatch_to_handler(ex, handler, [x = std::move(x)]() mutable {
            auto h = std::move(x->handler);
            std::move(h)(std::move(x->resp));
        });
    }

    // For completions started by a call of the user (async_exchange, close): never run the
    // handler inside that call.
    void complete_later(exchange_ptr x, const char* step) {
        x->resp.ec = asio::error::operation_aborted;
        x->resp.failed_step = step;
        asio::post(ex, [self = shared_from_this(), x = std::move(x)]() mutable {
            self->complete(std::move(x));
        });
    }

    void close_all() {
        if (closed)
            return;
        closed = true;
        idle_timer.cancel();
        ++resolve_gen; // a resolution under way is forgotten
        resolve_timer.cancel();
        resolver.cancel();
        for (auto& conn : idle) {
            conn->state = connection::phase::closing;
            discard(std::move(conn));
        }
        idle.clear();
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

    asio::any_io_executor ex;
    endpoint ep;
    pool_options opts;
    asio::ssl::context* tls;
    tcp::resolver resolver;
    asio::steady_timer resolve_timer;
    asio::steady_timer idle_timer;
    bool host_is_ip;
    std::string head; // request line and fixed headers, built once
    std::optional<tcp::resolver::results_type> resolved;
    std::uint64_t resolve_gen = 0;
    std::vector<exchange_ptr> resolving; // waiting for the resolution under way
    std::vector<connection_ptr> idle;    // most recently used last
    std::deque<exchange_ptr> waiters;    // waiting for a connection, FIFO
    std::vector<connection*> live;       // every open connection; connection::slot indexes it
    detail::body_budget bodies;          // body bytes of the responses being read
    bool idle_timer_armed = false;
    bool closed = false;
    pool_stats stats;
};

connection_pool::connection_pool(asio::any_io_executor ex,
                                 endpoint ep,
                                 request_headers headers,
                                 pool_options opts,
                                 asio::ssl::context* tls)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(ep), std::move(headers), opts, tls)) {}

connection_pool::~connection_pool() {
    if (impl_)
        impl_->close_all();
}

void connection_pool::async_exchange(std::string_view body,
                                     asio::any_completion_handler<void(http_response)> handler) {
    auto x = std::make_unique<exchange>(body, std::move(handler));
    if (impl_->closed)
        return impl_->complete_later(std::move(x), "");
    impl_->submit(std::move(x));
}

void connection_pool::close() {
    impl_->close_all();
}

pool_stats connection_pool::stats() const noexcept {
    pool_stats s = impl_->stats;
    s.open = impl_->live.size();
    s.idle = impl_->idle.size();
    s.waiting = impl_->waiters.size();
    return s;
}

const pool_options& connection_pool::options() const noexcept {
    return impl_->opts;
}

} // namespace sluice
