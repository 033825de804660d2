#pragma once

#include <sluice/error.hpp>
#include <sluice/http_response.hpp>
#include <sluice/transport/endpoint.hpp>
#include <sluice/transport/proxy.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

namespace detail {
struct pool_impl;
} // namespace detail

/// Connection pool settings, one pool per endpoint.
struct pool_options {
    /// Most connections open at once; requests beyond wait for a free one.
    std::size_t max_connections = 64;
    /// Most connections being opened at once (TCP connect, proxy tunnel and TLS handshake);
    /// requests beyond wait for one of them or for a free connection. Ten thousand connects
    /// at once overflow the server's accept queue: the dropped SYNs come back a second or more
    /// later, and some connects time out; handshakes cost the client CPU alike however many
    /// run together. 0: no bound but max_connections.
    std::size_t max_connecting = 128;
    /// TCP connect timeout (resolve included).
    std::chrono::milliseconds connect_timeout{10'000};
    /// TLS handshake timeout.
    std::chrono::milliseconds handshake_timeout{10'000};
    /// Through a proxy: how long the proxy may take to answer the CONNECT of a new connection
    /// (after the TCP connect to it, which `connect_timeout` bounds).
    std::chrono::milliseconds tunnel_timeout{10'000};
    /// Whole request timeout, from the moment the exchange has a connection: connecting and
    /// the TLS handshake of a new connection (each also within its own timeout above), writing
    /// the request and reading the full response (the SDKs' 600 s).
    std::chrono::milliseconds request_timeout{600'000};
    /// Longest pause between two pieces of an event-stream answer (`"stream": true`); a stream
    /// that stalls longer is cut and the attempt fails with a timeout. The whole stream still
    /// ends within `request_timeout`.
    std::chrono::milliseconds stream_idle_timeout{60'000};
    /// An idle connection unused this long is closed.
    std::chrono::milliseconds idle_timeout{60'000};
    /// Largest response body accepted; a larger one fails with errc::body_too_large. A chat
    /// completion is a few KiB to a few hundred KiB (logprobs included), so the default keeps
    /// a hostile endless body from costing more than this per connection.
    std::size_t max_body_size = 8 * 1024 * 1024;
    /// Most body bytes the pool holds for responses being read at once, whatever the servers
    /// send: a response that would take the total beyond it fails with errc::body_too_large.
    /// With the defaults (64 connections) RSS stays near 150 MiB even when every connection
    /// streams an endless body. 0: no pool-wide bound (each body still within max_body_size).
    std::size_t max_body_bytes_in_flight = 128 * 1024 * 1024;
    /// A response read on a connection that had served earlier requests is delivered once the
    /// connection has stayed silent this long after it. HTTP/1.1 cannot tell a late or
    /// unsolicited response from the answer to the request just written; if more bytes arrive
    /// in this window, the answer read there is not trusted (errc::unexpected_bytes, retried)
    /// and the connection is closed. The first answer on a new connection is always its own
    /// and is delivered at once. 0 trusts every answer at once (benchmarks against a server
    /// you trust); a real completion takes far longer than the default, so it costs little.
    std::chrono::milliseconds reuse_quiet_period{10};
    /// TLS connections, counted from the first open, that keep OpenSSL's record buffers (about
    /// 34 KiB each) between reads. The others free them whenever a read leaves nothing pending
    /// and before every wait for an answer, so that every read and write allocates 17 KiB
    /// afresh (8 allocations per request, and 40 or more per streamed answer) but a connection
    /// waiting for its answer holds none. Keeping them is the fast path; connections beyond
    /// this count release them, so that ten thousand mostly waiting connections stay small.
    /// (No connection holds a read buffer of sluice's own: every read goes into one buffer of
    /// the pool's and is parsed at once.)
    std::size_t tls_buffered_connections = 256;

    /// Throws std::invalid_argument naming the field when a value is out of range.
    void validate() const;
};

/// Fixed headers the pool sends with every request (built once per pool).
struct request_headers {
    /// Request target, e.g. "/v1/chat/completions".
    std::string target;
    /// Full Authorization value ("Bearer ..."); empty sends none. Never logged.
    std::string authorization;
    /// Sent as `api-key` (Azure OpenAI's authentication); empty sends none. Never logged.
    std::string api_key;
    /// OpenAI-Organization and OpenAI-Project; empty sends none.
    std::string organization;
    std::string project;
    /// User-Agent value.
    std::string user_agent = "sluice";
    /// More headers sent with every request after the ones above, in this order, as
    /// `{name, value}`: names are HTTP tokens, values hold no control character, and no name
    /// is one of the framing headers the pool writes itself (`is_framing_header`); otherwise
    /// the pool's constructor throws std::invalid_argument naming the header (never its
    /// value). A `User-Agent` here replaces `user_agent`. Values may be secrets: never logged.
    std::vector<std::pair<std::string, std::string>> extra;
};

/// A request other than the pool's own `POST target` with a JSON body: another method, target
/// and content type, a body gathered from up to three pieces written one after the other (a
/// multipart preamble, a file's bytes, its epilogue: nothing is copied). The pool's fixed
/// headers (Host, authentication, organization, project, User-Agent, extra) go with it as
/// with every request. Views: valid until the exchange completes.
struct request_spec {
    /// "GET", "POST", "DELETE".
    std::string_view method = "POST";
    /// The request target, e.g. "/v1/files?purpose=batch"; no control character.
    std::string_view target;
    /// Content-Type; empty sends none (a GET).
    std::string_view content_type = "application/json";
    /// The body, in pieces; empty pieces are skipped.
    std::array<std::string_view, 3> body{};
    /// Any 2xx body goes to the observer given with the exchange, whatever its type, without
    /// `max_body_size` (a file downloaded to disk); a non-2xx body is collected as usual.
    bool observe_any_body = false;
};

/// Counters of the pool, for stats.
struct pool_stats {
    std::size_t open = 0;       ///< connections open now
    std::size_t idle = 0;       ///< of which idle
    std::size_t waiting = 0;    ///< exchanges waiting for a connection
    std::uint64_t connects = 0; ///< connections opened in all
    std::uint64_t replayed = 0; ///< exchanges replayed on a fresh connection
    /// Connections closed because the server sent bytes no request asked for.
    std::uint64_t untrusted = 0;
};

/// A pool of keep-alive HTTP/1.1 connections (TLS with OpenSSL on the socket, or plain TCP for
/// http:// endpoints) to one endpoint. An exchange borrows an idle connection or opens one up
/// to `max_connections`, or waits for one. A connection the server closed is replaced
/// transparently: when a reused connection fails before any response byte arrived, the
/// exchange is replayed once on a fresh connection; other failures are reported.
///
/// Over TLS with verification on, the first connection is opened alone and the others wait
/// for its handshake: once the server's certificate has verified, they open in parallel; when
/// it is rejected, the waiting exchanges fail with the same `certificate_rejected` without a
/// connection each; after any other failure they open their own.
///
/// An answer is only ever read for the request written on that connection, and a connection
/// is only reused when nothing arrived on it beyond the answer: informational (1xx) responses
/// are skipped, a connection is checked for stray bytes when it is lent, one idle for more
/// than a few milliseconds keeps a read armed and is closed on any byte or EOF, and an answer
/// on a reused connection waits out `reuse_quiet_period` (see there) before it is delivered.
///
/// Thread safety: all calls and completions on the pool's executor (use a strand when the
/// io_context runs on several threads). Object lifetimes: the pool must outlive its pending
/// exchanges; `close()` cancels them (they complete with operation_aborted) and closes all
/// connections. The body passed to `async_exchange` must stay valid until completion.
class connection_pool {
public:
    /// `tls` must be non-null for an https endpoint and outlive the pool. With a `proxy`
    /// (not empty), every connection goes to the proxy and asks it for a tunnel to `ep` with
    /// `CONNECT host:port` (its credentials, if any, in Proxy-Authorization on the CONNECT
    /// only); TLS and HTTP then run inside the tunnel exactly as on a direct connection. A
    /// 4xx answer fails the exchange with errc::proxy_refused, a 5xx or a malformed one with
    /// errc::proxy_error (step "proxy"), `failed_reason` naming the status.
    connection_pool(boost::asio::any_io_executor ex,
                    endpoint ep,
                    request_headers headers,
                    pool_options opts,
                    boost::asio::ssl::context* tls,
                    proxy_endpoint proxy = {});
    ~connection_pool();
    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;

    /// Sends `POST target` with `body` (JSON) and completes with the response, passed as an
    /// rvalue (a handler may take `http_response` by value or `http_response&&`; the erased
    /// handler's two hops then move nothing).
    void async_exchange(std::string_view body,
                        boost::asio::any_completion_handler<void(http_response&&)> handler) {
        async_exchange(body, nullptr, std::move(handler));
    }

    /// As above; a 2xx `text/event-stream` answer goes to `observer` piece by piece as it is
    /// read (`http_response::streamed`), each piece within `stream_idle_timeout`. The observer
    /// must stay valid until completion.
    void async_exchange(std::string_view body,
                        body_observer* observer,
                        boost::asio::any_completion_handler<void(http_response&&)> handler) {
        async_exchange(
            body, observer, std::chrono::steady_clock::time_point::max(), std::move(handler));
    }

    /// As above, and the exchange ends with a timeout at `not_after` at the latest, whatever
    /// is left of `request_timeout` (a request's own deadline).
    void async_exchange(std::string_view body,
                        body_observer* observer,
                        std::chrono::steady_clock::time_point not_after,
                        boost::asio::any_completion_handler<void(http_response&&)> handler);

    /// Sends `spec` (see request_spec) and completes with the response; a 2xx body goes to
    /// `observer` when `spec.observe_any_body` (else as in async_exchange). Retried by the pool
    /// only as every exchange is: once, on a fresh connection, when a reused one failed before
    /// any response byte. `spec`'s views and `observer` must stay valid until completion.
    void async_request(const request_spec& spec,
                       body_observer* observer,
                       boost::asio::any_completion_handler<void(http_response&&)> handler);

    /// Cancels waiting and running exchanges and closes every connection.
    void close();

    pool_stats stats() const noexcept;
    const pool_options& options() const noexcept;

private:
    std::shared_ptr<detail::pool_impl> impl_;
};

} // namespace sluice
