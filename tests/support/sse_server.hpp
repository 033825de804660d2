#pragma once

#include "support/read_request.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::test {

/// How a scripted event stream ends.
enum class stream_end {
    done,  // the zero-size chunk: the body is complete
    cut,   // the connection is closed where the script stops (a stream cut mid-body)
    stall, // nothing more is sent, the connection stays open (a stalled stream)
};

/// One piece of a scripted stream: bytes sent as one HTTP chunk after a pause.
struct stream_piece {
    std::chrono::milliseconds after{0};
    std::string bytes;
};

/// An event-stream answer as a server would send it, scripted byte for byte: a 200
/// `text/event-stream` head, each piece as its own chunk after its pause, then the end. Every
/// connection gets the same script; requests are counted. Runs on its own thread for at most
/// 30 s on 127.0.0.1; stopped and joined at scope end.
class sse_server {
public:
    sse_server(std::vector<stream_piece> script, stream_end end)
        : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0})
        , script_(std::move(script))
        , end_(end) {
        boost::asio::co_spawn(ioc_, accept_loop(this), boost::asio::detached);
        thread_ = std::thread([this] { ioc_.run_for(std::chrono::seconds(30)); });
    }
    ~sse_server() {
        ioc_.stop();
        thread_.join();
    }
    sse_server(const sse_server&) = delete;
    sse_server& operator=(const sse_server&) = delete;

    std::string base_url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/v1";
    }
    int requests() const { return requests_; }
    /// The body of the last request, as received.
    std::string last_body() const {
        std::lock_guard lock(mutex_);
        return last_body_;
    }

private:
    using tcp = boost::asio::ip::tcp;

    static boost::asio::awaitable<void> accept_loop(sse_server* self) {
        for (;;) {
            tcp::socket s = co_await self->acceptor_.async_accept(boost::asio::use_awaitable);
            boost::asio::co_spawn(self->ioc_, serve(self, std::move(s)), boost::asio::detached);
        }
    }

    static boost::asio::awaitable<void> serve(sse_server* self, tcp::socket socket) {
        try {
            co_await self->answer(socket);
        } catch (...) {
        }
    }

    boost::asio::awaitable<void> answer(tcp::socket& socket) {
        using boost::asio::use_awaitable;
        std::string in;
        for (;;) {
            const received_request req = co_await read_request(socket, in);
            {
                std::lock_guard lock(mutex_);
                last_body_ = req.body;
            }
            ++requests_;
            co_await write(socket,
                           "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n");
            for (const stream_piece& piece : script_) {
                if (piece.after.count() > 0) {
                    boost::asio::steady_timer pause(ioc_, piece.after);
                    co_await pause.async_wait(use_awaitable);
                }
                char size[32];
                std::snprintf(size, sizeof size, "%zx\r\n", piece.bytes.size());
                co_await write(socket, size + piece.bytes + "\r\n");
            }
            if (end_ == stream_end::cut) {
                socket.close();
                co_return;
            }
            if (end_ == stream_end::stall) {
                boost::asio::steady_timer hold(ioc_, std::chrono::seconds(30));
                co_await hold.async_wait(use_awaitable);
                co_return;
            }
            co_await write(socket, "0\r\n\r\n");
        }
    }

    static boost::asio::awaitable<void> write(tcp::socket& socket, std::string bytes) {
        co_await boost::asio::async_write(
            socket, boost::asio::buffer(bytes), boost::asio::use_awaitable);
    }

    boost::asio::io_context ioc_;
    tcp::acceptor acceptor_;
    std::vector<stream_piece> script_;
    stream_end end_;
    std::atomic<int> requests_{0};
    mutable std::mutex mutex_;
    std::string last_body_;
    std::thread thread_;
};

/// `data: {chunk}\n\n` for a content delta of choice 0.
inline std::string content_event(const std::string& text) {
    return "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\","
           "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
           text + "\"},\"finish_reason\":null}]}\n\n";
}

} // namespace sluice::test
