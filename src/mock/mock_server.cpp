#include <sluice/mock/mock_server.hpp>

#include "mock/mock_behavior.hpp"
#include "mock/self_signed.hpp"
#include "mock/session_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <sluice/error.hpp>

#include <list>
#include <mutex>

namespace sluice {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using detail::mock_reply;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto read_timeout = std::chrono::seconds(30);
constexpr auto write_timeout = std::chrono::seconds(30);
using steady_clock = std::chrono::steady_clock;

// What stop() needs to reach a connection: its strand, and (while it lives) its socket and
// delay timer. The coroutine clears the pointers before they go away.
struct connection_handle {
    asio::strand<asio::any_io_executor> strand;
    beast::tcp_stream* stream = nullptr;
    asio::steady_timer* timer = nullptr;
    bool stopped = false;
};

} // namespace

struct mock_server::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e, mock_options o)
        : ex(std::move(e))
        , opts(validated(std::move(o)))
        , acceptor_strand(asio::make_strand(ex))
        , acceptor(acceptor_strand)
        , behavior(opts, std::chrono::steady_clock::now()) {
        if (opts.tls) {
            tls.emplace(asio::ssl::context::tls_server);
            tls->set_options(asio::ssl::context::default_workarounds |
                             asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3);
            if (!opts.cert_file.empty()) {
                tls->use_certificate_chain_file(opts.cert_file);
                tls->use_private_key_file(opts.key_file, asio::ssl::context::pem);
                cert_pem = detail::read_text_file(opts.cert_file);
            } else {
                const auto pair = detail::make_self_signed_certificate();
                cert_pem = pair.certificate_pem;
                tls->use_certificate_chain(asio::buffer(pair.certificate_pem));
                tls->use_private_key(asio::buffer(pair.private_key_pem), asio::ssl::context::pem);
            }
        }
        const tcp::endpoint where(asio::ip::make_address(opts.address), opts.port);
        acceptor.open(where.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(where);
        acceptor.listen(asio::socket_base::max_listen_connections);
        port = acceptor.local_endpoint().port();
    }

    static mock_options validated(mock_options o) {
        o.validate();
        return o;
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
        for (;;) {
            auto strand = asio::make_strand(self->ex);
            auto [ec, socket] = co_await self->acceptor.async_accept(strand, use_tuple);
            if (ec) {
                if (!self->acceptor.is_open())
                    co_return;
                if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                    ec == asio::error::no_memory) {
                    // The waiting client stays in the backlog and the next accept would fail
                    // at once: pause, as nginx does, instead of spinning until a descriptor
                    // is free.
                    asio::steady_timer pause(self->ex, std::chrono::milliseconds(20));
                    co_await pause.async_wait(use_tuple);
                }
                continue; // a transient failure (an aborted handshake, no descriptor): serve on
            }
            auto handle = std::make_shared<connection_handle>(connection_handle{strand});
            {
                std::lock_guard lock(self->mutex);
                if (self->stopping)
                    co_return;
                ++self->behavior.counters().connections;
                self->connections.push_back(handle);
            }
            asio::co_spawn(strand, serve(self, std::move(socket), handle), asio::detached);
        }
    }

    static asio::awaitable<void> serve(std::shared_ptr<impl> self,
                                       tcp::socket socket,
                                       std::shared_ptr<connection_handle> handle) {
        socket.set_option(tcp::no_delay(true));
        if (self->tls) {
            beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)),
                                                        *self->tls);
            handle->stream = &beast::get_lowest_layer(stream);
            beast::get_lowest_layer(stream).expires_after(read_timeout);
            auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
            if (!ec) {
                detail::session_stream session_of(stream);
                co_await self->session(session_of, *handle);
            }
        } else {
            beast::tcp_stream stream(std::move(socket));
            handle->stream = &stream;
            detail::session_stream session_of(stream);
            co_await self->session(session_of, *handle);
        }
        handle->stream = nullptr;
        self->forget(handle);
    }

    asio::awaitable<void> session(detail::session_stream& stream, connection_handle& handle) {
        beast::tcp_stream& tcp_layer = stream.tcp();
        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            // The head is read under the larger of the two limits (Beast checks a
            // Content-Length as it parses the head), the body under its route's own.
            parser.body_limit(std::max(opts.max_body_size, upload_limit()));
            tcp_layer.expires_after(read_timeout);
            auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
            if (hec == http::error::body_limit) {
                co_await refuse_too_large(stream);
                co_return;
            }
            if (hec || handle.stopped)
                co_return;
            // Uploads have their own limit: a batch input file is far larger than a request.
            const std::string_view target = parser.get().target();
            const bool upload =
                target.starts_with("/v1/files") || target.starts_with("/openai/files");
            const std::size_t limit = upload ? upload_limit() : opts.max_body_size;
            if (parser.content_length() && *parser.content_length() > limit) {
                co_await refuse_too_large(stream);
                co_return;
            }
            parser.body_limit(limit);
            auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
            if (ec == http::error::body_limit) {
                co_await refuse_too_large(stream);
                co_return;
            }
            if (ec || handle.stopped)
                co_return;
            const auto& req = parser.get();
            const auto start = steady_clock::now();
            mock_reply reply = decide(req, start);
            if (reply.delay.count() > 0 && !co_await wait_until(start + reply.delay, handle))
                co_return;
            if (reply.what == mock_reply::action::reset) {
                reset(tcp_layer);
                co_return;
            }
            const bool keep = req.keep_alive() && !reply.close;
            if (reply.what == mock_reply::action::stream) {
                auto head = head_of<http::empty_body>(reply, req);
                if (!co_await send_stream(stream, head, reply.stream, start, handle))
                    co_return;
                if (!keep)
                    break;
                continue;
            }
            auto res = head_of<http::string_body>(reply, req);
            if (reply.what == mock_reply::action::truncate) {
                co_await send_half(stream, res, reply.body);
                co_return;
            }
            res.body() = std::move(reply.body);
            res.prepare_payload();
            auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
            if (wec || !keep)
                break;
        }
        error_code ignored;
        tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }

    // An upload's body: the file and the multipart framing around it.
    std::size_t upload_limit() const { return opts.batch.max_file_bytes + 64 * 1024; }

    mock_reply decide(const http::request<http::string_body>& req, steady_clock::time_point now) {
        std::lock_guard lock(mutex);
        std::optional<std::string_view> api_key;
        if (auto it = req.find("api-key"); it != req.end())
            api_key = std::string_view(it->value());
        std::string_view content_type;
        if (auto it = req.find(http::field::content_type); it != req.end())
            content_type = std::string_view(it->value());
        return behavior.on_request(std::string_view(req.method_string()),
                                   std::string_view(req.target()),
                                   req.body(),
                                   now,
                                   api_key,
                                   content_type);
    }

    // False when the server was stopped during the wait or before it: a stop that ran while
    // this coroutine was not waiting (between two writes) found no timer to cancel.
    static asio::awaitable<bool> wait_until(steady_clock::time_point deadline,
                                            connection_handle& handle) {
        if (handle.stopped)
            co_return false;
        if (deadline > steady_clock::now()) {
            asio::steady_timer timer(handle.strand);
            handle.timer = &timer;
            timer.expires_at(deadline);
            co_await timer.async_wait(use_tuple);
            handle.timer = nullptr;
        }
        co_return !handle.stopped;
    }

    template <class Body>
    static http::response<Body> head_of(const mock_reply& reply,
                                        const http::request<http::string_body>& req) {
        http::response<Body> res{static_cast<http::status>(reply.status), req.version()};
        res.set(http::field::server, "sluice-mock");
        res.set(http::field::content_type, reply.content_type);
        for (auto& [name, value] : reply.headers)
            res.set(name, value);
        res.keep_alive(req.keep_alive() && !reply.close);
        return res;
    }

    // The head (chunked), then each piece as one chunk when it is due from `start`, then the
    // last chunk; or, for a cut, a close without it when the cut is due. False when the
    // connection is over (a cut, a failed write, a stop).
    static asio::awaitable<bool> send_stream(detail::session_stream& stream,
                                             http::response<http::empty_body>& head,
                                             const detail::stream_schedule& schedule,
                                             steady_clock::time_point start,
                                             connection_handle& handle) {
        beast::tcp_stream& tcp_layer = stream.tcp();
        head.chunked(true);
        http::response_serializer<http::empty_body> sr(head);
        tcp_layer.expires_after(write_timeout);
        auto [hec, hn] = co_await http::async_write_header(stream, sr, use_tuple);
        if (hec)
            co_return false;
        for (const auto& piece : schedule.pieces) {
            if (!co_await wait_until(start + piece.at, handle))
                co_return false;
            tcp_layer.expires_after(write_timeout);
            auto [ec, n] = co_await asio::async_write(
                stream, http::make_chunk(asio::buffer(piece.bytes)), use_tuple);
            if (ec)
                co_return false;
        }
        if (!co_await wait_until(start + schedule.end_at, handle))
            co_return false;
        if (schedule.end == detail::stream_end::cut) {
            close_now(tcp_layer);
            co_return false;
        }
        tcp_layer.expires_after(write_timeout);
        auto [lec, ln] = co_await asio::async_write(stream, http::make_chunk_last(), use_tuple);
        co_return !lec;
    }

    static asio::awaitable<void> refuse_too_large(detail::session_stream& stream) {
        http::response<http::string_body> res{http::status::payload_too_large, 11};
        res.set(http::field::content_type, "application/json");
        res.body() =
            R"({"error":{"message":"Request too large","type":"invalid_request_error","param":null,"code":null}})";
        res.keep_alive(false);
        res.prepare_payload();
        co_await http::async_write(stream, res, use_tuple);
    }

    // SO_LINGER 0 makes close() send RST: the peer sees a reset, not an EOF.
    static void reset(beast::tcp_stream& tcp_layer) {
        error_code ignored;
        tcp_layer.socket().set_option(asio::socket_base::linger(true, 0), ignored);
        tcp_layer.socket().close(ignored);
    }

    // A full Content-Length with half the body, then the connection goes away.
    static asio::awaitable<void> send_half(detail::session_stream& stream,
                                           http::response<http::string_body>& res,
                                           const std::string& body) {
        res.content_length(body.size());
        http::response_serializer<http::string_body> sr(res);
        auto [hec, hn] = co_await http::async_write_header(stream, sr, use_tuple);
        if (!hec)
            co_await asio::async_write(
                stream, asio::buffer(body.data(), body.size() / 2), use_tuple);
        close_now(stream.tcp());
    }

    // FIN, not RST (that is the reset fault): what was sent arrives, then the end of the
    // stream, where the peer still expects body bytes. With TLS there is no close_notify.
    static void close_now(beast::tcp_stream& tcp_layer) {
        error_code ignored;
        tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
        tcp_layer.socket().close(ignored);
    }

    void forget(const std::shared_ptr<connection_handle>& handle) {
        std::lock_guard lock(mutex);
        connections.remove(handle);
    }

    void do_stop() {
        std::list<std::shared_ptr<connection_handle>> live;
        {
            std::lock_guard lock(mutex);
            stopping = true;
            live = connections;
        }
        asio::post(acceptor_strand, [self = shared_from_this()] {
            error_code ignored;
            self->acceptor.close(ignored);
        });
        for (auto& h : live) {
            asio::post(h->strand, [h] {
                h->stopped = true;
                if (h->timer)
                    h->timer->cancel();
                if (h->stream) {
                    error_code ignored;
                    h->stream->socket().close(ignored);
                }
            });
        }
    }

    asio::any_io_executor ex;
    mock_options opts;
    asio::strand<asio::any_io_executor> acceptor_strand;
    tcp::acceptor acceptor;
    std::optional<asio::ssl::context> tls;
    std::string cert_pem;
    std::uint16_t port = 0;

    std::mutex mutex; // guards behavior, connections, stopping
    detail::mock_behavior behavior;
    std::list<std::shared_ptr<connection_handle>> connections;
    bool stopping = false;
};

mock_server::mock_server(asio::any_io_executor ex, mock_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts))) {}

mock_server::~mock_server() {
    if (impl_)
        impl_->do_stop();
}

void mock_server::start() {
    asio::co_spawn(impl_->acceptor_strand, impl::accept_loop(impl_), asio::detached);
}

void mock_server::stop() {
    impl_->do_stop();
}

std::uint16_t mock_server::port() const noexcept {
    return impl_->port;
}

std::string mock_server::base_url() const {
    const bool v6 = impl_->opts.address.find(':') != std::string::npos;
    std::string host = v6 ? "[" + impl_->opts.address + "]" : impl_->opts.address;
    return std::string(impl_->opts.tls ? "https://" : "http://") + host + ":" +
           std::to_string(impl_->port) + "/v1";
}

const std::string& mock_server::certificate_pem() const noexcept {
    return impl_->cert_pem;
}

mock_stats mock_server::stats() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return impl_->behavior.counters();
}

} // namespace sluice
