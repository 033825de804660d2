#pragma once

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
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sluice::test {

/// A raw HTTP/1.1 response: `status` line text ("200 OK"), extra header lines (each ending in
/// \r\n), and a JSON body sent with Content-Length on a keep-alive connection.
inline std::string
http_answer(std::string_view status, std::string_view headers, std::string_view body) {
    return "HTTP/1.1 " + std::string(status) + "\r\nContent-Type: application/json\r\n" +
           std::string(headers) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           std::string(body);
}

/// A chat.completion whose usage reports `total_tokens` (all of it prompt tokens).
inline std::string completion_with_usage(unsigned total_tokens) {
    return R"({"id":"c1","object":"chat.completion","choices":[{"index":0,"message":)"
           R"({"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":)"
           R"({"prompt_tokens":)" +
           std::to_string(total_tokens) + R"(,"completion_tokens":0,"total_tokens":)" +
           std::to_string(total_tokens) + "}}";
}

/// A keep-alive server on 127.0.0.1 that answers the Nth request it receives (0-based,
/// counted over all connections) with `script(N, request)`, a whole raw HTTP response. The
/// tests that drive the engine on a manual clock use it to say exactly what each attempt
/// gets. Runs on its own thread for at most 30 s; stopped and joined at scope end.
class script_server {
public:
    using script = std::function<std::string(int n, std::string_view request)>;

    explicit script_server(script s)
        : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0})
        , script_(std::move(s)) {
        boost::asio::co_spawn(ioc_, accept_loop(this), boost::asio::detached);
        thread_ = std::thread([this] { ioc_.run_for(std::chrono::seconds(30)); });
    }
    ~script_server() {
        ioc_.stop();
        thread_.join();
    }
    script_server(const script_server&) = delete;
    script_server& operator=(const script_server&) = delete;

    std::string base_url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/v1";
    }
    /// Requests received so far.
    int requests() const {
        std::lock_guard lock(mutex_);
        return static_cast<int>(received_.size());
    }
    std::string request(int n) const {
        std::lock_guard lock(mutex_);
        return received_.at(static_cast<std::size_t>(n));
    }

private:
    static boost::asio::awaitable<void> accept_loop(script_server* self) {
        for (;;) {
            auto socket = co_await self->acceptor_.async_accept(boost::asio::use_awaitable);
            boost::asio::co_spawn(
                self->ioc_, serve(self, std::move(socket)), boost::asio::detached);
        }
    }

    static boost::asio::awaitable<void> serve(script_server* self,
                                              boost::asio::ip::tcp::socket socket) {
        namespace asio = boost::asio;
        std::string in;
        boost::system::error_code ec;
        auto token = asio::redirect_error(asio::use_awaitable, ec);
        for (;;) {
            const std::size_t head_end = co_await asio::async_read_until(
                socket, asio::dynamic_buffer(in), "\r\n\r\n", token);
            if (ec)
                co_return;
            const std::size_t at = in.find("Content-Length: ");
            const std::size_t length = at < head_end ? std::stoul(in.substr(at + 16)) : 0;
            if (in.size() < head_end + length)
                co_await asio::async_read(socket,
                                          asio::dynamic_buffer(in),
                                          asio::transfer_exactly(head_end + length - in.size()),
                                          token);
            if (ec)
                co_return;
            std::string request = in.substr(0, head_end + length);
            in.erase(0, head_end + length);
            int n = 0;
            {
                std::lock_guard lock(self->mutex_);
                n = static_cast<int>(self->received_.size());
                self->received_.push_back(request);
            }
            const std::string answer = self->script_(n, request);
            co_await asio::async_write(socket, asio::buffer(answer), token);
            if (ec)
                co_return;
        }
    }

    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    script script_;
    mutable std::mutex mutex_;
    std::vector<std::string> received_;
    std::thread thread_;
};

} // namespace sluice::test
