#pragma once

#include "support/read_request.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sluice::test {

/// How `one_answer_server` answers.
enum class answer_style {
    keep_alive, // Content-Length and keep-alive, then the connection is dropped silently
    drop_next,  // keep_alive, but the drop comes only when the next request has arrived
    chunked,    // the same, with the body in three chunks
    until_eof,  // no length: the body ends when the server closes (Connection: close)
    limited,    // a 429 with rate-limit headers in mixed case
};

inline constexpr std::string_view answer_body =
    R"({"id":"c1","object":"chat.completion","choices":[]})";

/// A server that answers one request per connection and then closes it, whatever the answer
/// said: with keep_alive, every connection the pool reuses is already dead (the keep-alive
/// race, every time). It records each request as received. Runs on its own thread for at most
/// 20 s; stopped and joined at scope end.
class one_answer_server {
public:
    explicit one_answer_server(answer_style style)
        : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0})
        , style_(style) {
        boost::asio::co_spawn(ioc_, serve(this), boost::asio::detached);
        thread_ = std::thread([this] { ioc_.run_for(std::chrono::seconds(20)); });
    }
    ~one_answer_server() {
        ioc_.stop();
        thread_.join();
    }
    one_answer_server(const one_answer_server&) = delete;
    one_answer_server& operator=(const one_answer_server&) = delete;

    std::string base_url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/v1";
    }
    // Requests received so far (call after the client is done: no lock).
    const std::vector<std::string>& requests() const { return requests_; }
    // Requests that arrived on a connection and were dropped unanswered (drop_next).
    int dropped() const { return dropped_; }

private:
    static boost::asio::awaitable<void> serve(one_answer_server* self) {
        using boost::asio::use_awaitable;
        for (;;) {
            auto socket = co_await self->acceptor_.async_accept(use_awaitable);
            std::string in;
            const received_request req = co_await read_request(socket, in);
            self->requests_.push_back(req.head + req.body);
            co_await boost::asio::async_write(
                socket, boost::asio::buffer(self->answer()), use_awaitable);
            if (self->style_ == answer_style::drop_next) {
                // The connection looks alive while idle; the request sent on it is lost.
                std::string next;
                boost::system::error_code ec;
                co_await boost::asio::async_read_until(
                    socket,
                    boost::asio::dynamic_buffer(next),
                    "\r\n\r\n",
                    boost::asio::redirect_error(use_awaitable, ec));
                if (!ec)
                    ++self->dropped_;
            }
            socket.close();
        }
    }

    std::string answer() const {
        const std::string body(answer_body);
        switch (style_) {
        case answer_style::keep_alive:
        case answer_style::drop_next:
            return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body;
        case answer_style::chunked: {
            std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            for (const std::string& piece :
                 {body.substr(0, 5), body.substr(5, 20), body.substr(25)})
                out += to_hex(piece.size()) + "\r\n" + piece + "\r\n";
            return out + "0\r\n\r\n";
        }
        case answer_style::until_eof:
            return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body;
        case answer_style::limited:
            return "HTTP/1.1 429 Too Many Requests\r\n"
                   "X-Request-Id: req_abc\r\n"
                   "Retry-After: 2\r\n"
                   "retry-after-ms: 1500\r\n"
                   "X-Should-Retry: true\r\n"
                   "X-RateLimit-Limit-Requests: 60\r\n"
                   "x-ratelimit-limit-tokens: 150000\r\n"
                   "X-RATELIMIT-REMAINING-REQUESTS: 0\r\n"
                   "x-ratelimit-remaining-tokens: 149000\r\n"
                   "X-Ratelimit-Reset-Requests: 1s\r\n"
                   "x-ratelimit-reset-tokens: 6m0s\r\n"
                   "X-Ratelimit-Reset-Other: 9\r\n"
                   "Content-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body;
        }
        return {};
    }

    static std::string to_hex(std::size_t n) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%zx", n);
        return buf;
    }

    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    answer_style style_;
    std::vector<std::string> requests_;
    int dropped_ = 0;
    std::thread thread_;
};

} // namespace sluice::test
