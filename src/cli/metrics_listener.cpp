#include "cli/metrics_listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>
#include <chrono>
#include <set>
#include <stdexcept>
#include <string>

namespace sluice::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// A scraper asks again every few seconds; an idle connection is not kept longer than this.
constexpr std::chrono::seconds io_timeout{30};
constexpr std::uint32_t max_head = 8 * 1024;

} // namespace

tcp::endpoint parse_listen_address(std::string_view address) {
    const auto bad = [&](const char* why) {
        return std::invalid_argument("\"" + std::string(address) + "\" " + why +
                                     " (expected IP:PORT, as 127.0.0.1:9464 or [::1]:9464)");
    };
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos)
        throw bad("has no port");
    std::string_view host = address.substr(0, colon);
    const std::string_view port_text = address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() ||
        port > 65535)
        throw bad("has no valid port");
    boost::system::error_code aec;
    const asio::ip::address ip = asio::ip::make_address(std::string(host), aec);
    if (aec)
        throw bad("does not start with an IP address");
    return {ip, static_cast<unsigned short>(port)};
}

struct metrics_listener::impl : std::enable_shared_from_this<impl> {
    impl(asio::io_context& ioc, const tcp::endpoint& ep, std::function<std::string()> r)
        : acceptor(ioc, ep)
        , render(std::move(r)) {}

    static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
        for (;;) {
            auto [ec, socket] = co_await self->acceptor.async_accept(use_tuple);
            if (ec) {
                if (!self->acceptor.is_open())
                    co_return;
                continue; // EMFILE, an aborted connection: keep serving
            }
            asio::co_spawn(
                self->acceptor.get_executor(), serve(self, std::move(socket)), asio::detached);
        }
    }

    static asio::awaitable<void> serve(std::shared_ptr<impl> self, tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        self->open.insert(&stream);
        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::empty_body> parser;
            parser.header_limit(max_head);
            stream.expires_after(io_timeout);
            auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
            if (ec)
                break; // closed, timed out, a body or a head too large: nothing to answer
            const auto& req = parser.get();
            auto res = self->answer(req);
            stream.expires_after(io_timeout);
            auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
            if (wec || !res.keep_alive())
                break;
        }
        self->open.erase(&stream);
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }

    http::response<http::string_body> answer(const http::request<http::empty_body>& req) {
        http::response<http::string_body> res;
        res.version(req.version());
        res.keep_alive(req.keep_alive());
        std::string_view target = req.target();
        target = target.substr(0, target.find('?'));
        if (target != "/metrics") {
            res.result(http::status::not_found);
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.body() = "only /metrics is served here\n";
        } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
            res.result(http::status::method_not_allowed);
            res.set(http::field::allow, "GET, HEAD");
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.body() = "GET /metrics\n";
        } else {
            res.result(http::status::ok);
            res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res.body() = render();
            if (req.method() == http::verb::head) {
                res.prepare_payload();
                res.body().clear();
                return res; // Content-Length of the GET, no body
            }
        }
        res.prepare_payload();
        return res;
    }

    void stop() {
        boost::system::error_code ignored;
        acceptor.close(ignored);
        for (beast::tcp_stream* s : open)
            s->socket().close(ignored);
    }

    tcp::acceptor acceptor;
    std::function<std::string()> render;
    std::set<beast::tcp_stream*> open; // connections being served, closed by stop()
};

metrics_listener::metrics_listener(asio::io_context& ioc,
                                   std::string_view address,
                                   std::function<std::string()> render)
    : impl_(std::make_shared<impl>(ioc, parse_listen_address(address), std::move(render))) {}

metrics_listener::~metrics_listener() {
    if (impl_)
        impl_->stop();
}

void metrics_listener::start() {
    asio::co_spawn(impl_->acceptor.get_executor(), impl::accept_loop(impl_), asio::detached);
}

void metrics_listener::stop() {
    impl_->stop();
}

tcp::endpoint metrics_listener::local_endpoint() const {
    return impl_->acceptor.local_endpoint();
}

} // namespace sluice::cli
