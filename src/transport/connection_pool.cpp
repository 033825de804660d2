#include <sluice/transport/connection_pool.hpp>

#include "detail/complete.hpp"
#include "transport/response_parser.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <deque>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <vector>

namespace sluice {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

void pool_options::validate() const {
    if (max_connections == 0)
        throw std::invalid_argument("pool.max_connections: must be at least 1");
    if (connect_timeout.count() <= 0)
        throw std::invalid_argument("pool.connect_timeout: must be positive");
    if (handshake_timeout.count() <= 0)
        throw std::invalid_argument("pool.handshake_timeout: must be positive");
    if (request_timeout.count() <= 0)
        throw std::invalid_argument("pool.request_timeout: must be positive");
    if (idle_timeout.count() <= 0)
        throw std::invalid_argument("pool.idle_timeout: must be positive");
    if (max_body_size == 0)
        throw std::invalid_argument("pool.max_body_size: must be at least 1");
}

namespace {

// One keep-alive connection: a TLS stream or a plain one, its read buffer, and whether it
// has already served an exchange (which makes a failure before the first response byte a
// sign that the server closed it while idle, not that the request is bad).
struct connection {
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
    std::optional<beast::tcp_stream> plain;
    beast::flat_buffer buffer;
    std::optional<detail::response_parser> parser;
    bool reused = false;
    clock::time_point idle_since;

    beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

    void close() {
        error_code ignored;
        // No TLS close_notify: the server learns of the close from the TCP FIN, and waiting
        // for its answer would hold a slot for nothing.
        tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
        tcp().socket().close(ignored);
    }
};

using connection_ptr = std::unique_ptr<connection>;

// One request/response exchange, owning the connection while it runs on it.
struct exchange {
    // Constructed with its handler: Asio 1.26's any_completion_handler move assignment wraps
    // the handler in itself without end, so it is never assigned.
    exchange(std::string_view b, asio::any_completion_handler<void(http_response)> h)
        : body(b)
        , handler(std::move(h)) {}

    std::string_view body;
    asio::any_completion_handler<void(http_response)> handler;
    http_response resp;
    connection_ptr conn;
    bool replayed = false;
    std::array<char, 48> length_line{};
    std::size_t length_line_size = 0;
};

using exchange_ptr = std::unique_ptr<exchange>;

bool is_ip_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

} // namespace

struct connection_pool::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e,
         endpoint endp,
         request_headers h,
         pool_options o,
         asio::ssl::context* t)
        : ex(std::move(e))
        , ep(std::move(endp))
        , opts(o)
        , tls(t)
        , resolver(ex)
        , idle_timer(ex)
        , host_is_ip(is_ip_literal(ep.host)) {
        if (ep.tls && !tls)
            throw std::invalid_argument("connection_pool: an https endpoint needs a TLS context");
        head = "POST " + h.target + " HTTP/1.1\r\nHost: " + ep.host_header() + "\r\n";
        if (!h.authorization.empty())
            head += "Authorization: " + h.authorization + "\r\n";
        if (!h.organization.empty())
            head += "OpenAI-Organization: " + h.organization + "\r\n";
        if (!h.project.empty())
            head += "OpenAI-Project: " + h.project + "\r\n";
        head += "User-Agent: " + h.user_agent + "\r\n";
        head += "Content-Type: application/json\r\nAccept: application/json\r\n";
    }

    // --- lending connections ----------------------------------------------------------------

    void submit(exchange_ptr x) {
        if (closed) {
            x->resp.ec = asio::error::operation_aborted;
            complete_later(std::move(x));
            return;
        }
        if (!idle.empty()) {
            x->conn = std::move(idle.back());
            idle.pop_back();
            start_write(std::move(x));
            return;
        }
        if (open < opts.max_connections) {
            open_connection(std::move(x));
            return;
        }
        waiters.push_back(std::move(x));
    }

    // A connection came free (or a slot did): give it to the longest waiter.
    void release(connection_ptr conn, bool healthy) {
        if (healthy && !closed) {
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
            return;
        }
        conn->close();
        --open;
        if (!waiters.empty() && !closed && open < opts.max_connections) {
            exchange_ptr next = std::move(waiters.front());
            waiters.pop_front();
            open_connection(std::move(next));
        }
    }

    void arm_idle_timer() {
        if (idle_timer_armed)
            return;
        idle_timer_armed = true;
        idle_timer.expires_after(opts.idle_timeout);
        idle_timer.async_wait([self = shared_from_this()](error_code ec) {
            self->idle_timer_armed = false;
            if (ec || self->closed)
                return;
            self->sweep_idle();
        });
    }

    // Idle connections are kept most-recently-used last, so the stale ones are at the front.
    void sweep_idle() {
        const auto cutoff = clock::now() - opts.idle_timeout;
        std::size_t stale = 0;
        while (stale < idle.size() && idle[stale]->idle_since <= cutoff)
            ++stale;
        for (std::size_t i = 0; i < stale; ++i) {
            idle[i]->close();
            --open;
        }
        idle.erase(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(stale));
        if (!idle.empty())
            arm_idle_timer();
    }

    // --- connecting -------------------------------------------------------------------------

    void open_connection(exchange_ptr x) {
        ++open;
        ++stats.connects;
        auto conn = std::make_unique<connection>();
        if (ep.tls)
            conn->tls.emplace(ex, *tls);
        else
            conn->plain.emplace(ex);
        x->conn = std::move(conn);
        if (resolved) {
            do_connect(std::move(x));
            return;
        }
        resolver.async_resolve(ep.host,
                               std::to_string(ep.port),
                               [self = shared_from_this(), x = std::move(x)](
                                   error_code ec, tcp::resolver::results_type r) mutable {
                                   if (ec)
                                       return self->fail(std::move(x), ec, "resolve");
                                   self->resolved = std::move(r);
                                   self->do_connect(std::move(x));
                               });
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
        x->conn->tcp().socket().set_option(tcp::no_delay(true), ec);
        if (!x->conn->tls)
            return start_write(std::move(x));

        SSL* ssl = x->conn->tls->native_handle();
        // SNI carries host names only (RFC 6066); an IP literal is checked against the
        // certificate's IP addresses instead of its DNS names.
        if (host_is_ip) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ep.host.c_str());
        } else {
            SSL_set_tlsext_host_name(ssl, ep.host.c_str());
            SSL_set1_host(ssl, ep.host.c_str());
        }
        x->conn->tcp().expires_after(opts.handshake_timeout);
        auto& stream = *x->conn->tls;
        stream.async_handshake(
            asio::ssl::stream_base::client,
            [self = shared_from_this(), x = std::move(x)](error_code ec) mutable {
                if (ec)
                    return self->fail(std::move(x), ec, "handshake");
                self->start_write(std::move(x));
            });
    }

    // --- one exchange -----------------------------------------------------------------------

    template <class Stream, class Handler>
    void write_request(Stream& s, const exchange& x, Handler&& h) {
        const std::array<asio::const_buffer, 3> buffers{
            asio::buffer(head),
            asio::buffer(x.length_line.data(), x.length_line_size),
            asio::buffer(x.body.data(), x.body.size())};
        asio::async_write(s, buffers, std::forward<Handler>(h));
    }

    void start_write(exchange_ptr x) {
        busy.insert(x->conn.get());
        const int n = std::snprintf(x->length_line.data(),
                                    x->length_line.size(),
                                    "Content-Length: %zu\r\n\r\n",
                                    x->body.size());
        x->length_line_size = static_cast<std::size_t>(n);
        const exchange& xr = *x; // stays put while the handler owns it
        connection& c = *x->conn;
        c.tcp().expires_after(opts.request_timeout);
        c.parser.emplace(x->resp);
        c.parser->body_limit(opts.max_body_size);
        auto on_write = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                      std::size_t) mutable {
            self->on_write(std::move(x), ec);
        };
        if (c.tls)
            write_request(*c.tls, xr, std::move(on_write));
        else
            write_request(*c.plain, xr, std::move(on_write));
    }

    void on_write(exchange_ptr x, error_code ec) {
        if (ec)
            return fail_or_replay(std::move(x), ec, "write");
        x->resp.sent = clock::now();
        connection& c = *x->conn;
        auto on_header = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                       std::size_t) mutable {
            self->on_header(std::move(x), ec);
        };
        if (c.tls)
            http::async_read_header(*c.tls, c.buffer, *c.parser, std::move(on_header));
        else
            http::async_read_header(*c.plain, c.buffer, *c.parser, std::move(on_header));
    }

    void on_header(exchange_ptr x, error_code ec) {
        if (ec)
            return fail_or_replay(std::move(x), ec, "read");
        x->resp.first_byte = clock::now();
        connection& c = *x->conn;
        auto on_body = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                     std::size_t) mutable {
            self->on_body(std::move(x), ec);
        };
        if (c.tls)
            http::async_read(*c.tls, c.buffer, *c.parser, std::move(on_body));
        else
            http::async_read(*c.plain, c.buffer, *c.parser, std::move(on_body));
    }

    void on_body(exchange_ptr x, error_code ec) {
        if (ec)
            return fail(std::move(x), ec, "read");
        connection& c = *x->conn;
        const bool keep = c.parser->keep_alive();
        c.parser.reset();
        busy.erase(x->conn.get());
        release(std::move(x->conn), keep);
        complete(std::move(x));
    }

    // A reused connection that fails before any response byte was most likely closed by the
    // server while idle (the keep-alive race): the request never reached the application, so
    // it is replayed once on a fresh connection.
    void fail_or_replay(exchange_ptr x, error_code ec, const char* step) {
        connection& c = *x->conn;
        const bool nothing_received = !c.parser || !c.parser->got_some();
        if (c.reused && nothing_received && !x->replayed && !closed &&
            ec != asio::error::operation_aborted && ec != beast::error::timeout) {
            x->replayed = true;
            ++stats.replayed;
            busy.erase(x->conn.get());
            x->conn->close();
            x->conn.reset();
            --open;
            open_connection(std::move(x));
            return;
        }
        fail(std::move(x), ec, step);
    }

    void fail(exchange_ptr x, error_code ec, const char* step) {
        if (x->conn) {
            busy.erase(x->conn.get());
            release(std::move(x->conn), false);
        }
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

    void complete_later(exchange_ptr x) {
        asio::post(ex, [self = shared_from_this(), x = std::move(x)]() mutable {
            self->complete(std::move(x));
        });
    }

    void close_all() {
        closed = true;
        idle_timer.cancel();
        resolver.cancel();
        for (auto& c : idle) {
            c->close();
            --open;
        }
        idle.clear();
        for (connection* c : busy) {
            error_code ignored;
            c->tcp().socket().cancel(ignored);
            c->tcp().socket().close(ignored);
        }
        auto pending = std::move(waiters);
        waiters.clear();
        for (auto& x : pending) {
            x->resp.ec = asio::error::operation_aborted;
            complete_later(std::move(x));
        }
    }

    asio::any_io_executor ex;
    endpoint ep;
    pool_options opts;
    asio::ssl::context* tls;
    tcp::resolver resolver;
    asio::steady_timer idle_timer;
    bool host_is_ip;
    std::string head;
    std::optional<tcp::resolver::results_type> resolved;
    std::vector<connection_ptr> idle;     // most recently used last
    std::deque<exchange_ptr> waiters;     // FIFO
    std::unordered_set<connection*> busy; // running an exchange
    std::size_t open = 0;                 // connecting, busy or idle
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
    if (impl_->closed) {
        x->resp.ec = asio::error::operation_aborted;
        impl_->complete_later(std::move(x));
        return;
    }
    impl_->submit(std::move(x));
}

void connection_pool::close() {
    impl_->close_all();
}

pool_stats connection_pool::stats() const noexcept {
    pool_stats s = impl_->stats;
    s.open = impl_->open;
    s.idle = impl_->idle.size();
    s.waiting = impl_->waiters.size();
    return s;
}

const pool_options& connection_pool::options() const noexcept {
    return impl_->opts;
}

} // namespace sluice
