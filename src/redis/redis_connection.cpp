#include "redis/redis_connection.hpp"

#include "transport/tls_peer.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace sluice::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
constexpr auto use = asio::as_tuple(asio::use_awaitable);

struct redis_connection::streams {
    explicit streams(asio::any_io_executor ex)
        : tcp(ex) {}
    beast::tcp_stream tcp;
    std::optional<asio::ssl::stream<beast::tcp_stream&>> tls;
};

redis_connection::redis_connection(asio::any_io_executor ex,
                                   redis_url url,
                                   std::chrono::milliseconds timeout,
                                   asio::ssl::context* tls)
    : ex_(std::move(ex))
    , url_(std::move(url))
    , timeout_(timeout)
    , tls_(tls) {}

redis_connection::~redis_connection() = default;

void redis_connection::close() {
    if (!s_)
        return;
    error_code ignored;
    s_->tcp.socket().shutdown(tcp::socket::shutdown_both, ignored);
    s_->tcp.close();
}

asio::awaitable<error_code> redis_connection::connect(std::string& why) {
    s_ = std::make_unique<streams>(ex_);
    in_.clear();
    const std::string where = url_.host + ":" + std::to_string(url_.port);
    tcp::resolver resolver(ex_);
    auto [rec, results] =
        co_await resolver.async_resolve(url_.host, std::to_string(url_.port), use);
    if (rec) {
        why = "cannot resolve " + url_.host + ": " + rec.message();
        co_return rec;
    }
    s_->tcp.expires_after(timeout_);
    auto [cec, ep] = co_await s_->tcp.async_connect(results, use);
    if (cec) {
        why = "cannot connect to " + where + ": " + cec.message();
        co_return cec;
    }
    s_->tcp.socket().set_option(tcp::no_delay(true));
    if (url_.tls) {
        if (!tls_) {
            why = "rediss:// without a TLS context";
            co_return make_error_code(boost::system::errc::protocol_not_supported);
        }
        s_->tls.emplace(s_->tcp, *tls_);
        error_code ec;
        error_code aec;
        asio::ip::make_address(url_.host, aec);
        set_peer_name(s_->tls->native_handle(), url_.host, !aec, ec);
        if (ec) {
            why = "TLS to " + where + ": " + ec.message();
            co_return ec;
        }
        s_->tcp.expires_after(timeout_);
        auto [hec] = co_await s_->tls->async_handshake(asio::ssl::stream_base::client, use);
        if (hec) {
            why = "TLS handshake with " + where + ": " + hec.message();
            co_return hec;
        }
    }
    resp_value reply;
    if (!url_.password.empty()) {
        // Built step by step: GCC 12 miscompiles a braced list of literals in a coroutine.
        std::vector<std::string> auth;
        auth.push_back("AUTH");
        if (!url_.user.empty())
            auth.push_back(url_.user);
        auth.push_back(url_.password);
        if (auto ec = co_await exec(auth, reply)) {
            why = "AUTH at " + where + ": " + ec.message();
            co_return ec;
        }
        if (reply.is_error()) {
            // Redis' own message names neither user nor password ("WRONGPASS invalid
            // username-password pair or user is disabled.").
            why = "AUTH at " + where + " refused: " + reply.text;
            co_return make_error_code(boost::system::errc::permission_denied);
        }
    }
    if (url_.db != 0) {
        std::vector<std::string> select;
        select.push_back("SELECT");
        select.push_back(std::to_string(url_.db));
        if (auto ec = co_await exec(select, reply)) {
            why = "SELECT at " + where + ": " + ec.message();
            co_return ec;
        }
        if (reply.is_error()) {
            why = "SELECT " + std::to_string(url_.db) + " at " + where + " refused: " + reply.text;
            co_return make_error_code(boost::system::errc::invalid_argument);
        }
    }
    co_return error_code{};
}

asio::awaitable<error_code> redis_connection::write(const std::string& bytes) {
    s_->tcp.expires_after(timeout_);
    if (s_->tls) {
        auto [ec, n] = co_await asio::async_write(*s_->tls, asio::buffer(bytes), use);
        co_return ec;
    }
    auto [ec, n] = co_await asio::async_write(s_->tcp, asio::buffer(bytes), use);
    co_return ec;
}

asio::awaitable<error_code> redis_connection::read(resp_value& reply) {
    char buf[4096];
    for (;;) {
        const std::ptrdiff_t used = resp_parse(in_, reply);
        if (used < 0)
            co_return make_error_code(boost::system::errc::bad_message);
        if (used > 0) {
            in_.erase(0, static_cast<std::size_t>(used));
            co_return error_code{};
        }
        s_->tcp.expires_after(timeout_);
        std::size_t n = 0;
        error_code ec;
        if (s_->tls)
            std::tie(ec, n) = co_await s_->tls->async_read_some(asio::buffer(buf), use);
        else
            std::tie(ec, n) = co_await s_->tcp.async_read_some(asio::buffer(buf), use);
        if (ec)
            co_return ec;
        in_.append(buf, n);
    }
}

asio::awaitable<error_code> redis_connection::exec(const std::vector<std::string>& args,
                                                   resp_value& reply) {
    if (!s_)
        co_return make_error_code(boost::system::errc::not_connected);
    out_.clear();
    resp_encode(out_, args);
    if (auto ec = co_await write(out_))
        co_return ec;
    co_return co_await read(reply);
}

} // namespace sluice::detail
