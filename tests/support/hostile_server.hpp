#pragma once

#include "support/read_request.hpp"

#include "mock/self_signed.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
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

    // The head and the body on the wire.
    never_answer,       // reads the request, then holds the connection open, silent
    stalled_body,       // a whole head (Content-Length 1000), 10 body bytes, then silence
    slow_head,          // the answer one byte a second from its first byte
    slow_body,          // the head at once, then the body one byte a second
    close_after_status, // "HTTP/1.1 200 OK" and its line end, then a close
    short_body,         // Content-Length 500 and 100 bytes of body, then a close
    reset_before_head,  // reads the request, then resets the connection (RST)
    reset_after_head,   // a whole head (Content-Length 200), then a reset
    chunk_overflow,     // 200 chunked whose chunk size is 20 hex digits (over 64 bits)
    bad_status_line,    // "HTTP/1.1 2x0 OK": not a status code
    not_http,           // an SSH banner, then a close
    huge_header,        // a 200 whose head holds one 1 MiB header
    huge_length,        // Content-Length of 100 MiB, and the body until the client goes away
    huge_until_close,   // no Content-Length, no chunks: 100 MiB of body ending at the close

    // The body's meaning.
    not_completion, // 200 application/json that is a list object, not a chat completion
    html,           // 200 text/html, a proxy's error page
    truncated_json, // 200 application/json, half a completion (its Content-Length is right)

    // Statuses and hints.
    retry_hint,   // 429 rate_limit_exceeded with `hostile_options::hint` as its only header
    quota,        // 429 insufficient_quota
    bad_request,  // 400 invalid_request_error
    flaky_500,    // each line's odd-numbered attempts get a 500, its even ones the answer
    redirect_307, // 307 to `hostile_options::location`

    // Connections.
    connection_close, // each answer with `Connection: close`, then the close
    idle_close,       // each answer keep-alive, then a silent close 20 ms later

    // TLS (use https_base_url()).
    plain_on_tls,  // answers the ClientHello with a plain HTTP 400, then closes
    tls_reset,     // reads the ClientHello, then resets the connection
    reset_mid_tls, // completes the handshake, reads the request, then resets the connection

    // Event streams, for lines with "stream": true.
    sse_cut,   // one content event, then half of the next and a close
    sse_error, // one content event, then an error event (server_error) and the end
    sse_stall, // one content event, then silence with the connection open
    sse_huge,  // 100 MiB of content events until the client goes away
};

struct hostile_options {
    behavior how = behavior::normal;
    /// The server's thread runs at most this long, whatever the client does.
    std::chrono::seconds run_for{60};
    /// retry_hint: the header line sent with each 429, without its line end
    /// ("retry-after: -5").
    std::string hint;
    /// redirect_307: the Location sent.
    std::string location;
};

/// A plain HTTP/1.1 server on 127.0.0.1 (ephemeral port) that misbehaves in one chosen way.
/// It reads every request whole (head, then Content-Length body), takes the line id from the
/// body's "echo req-N", counts the requests per id, and answers per `behavior`. Runs on its own
/// thread for at most `run_for`; stopped and joined at scope end.
class hostile_server {
public:
    explicit hostile_server(hostile_options opts)
        : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0})
        , opts_(std::move(opts)) {
        if (opts_.how == behavior::reset_mid_tls) {
            const detail::pem_pair pem = detail::make_self_signed_certificate();
            tls_.use_certificate_chain(boost::asio::buffer(pem.certificate_pem));
            tls_.use_private_key(boost::asio::buffer(pem.private_key_pem),
                                 boost::asio::ssl::context::pem);
        }
        boost::asio::co_spawn(ioc_, accept_loop(this), boost::asio::detached);
        thread_ = std::thread([this] { ioc_.run_for(opts_.run_for); });
    }
    explicit hostile_server(behavior how)
        : hostile_server(hostile_options{how, std::chrono::seconds(60), {}, {}}) {}
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
        switch (opts_.how) {
        case behavior::stall_tls:
            // Hold the socket open, reading nothing: the client's handshake gets no answer.
            co_await hold();
            co_return;
        case behavior::plain_on_tls:
        case behavior::tls_reset: {
            char hello[512];
            co_await socket.async_read_some(boost::asio::buffer(hello), use_awaitable);
            if (opts_.how == behavior::tls_reset) {
                reset(socket);
                co_return;
            }
            // What a plain HTTP server says to the bytes of a ClientHello.
            co_await write(socket,
                           "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                           "Connection: close\r\n\r\n");
            co_return;
        }
        case behavior::reset_mid_tls: {
            boost::asio::ssl::stream<tcp::socket&> tls(socket, tls_);
            co_await tls.async_handshake(boost::asio::ssl::stream_base::server, use_awaitable);
            std::string in;
            const received_request req = co_await read_request(tls, in);
            count(line_id(req.body));
            reset(socket);
            co_return;
        }
        default:
            break;
        }
        std::string in;
        for (;;) {
            const received_request req = co_await read_request(socket, in);
            const std::string& head = req.head;
            const std::string& body = req.body;
            const int id = line_id(body);
            const int attempt = count(id);
            if (!co_await answer(socket, id, attempt, header_value(head, "authorization")))
                co_return;
            if (opts_.how == behavior::unsolicited_late) {
                boost::asio::steady_timer wait(ioc_, std::chrono::milliseconds(50));
                co_await wait.async_wait(use_awaitable);
                co_await write(socket, ok("answer stray"));
            }
        }
    }

    // Answers one request; false when the connection is to end (closed, reset or held).
    boost::asio::awaitable<bool>
    answer(tcp::socket& socket, int id, int attempt, const std::string& authorization) {
        using namespace std::chrono_literals;
        const std::string answer_body = completion(answer_content(id));
        switch (opts_.how) {
        case behavior::huge_chunked:
            co_await stream_huge(socket);
            co_return false;
        case behavior::never_answer:
            co_await hold();
            co_return false;
        case behavior::stalled_body:
            co_await write(socket,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 1000\r\n\r\n" +
                               answer_body.substr(0, 10));
            co_await hold();
            co_return false;
        case behavior::slow_head:
        case behavior::slow_body: {
            const std::string whole = ok(answer_content(id));
            const std::size_t at_once =
                opts_.how == behavior::slow_head ? 0 : whole.size() - answer_body.size();
            co_await write(socket, whole.substr(0, at_once));
            for (std::size_t i = at_once; i < whole.size(); ++i) {
                co_await pause(1s);
                co_await write(socket, whole.substr(i, 1));
            }
            co_return true;
        }
        case behavior::close_after_status:
            co_await write(socket, "HTTP/1.1 200 OK\r\n");
            co_return false;
        case behavior::short_body:
            co_await write(socket,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 500\r\n\r\n" +
                               answer_body.substr(0, 100));
            co_return false;
        case behavior::reset_before_head:
            reset(socket);
            co_return false;
        case behavior::reset_after_head:
            co_await write(socket,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 200\r\n\r\n");
            co_await pause(20ms); // the head arrives alone, then the reset
            reset(socket);
            co_return false;
        case behavior::not_http:
            co_await write(socket, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
            co_return false;
        case behavior::huge_length:
        case behavior::huge_until_close: {
            co_await write(socket,
                           opts_.how == behavior::huge_length
                               ? "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 104857600\r\n\r\n"
                               : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Connection: close\r\n\r\n");
            const std::string piece(64 * 1024, ' ');
            for (int i = 0; i < 1600; ++i) // 1600 x 64 KiB = 100 MiB
                co_await write(socket, piece);
            co_return false;
        }
        case behavior::connection_close:
            co_await write(socket, response("200 OK", "Connection: close\r\n", answer_body, false));
            co_return false;
        case behavior::idle_close:
            co_await write(socket, ok(answer_content(id)));
            co_await pause(20ms);
            co_return false;
        case behavior::sse_cut:
        case behavior::sse_error:
        case behavior::sse_stall:
        case behavior::sse_huge:
            co_await stream_events(socket, id);
            co_return false;
        default:
            co_await write(socket, reply_to(id, attempt, authorization));
            co_return true;
        }
    }

    // The event-stream behaviours: a close-delimited text/event-stream body.
    boost::asio::awaitable<void> stream_events(tcp::socket& socket, int id) {
        co_await write(socket,
                       "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                       "Connection: close\r\n\r\n" +
                           content_event(answer_content(id)));
        switch (opts_.how) {
        case behavior::sse_cut:
            co_await write(socket, content_event(" more").substr(0, 30));
            break;
        case behavior::sse_error:
            co_await write(
                socket,
                "data: {\"error\":{\"message\":\"The server had an error while processing your "
                "request.\",\"type\":\"server_error\",\"code\":null}}\n\n");
            break;
        case behavior::sse_stall:
            co_await hold();
            break;
        default: { // sse_huge
            std::string events;
            const std::string one = content_event(std::string(1000, 'x'));
            while (events.size() < 64 * 1024)
                events += one;
            for (std::size_t sent = 0; sent < 100u * 1024 * 1024; sent += events.size())
                co_await write(socket, events);
            co_await write(socket, "data: [DONE]\n\n");
        }
        }
    }

    static std::string content_event(const std::string& content) {
        return R"(data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":")" +
               content + "\"}}]}\n\n";
    }

    // Holds the connection open, silent, for longer than the server runs.
    boost::asio::awaitable<void> hold() {
        co_await pause(opts_.run_for + std::chrono::seconds(10));
    }

    boost::asio::awaitable<void> pause(std::chrono::steady_clock::duration d) {
        boost::asio::steady_timer wait(ioc_, d);
        co_await wait.async_wait(boost::asio::use_awaitable);
    }

    // Closes with a TCP reset (RST) instead of the orderly FIN.
    static void reset(tcp::socket& socket) {
        boost::system::error_code ignored;
        socket.set_option(tcp::socket::linger(true, 0), ignored);
        socket.close(ignored);
    }

    // The bytes written for one request, for every behaviour that answers with fixed bytes.
    std::string reply_to(int id, int attempt, const std::string& authorization) const {
        switch (opts_.how) {
        case behavior::chunk_overflow:
            return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"
                   "100000000000000000a\r\n{\"id\":\"c\"}\r\n0\r\n\r\n";
        case behavior::bad_status_line:
            return "HTTP/1.1 2x0 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                   "\r\n{}";
        case behavior::huge_header:
            return response("200 OK",
                            ("X-Padding: " + std::string(1024 * 1024, 'p') + "\r\n").c_str(),
                            completion(answer_content(id)));
        case behavior::not_completion:
            return response("200 OK", "", R"({"object":"list","data":[]})");
        case behavior::html: {
            const std::string page = "<html><head><title>502 Bad Gateway</title></head><body>"
                                     "<h1>502 Bad Gateway</h1></body></html>";
            return "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " +
                   std::to_string(page.size()) + "\r\n\r\n" + page;
        }
        case behavior::truncated_json: {
            const std::string whole = completion(answer_content(id));
            return response("200 OK", "", whole.substr(0, whole.size() / 2));
        }
        case behavior::retry_hint:
            return response(
                "429 Too Many Requests",
                (opts_.hint.empty() ? std::string() : opts_.hint + "\r\n").c_str(),
                R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})");
        case behavior::quota:
            return response(
                "429 Too Many Requests",
                "",
                R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
        case behavior::bad_request:
            return response(
                "400 Bad Request",
                "",
                R"({"error":{"message":"Invalid value for 'messages': expected an array.","type":"invalid_request_error","param":"messages","code":null}})");
        case behavior::flaky_500:
            if (attempt % 2 == 1)
                return response(
                    "500 Internal Server Error",
                    "",
                    R"({"error":{"message":"The server had an error while processing your request.","type":"server_error","code":null}})");
            return ok(answer_content(id));
        case behavior::redirect_307:
            return response(
                "307 Temporary Redirect", ("Location: " + opts_.location + "\r\n").c_str(), "");
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

    // Counts a request for line `id`; returns how many that line has had, this one included.
    int count(int id) {
        std::lock_guard<std::mutex> lock(mutex_);
        ++total_;
        return ++attempts_[id];
    }

    static std::string response(const char* status,
                                const char* extra_headers,
                                std::string body,
                                bool keep_alive = true) {
        std::string out = "HTTP/1.1 ";
        out += status;
        out += "\r\nContent-Type: application/json\r\n";
        if (keep_alive)
            out += "Connection: keep-alive\r\n";
        out += extra_headers;
        out += "Content-Length: ";
        out += std::to_string(body.size());
        out += "\r\n\r\n";
        out += body;
        return out;
    }

    static std::string completion(const std::string& content) {
        return R"({"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":")" +
               content +
               R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})";
    }

    static std::string ok(const std::string& content) {
        return response("200 OK", "", completion(content));
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
    boost::asio::ssl::context tls_{boost::asio::ssl::context::tls_server};
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
