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
        live.reserve(std::min<std::size_t>(opts.max_connections, 1024));
    }

    // --- lending connections ----------------------------------------------------------------

    void submit(exchange_ptr x) {
        if (!idle.empty()) {
            x->conn = std::move(idle.back()); // the most recently used: the least likely stale
            idle.pop_back();
            start_write(std::move(x));
        } else if (live.size() < opts.max_connections) {
            open_connection(std::move(x));
        } else {
            waiters.push_back(std::move(x));
        }
    }

    // An exchange is done with `conn`: a healthy connection goes to the longest waiter or to
    // the idle list; a broken one is closed and its slot goes to the longest waiter.
    void release(connection_ptr conn, bool healthy) {
        if (!healthy || closed) {
            discard(std::move(conn));
            if (!waiters.empty() && !closed && live.size() < opts.max_connections) {
                exchange_ptr next = std::move(waiters.front());
                waiters.pop_front();
                open_connection(std::move(next));
            }
            return;
        }
        conn->reused = true;
        if (!waiters.empty()) {
            exchange_ptr next = std::move(waiters.front());
            waiters.pop_front();
            next->conn = std::move(conn);
            start_write(std::move(next));
            return;
        }
        conn->idle_since = clock::now();
        idle.push_back(std::move(conn));
        arm_idle_timer();
    }

    // Every open connection (connecting, busy or idle) is listed in `live`, so that close()
    // reaches the ones exchanges own; swap-and-pop keeps that free of allocation.
    connection_ptr make_connection() {
        auto conn = std::make_unique<connection>(ex, tls);
        conn->slot = live.size();
        live.push_back(conn.get());
        ++stats.connects;
        return conn;
    }

    void discard(connection_ptr conn) {
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
        while (stale < idle.size() && idle[stale]->idle_since <= cutoff)
            discard(std::move(idle[stale++]));
        idle.erase(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(stale));
        arm_idle_timer();
    }

    // --- connecting -------------------------------------------------------------------------

    void open_connection(exchange_ptr x) {
        x->conn = make_connection();
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

    void do_connect(exchange_ptr x) {
        beast::tcp_stream& s = x->conn->tcp();
        s.expires_after(opts.connect_timeout);
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
        x->conn->tcp().expires_after(opts.handshake_timeout);
        auto& stream = *x->conn->tls;
        stream.async_handshake(
            asio::ssl::stream_base::client,
            [self = shared_from_this(), x = std::move(x)](error_code ec) mutable {
                self->on_handshake(std::move(x), ec);
            });
    }

    void on_handshake(exchange_ptr x, error_code ec) {
        if (ec)
            return fail(std::move(x), ec, "handshake");
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
        // One deadline for writing the request and reading the whole response.
        c.tcp().expires_after(opts.request_timeout);
        c.parser.emplace(x->resp);
        c.parser->body_limit(opts.max_body_size);
        auto on_written = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                        std::size_t) mutable {
            self->on_write(std::move(x), ec);
        };
        c.with_stream([&](auto& s) { asio::async_write(s, buffers, std::move(on_written)); });
    }

    void on_write(exchange_ptr x, error_code ec) {
        if (ec)
            return fail_or_replay(std::move(x), ec, "write");
        x->resp.sent = clock::now();
        connection& c = *x->conn;
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
        x->resp.first_byte = clock::now();
        connection& c = *x->conn;
        auto on_rest = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                     std::size_t) mutable {
            self->on_body(std::move(x), ec);
        };
        c.with_stream(
            [&](auto& s) { http::async_read(s, c.buffer, *c.parser, std::move(on_rest)); });
    }

    void on_body(exchange_ptr x, error_code ec) {
        if (ec)
            return fail(std::move(x), ec, "read");
        connection& c = *x->conn;
        // keep_alive() is false for `Connection: close`, HTTP/1.0 without keep-alive, and a
        // body that ended with the stream. Bytes past the response mean the stream is out of
        // step with our requests (we never pipeline), so that connection is not reused either.
        const bool keep = c.parser->keep_alive() && c.buffer.size() == 0;
        c.parser.reset();
        release(std::move(x->conn), keep);
        complete(std::move(x));
    }

    // A reused connection that fails before any response byte was most likely closed by the
    // server while idle (the keep-alive race): the request never reached the application, so
    // it is replayed once on a fresh connection. A timeout is not that race, and a fresh
    // connection failing so is an answer of the server: both are reported.
    void fail_or_replay(exchange_ptr x, error_code ec, const char* step) {
        connection& c = *x->conn;
        const bool nothing_received = !c.parser->got_some() && c.buffer.size() == 0;
        if (c.reused && nothing_received && !x->replayed && !closed &&
            ec != asio::error::operation_aborted && ec != beast::error::timeout) {
            x->replayed = true;
            ++stats.replayed;
            c.parser.reset();
            discard(std::move(x->conn));
            x->resp = http_response{};
            open_connection(std::move(x));
            return;
        }
        fail(std::move(x), ec, step);
    }

    void fail(exchange_ptr x, error_code ec, const char* step) {
        if (x->conn) {
            x->conn->parser.reset();
            release(std::move(x->conn), false);
        }
        if (closed)
            ec = asio::error::operation_aborted; // whatever the cut socket reported
        // A Content-Length over the limit is refused while reading the header, a chunked
        // body while reading it: either way it is the same failure for the caller.
        x->resp.ec = ec == http::error::body_limit ? make_error_code(errc::body_too_large) : ec;
        x->resp.failed_step = step;
        complete(std::move(x));
    }

    void complete(exchange_ptr x) {
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
        for (auto& conn : idle)
            discard(std::move(conn));
        idle.clear();
        for (auto& x : resolving) {
            discard(std::move(x->conn));
            complete_later(std::move(x), "connect");
        }
        resolving.clear();
        for (auto& x : waiters)
            complete_later(std::move(x), "");
        waiters.clear();
        // What is left belongs to running exchanges: cutting the socket completes their
        // operation with operation_aborted, and fail() releases the connection.
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
