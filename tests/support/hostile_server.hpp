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

#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace sluice::test {

/// How `hostile_server` answers every request.
enum class behavior {
    normal,           // a 200 "answer req-N", Content-Length, keep-alive
    early_hints,      // 100 Continue and 103 Early Hints before each 200
    unsolicited_now,  // each 200 followed at once, in the same write, by a stray 200
    unsolicited_late, // each 200 followed 50 ms later by a stray 200, then the next read
    huge_retry_after, // 429 with retry-after: 999999999
    too_large,        // 429 "Request too large ... (TPM)" with no retry-after
    unauthorized,     // 401 invalid_api_key
    echo_key_400,     // 400 whose message holds the request's Authorization value
    echo_key_200,     // 200 whose content holds the request's Authorization value
    huge_chunked,     // 200 chunked, 100 MiB of body, until the client goes away
    bad_chunk,        // 200 chunked whose first chunk-size line is "zz"
    stall_tls,        // accepts, then reads and writes nothing (a TLS handshake stalls)
    event_stream,     // 200 text/event-stream (SSE chunks) to a request that asked for none
};

struct hostile_options {
    behavior how = behavior::normal;
    /// The server's thread runs at most this long, whatever the client does.
    std::chrono::seconds run_for{60};
};

/// A plain HTTP/1.1 server on 127.0.0.1 (ephemeral port) that misbehaves in one chosen way.
/// It reads every request whole (head, then Content-Length body), takes the line id from the
/// body's "echo req-N", counts the requests per id, and answers per `behavior`. Runs on its own
/// thread for at most `run_for`; stopped and joined at scope end.
class hostile_server {
public:
    explicit hostile_server(hostile_options opts)
        : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0})
        , opts_(opts) {
        boost::asio::co_spawn(ioc_, accept_loop(this), boost::asio::detached);
        thread_ = std::thread([this] { ioc_.run_for(opts_.run_for); });
    }
    explicit hostile_server(behavior how)
        : hostile_server(hostile_options{how, std::chrono::seconds(60)}) {}
    ~hostile_server() {
        ioc_.stop();
        thread_.join();
    }
    hostile_server(const hostile_server&) = delete;
    hostile_server& operator=(const hostile_server&) = delete;

    unsigned short port() const { return port_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
    /// For stall_tls: the same port as https://, so the client starts a TLS handshake.
    std::string https_base_url() const {
        return "https://127.0.0.1:" + std::to_string(port_) + "/v1";
    }

    /// Requests received for line id N ("req-N"); -1 collects requests without an id.
    int attempts(int id) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = attempts_.find(id);
        return it == attempts_.end() ? 0 : it->second;
    }
    /// Requests received in all.
    int total() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return total_;
    }
    /// Connections accepted in all.
    int connections() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return connections_;
    }

    static std::string answer_content(int id) {
        std::string s = "answer req-";
        s += std::to_string(id);
        return s;
    }

private:
    using tcp = boost::asio::ip::tcp;

    static boost::asio::awaitable<void> accept_loop(hostile_server* self) {
        using boost::asio::use_awaitable;
        for (;;) {
            tcp::socket socket = co_await self->acceptor_.async_accept(use_awaitable);
            {
                std::lock_guard<std::mutex> lock(self->mutex_);
                ++self->connections_;
            }
            boost::asio::co_spawn(
                self->ioc_, serve(self, std::move(socket)), boost::asio::detached);
        }
    }

    // One connection. Any error (the client closing, a reset) ends it quietly.
    static boost::asio::awaitable<void> serve(hostile_server* self, tcp::socket socket) {
        try {
            co_await self->serve_requests(socket);
        } catch (...) {
        }
        boost::system::error_code ignored;
        socket.close(ignored);
    }

    boost::asio::awaitable<void> serve_requests(tcp::socket& socket) {
        using boost::asio::use_awaitable;
        if (opts_.how == behavior::stall_tls) {
            // Hold the socket open, reading nothing: the client's handshake gets no answer.
            boost::asio::steady_timer hold(ioc_, opts_.run_for + std::chrono::seconds(10));
            co_await hold.async_wait(use_awaitable);
            co_return;
        }
        std::string in;
        for (;;) {
            const received_request req = co_await read_request(socket, in);
            const std::string& head = req.head;
            const std::string& body = req.body;
            const int id = line_id(body);
            count(id);
            if (opts_.how == behavior::huge_chunked) {
                co_await stream_huge(socket);
                co_return;
            }
            co_await write(socket, reply_to(id, header_value(head, "authorization")));
            if (opts_.how == behavior::unsolicited_late) {
                boost::asio::steady_timer wait(ioc_, std::chrono::milliseconds(50));
                co_await wait.async_wait(use_awaitable);
                co_await write(socket, ok("answer stray"));
            }
        }
    }

    // The bytes written for one request, for every behaviour that answers with fixed bytes.
    std::string reply_to(int id, const std::string& authorization) const {
        switch (opts_.how) {
        case behavior::early_hints:
            return "HTTP/1.1 100 Continue\r\n\r\n"
                   "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n" +
                   ok(answer_content(id));
        case behavior::unsolicited_now:
            return ok(answer_content(id)) + ok("answer stray");
        case behavior::huge_retry_after:
            return response(
                "429 Too Many Requests",
                "retry-after: 999999999\r\n",
                R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})");
        case behavior::too_large:
            return response(
                "429 Too Many Requests",
                "",
                R"({"error":{"message":"Request too large for gpt-4o-mini in organization org-x on tokens per min (TPM): Limit 10, Requested 30000. The input or output tokens must be reduced in order to run successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}})");
        case behavior::unauthorized:
            return response(
                "401 Unauthorized",
                "",
                R"({"error":{"message":"Incorrect API key provided: sk-test...","type":"invalid_request_error","code":"invalid_api_key"}})");
        case behavior::echo_key_400:
            return response("400 Bad Request",
                            "",
                            R"({"error":{"message":"bad request from Authorization: )" +
                                json_escape(authorization) +
                                R"(","type":"invalid_request_error","code":null}})");
        case behavior::echo_key_200:
            return ok(answer_content(id) + ", you sent " + json_escape(authorization));
        case behavior::bad_chunk:
            return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\nzz\r\n{\"id\":\"c\"}\r\n0\r\n\r\n";
        case behavior::event_stream: {
            const std::string events =
                "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":"
                "{\"content\":\"" +
                answer_content(id) + "\"}}]}\n\ndata: [DONE]\n\n";
            return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                   "Content-Length: " +
                   std::to_string(events.size()) + "\r\n\r\n" + events;
        }
        default: // normal, unsolicited_late (its stray answer follows)
            return ok(answer_content(id));
        }
    }

    // 100 MiB of chunks, 64 KiB at a time, until done or the client goes away (write error).
    boost::asio::awaitable<void> stream_huge(tcp::socket& socket) {
        co_await write(socket,
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n");
        co_await write(
            socket,
            chunk(
                R"({"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":")"));
        const std::string piece = chunk(std::string(64 * 1024, 'x'));
        for (int i = 0; i < 1600; ++i) // 1600 x 64 KiB = 100 MiB
            co_await boost::asio::async_write(
                socket, boost::asio::buffer(piece), boost::asio::use_awaitable);
        co_await write(socket, chunk(R"("},"finish_reason":"stop"}]})") + "0\r\n\r\n");
    }

    boost::asio::awaitable<void> write(tcp::socket& socket, std::string text) {
        co_await boost::asio::async_write(
            socket, boost::asio::buffer(text), boost::asio::use_awaitable);
    }

    void count(int id) {
        std::lock_guard<std::mutex> lock(mutex_);
        ++attempts_[id];
        ++total_;
    }

    static std::string response(const char* status, const char* extra_headers, std::string body) {
        std::string out = "HTTP/1.1 ";
        out += status;
        out += "\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n";
        out += extra_headers;
        out += "Content-Length: ";
        out += std::to_string(body.size());
        out += "\r\n\r\n";
        out += body;
        return out;
    }

    static std::string ok(const std::string& content) {
        return response(
            "200 OK",
            "",
            R"({"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":")" +
                content +
                R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})");
    }

    static std::string chunk(const std::string& data) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        return size + data + "\r\n";
    }

    // The digits after "echo req-" in the body; -1 when there are none.
    static int line_id(const std::string& body) {
        constexpr std::string_view marker = "echo req-";
        const std::size_t at = body.find(marker);
        if (at == std::string::npos)
            return -1;
        std::size_t i = at + marker.size();
        int id = 0;
        bool any = false;
        while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) {
            id = id * 10 + (body[i] - '0');
            any = true;
            ++i;
        }
        return any ? id : -1;
    }

    // The value of a header (name in lower case) in a request head, or "".
    static std::string json_escape(const std::string& s) {
        std::string out;
        for (const char c : s) {
            if (c == '"' || c == '\\') {
                out += '\\';
                out += c;
            } else if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                out += buf;
            } else {
                out += c;
            }
        }
        return out;
    }

    boost::asio::io_context ioc_;
    tcp::acceptor acceptor_;
    unsigned short port_ = acceptor_.local_endpoint().port();
    hostile_options opts_;
    mutable std::mutex mutex_;
    std::map<int, int> attempts_;
    int total_ = 0;
    int connections_ = 0;
    std::thread thread_;
};

} // namespace sluice::test
