#include "transport/detail/pool_impl.hpp"
#include "transport/tls_peer.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <string>

namespace sluice::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// The answer to one CONNECT: its head is read into it; nothing may follow a 2xx head.
struct tunnel_reply {
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
};

// "the proxy answered HTTP 407 Proxy Authentication Required", static text for
// http_response::failed_reason (built once for every status).
const char* proxy_status_text(unsigned status) {
    static const std::array<std::string, 600> texts = [] {
        std::array<std::string, 600> t;
        for (unsigned s = 100; s < t.size(); ++s) {
            t[s] = "the proxy answered HTTP " + std::to_string(s);
            const auto reason = http::obsolete_reason(static_cast<http::status>(s));
            if (!reason.empty() && reason.front() != '<') // "<unknown-status>"
                t[s] += " " + std::string(reason);
        }
        return t;
    }();
    return status >= 100 && status < texts.size() ? texts[status].c_str()
                                                  : "the proxy answered with no valid status";
}

} // namespace

void pool_impl::open_connection(exchange_ptr x) {
    x->conn = make_connection();
    // The request timeout covers connecting and the handshake too (each within its own
    // timeout as well): a stalled handshake must not add its whole timeout to the request's.
    x->deadline = std::min(clock::now() + opts.request_timeout, x->not_after);
    if (resolved)
        return do_connect(std::move(x));
    // One resolution per pool: exchanges that need it meanwhile wait for the same one.
    resolving.push_back(std::move(x));
    if (resolving.size() == 1)
        do_resolve();
}

// A resolver cannot abort a running getaddrinfo, so connect_timeout (which includes the
// resolution) is kept by a timer, and a late answer is recognised by its generation.
void pool_impl::do_resolve() {
    const std::uint64_t gen = ++resolve_gen;
    resolve_timer.expires_after(opts.connect_timeout);
    resolve_timer.async_wait([self = shared_from_this(), gen](error_code ec) {
        if (!ec)
            self->on_resolve(gen, beast::error::timeout, {});
    });
    // Through a proxy, every connection goes to the proxy; the server's name is only said in
    // the CONNECT (the proxy resolves it).
    resolver.async_resolve(
        proxy.empty() ? ep.host : proxy.host,
        std::to_string(proxy.empty() ? ep.port : proxy.port),
        [self = shared_from_this(), gen](error_code ec, tcp::resolver::results_type r) {
            self->on_resolve(gen, ec, std::move(r));
        });
}

void pool_impl::on_resolve(std::uint64_t gen, error_code ec, tcp::resolver::results_type r) {
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
            fail(std::move(x), ec, proxy.empty() ? "connect" : "connect to the proxy");
        else
            do_connect(std::move(x));
    }
}

// What is left of the request timeout, but at most `step_timeout`; zero when it is over.
pool_impl::clock::duration pool_impl::step_budget(const exchange& x,
                                                  std::chrono::milliseconds step_timeout) const {
    const auto left = x.deadline - clock::now();
    return std::max(clock::duration::zero(), std::min<clock::duration>(left, step_timeout));
}

void pool_impl::do_connect(exchange_ptr x) {
    const auto budget = step_budget(*x, opts.connect_timeout);
    if (budget == clock::duration::zero())
        return fail(std::move(x),
                    beast::error::timeout,
                    proxy.empty() ? "connect" : "connect to the proxy");
    beast::tcp_stream& s = x->conn->tcp();
    s.expires_after(budget);
    s.async_connect(
        *resolved,
        [self = shared_from_this(), x = std::move(x)](error_code ec, const tcp::endpoint&) mutable {
            self->on_connect(std::move(x), ec);
        });
}

void pool_impl::on_connect(exchange_ptr x, error_code ec) {
    if (ec == asio::error::operation_aborted && !closed && resolved && !resolved->empty()) {
        // Asio's range connect reports a socket it could not open (EMFILE: the open-file limit)
        // as cancelled. Nothing cancelled it: open one to name the real cause, which is then
        // retried as a connection failure instead of ending the request as "cancelled".
        error_code why;
        x->conn->tcp().socket().open(resolved->begin()->endpoint().protocol(), why);
        if (why)
            ec = why;
        else
            x->conn->tcp().socket().close(why);
    }
    if (ec) {
        resolved.reset(); // the address may have changed: resolve again next time
        return fail(std::move(x), ec, proxy.empty() ? "connect" : "connect to the proxy");
    }
    if (closed)
        return fail(std::move(x), asio::error::operation_aborted, "connect");
    error_code ignored; // without TCP_NODELAY the exchange still works, only slower
    x->conn->tcp().socket().set_option(tcp::no_delay(true), ignored);
    if (!proxy.empty())
        return do_tunnel(std::move(x));
    start_session(std::move(x));
}

// Asks the proxy for a tunnel to the server, within tunnel_timeout (and what is left of the
// request's): `CONNECT host:port`, then the answer's head.
void pool_impl::do_tunnel(exchange_ptr x) {
    const auto budget = step_budget(*x, opts.tunnel_timeout);
    if (budget == clock::duration::zero())
        return fail(std::move(x), beast::error::timeout, "proxy");
    beast::tcp_stream& s = x->conn->tcp();
    s.expires_after(budget);
    asio::async_write(
        s,
        asio::buffer(connect_request),
        [self = shared_from_this(), x = std::move(x)](error_code ec, std::size_t) mutable {
            if (ec)
                return self->fail(std::move(x), ec, "proxy");
            auto reply = std::make_shared<tunnel_reply>();
            // A 2xx to CONNECT has no body (RFC 9110 9.3.6), whatever its headers say; the
            // body of a refusal is never read.
            reply->parser.skip(true);
            reply->parser.header_limit(16 * 1024);
            beast::tcp_stream& stream = x->conn->tcp();
            http::async_read_header(
                stream,
                reply->buffer,
                reply->parser,
                [self, x = std::move(x), reply](error_code ec, std::size_t) mutable {
                    const unsigned status = ec ? 0 : reply->parser.get().result_int();
                    self->on_tunnel(std::move(x), ec, status, reply->buffer.size() > 0);
                });
        });
}

// A 2xx opens the tunnel; a 4xx refuses every connection alike (credentials, a server not
// allowed), a 5xx is this attempt's failure (the proxy could not reach the server).
void pool_impl::on_tunnel(exchange_ptr x, error_code ec, unsigned status, bool extra_bytes) {
    if (ec)
        return fail(std::move(x), ec, "proxy");
    if (closed)
        return fail(std::move(x), asio::error::operation_aborted, "proxy");
    if (status < 200 || status >= 300) {
        const char* reason = proxy_status_text(status);
        if (status >= 400 && status < 500)
            return reject_first_contact(std::move(x), errc::proxy_refused, "proxy", reason);
        x->resp.failed_reason = reason;
        return fail(std::move(x), errc::proxy_error, "proxy");
    }
    if (extra_bytes) {
        // The server cannot have spoken before our first byte: the proxy sent more than its
        // answer, and those bytes would be read as the server's.
        x->resp.failed_reason = "the proxy sent bytes after its answer to CONNECT";
        return fail(std::move(x), errc::proxy_error, "proxy");
    }
    start_session(std::move(x));
}

// On a connection to the server (direct, or through a tunnel): the TLS handshake, or the
// request itself over plain HTTP.
void pool_impl::start_session(exchange_ptr x) {
    error_code ec;
    x->conn->busy_class = live.size() <= opts.tls_buffered_connections;
    if (!x->conn->tls) {
        connected(*x->conn);
        return start_write(std::move(x));
    }

    auto& stream = *x->conn->tls;
    stream.attach(ec);
    if (ec)
        return fail(std::move(x), ec, "handshake");
    set_peer_name(stream.native_handle(), ep.host, host_is_ip, ec);
    if (ec)
        return fail(std::move(x), ec, "handshake");
    const auto budget = step_budget(*x, opts.handshake_timeout);
    if (budget == clock::duration::zero())
        return fail(std::move(x), beast::error::timeout, "handshake");
    stream.expires_at(clock::now() + budget);
    stream.async_handshake([self = shared_from_this(), x = std::move(x)](error_code ec) mutable {
        self->on_handshake(std::move(x), ec);
    });
}

void pool_impl::on_handshake(exchange_ptr x, error_code ec) {
    if (ec) {
        // A certificate that does not verify fails every connection alike: said as such,
        // with OpenSSL's reason, so that the engine stops instead of retrying.
        SSL* ssl = x->conn->tls->native_handle();
        const long verify = ::SSL_get_verify_result(ssl);
        if (ec.category() == asio::error::get_ssl_category() &&
            (::SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 && verify != X509_V_OK) {
            return reject_certificate(std::move(x), ::X509_verify_cert_error_string(verify));
        }
        return fail(std::move(x), ec, "handshake");
    }
    if (closed)
        return fail(std::move(x), asio::error::operation_aborted, "handshake");
    if (x->conn->busy_class)
        ::SSL_clear_mode(x->conn->tls->native_handle(), SSL_MODE_RELEASE_BUFFERS);
    first_contact = false; // the server is the one it says: the others may connect now
    connected(*x->conn);   // and another connection may start in its place
    start_write(std::move(x));
}

// On the first contact, the exchanges held back for it would meet the same certificate: they
// fail alike instead of each opening a connection. They are taken out of the queue first, so
// that the slot `x` frees goes to none of them.
void pool_impl::reject_certificate(exchange_ptr x, const char* reason) {
    reject_first_contact(std::move(x), errc::certificate_rejected, "handshake", reason);
}

// The same for any refusal that every connection would meet (a proxy's 4xx to CONNECT).
void pool_impl::reject_first_contact(exchange_ptr x,
                                     errc why,
                                     const char* step,
                                     const char* reason) {
    std::deque<exchange_ptr> held;
    if (first_contact)
        held.swap(waiters);
    x->resp.failed_reason = reason;
    fail(std::move(x), why, step);
    for (auto& h : held) {
        h->resp.failed_reason = reason;
        fail(std::move(h), why, step);
    }
}

} // namespace sluice::detail
