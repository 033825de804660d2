// The pool's own plain TCP stream (src/transport/plain_stream.hpp) against a small server on
// 127.0.0.1 that runs a script per test on its own thread: what arrives, how it ends, and
// when a deadline cuts a read or a write.
#include "transport/plain_stream.hpp"

#include "support/stream_io.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <catch2/catch.hpp>

#include <csignal>

#include <array>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace plain_stream_test {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using sluice::error_code;
using sluice::detail::plain_stream;
using sluice::test::gathered_request;
using sluice::test::pattern;
using namespace std::chrono_literals;

// Accepts one connection and runs `script` on it (blocking calls, on its own thread). Joined
// at scope end; a script must end by itself.
class script_server {
public:
    explicit script_server(std::function<void(tcp::socket&)> script)
        : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
        thread_ = std::thread([this, script = std::move(script)] {
            try {
                tcp::socket s = acceptor_.accept();
                script(s);
            } catch (const std::exception&) {
                // the client went away: the test checks what it saw
            }
        });
    }
    ~script_server() { thread_.join(); }
    script_server(const script_server&) = delete;
    script_server& operator=(const script_server&) = delete;

    tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }

private:
    asio::io_context ioc_;
    tcp::acceptor acceptor_;
    std::thread thread_;
};

// Until the client closes: the server's side of a test that ends at the client.
void wait_for_close(tcp::socket& s) {
    char byte;
    error_code ignored;
    while (!ignored)
        s.read_some(asio::buffer(&byte, 1), ignored);
}

// The client side: a plain_stream, connected, owned as the pool owns it (its timer's handler
// runs only while the owner lives).
struct client {
    asio::io_context ioc;
    std::shared_ptr<plain_stream> stream = std::make_shared<plain_stream>(ioc.get_executor());

    explicit client(const tcp::endpoint& ep) {
        stream->set_owner(stream);
        stream->next_layer().socket().connect(ep);
    }

    std::pair<error_code, std::string> read_some(std::size_t room = 64 * 1024) {
        return sluice::test::read_some(ioc, *stream, room);
    }
    std::pair<error_code, std::size_t> write(asio::const_buffer data) {
        return sluice::test::write_all(ioc, *stream, data);
    }
};

} // namespace

TEST_CASE("plain_stream: a gathered request and a 1 MiB answer arrive whole") {
    const std::string answer = pattern(1 << 20);
    std::string received;
    {
        script_server server([&](tcp::socket& s) {
            std::array<char, 11> request{};
            asio::read(s, asio::buffer(request));
            received.assign(request.data(), request.size());
            asio::write(s, asio::buffer(answer));
            wait_for_close(s);
        });
        client c(server.endpoint());
        const auto [ec, n] = sluice::test::write_all(c.ioc, *c.stream, gathered_request());
        REQUIRE_FALSE(ec);
        CHECK(n == 11);
        CHECK(sluice::test::read_exactly(c.ioc, *c.stream, answer.size()) == answer);
        c.stream->next_layer().socket().close();
    }
    CHECK(received == "POST /v1 x\n");
}

TEST_CASE("plain_stream: Beast reads an HTTP response over it") {
    script_server server([](tcp::socket& s) {
        const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        // In two writes, the body apart: the read waits for the socket between them.
        asio::write(s, asio::buffer(answer.data(), answer.size() - 5));
        std::this_thread::sleep_for(50ms);
        asio::write(s, asio::buffer(answer.data() + answer.size() - 5, 5));
        wait_for_close(s);
    });
    client c(server.endpoint());
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    std::optional<error_code> done;
    http::async_read(*c.stream, buffer, res, [&](error_code ec, std::size_t) { done = ec; });
    while (!done && c.ioc.run_one() > 0) {
    }
    REQUIRE(done.has_value());
    CHECK_FALSE(*done);
    CHECK(res.result_int() == 200);
    CHECK(res.body() == "hello");
    c.stream->next_layer().socket().close();
}

TEST_CASE("plain_stream: a close is an end of stream and a reset is connection_reset") {
    SECTION("close") {
        script_server server([](tcp::socket& s) {
            asio::write(s, asio::buffer("bye", 3));
            s.close();
        });
        client c(server.endpoint());
        std::string got;
        error_code ec;
        while (!ec) {
            auto [e, piece] = c.read_some();
            ec = e;
            got += piece;
        }
        CHECK(got == "bye");
        CHECK(ec == asio::error::eof);
    }
    SECTION("reset") {
        std::promise<void> read_first;
        auto read_first_done = read_first.get_future();
        script_server server([&](tcp::socket& s) {
            asio::write(s, asio::buffer("bye", 3));
            read_first_done.wait();
            s.set_option(asio::socket_base::linger(true, 0));
            s.close(); // RST
        });
        client c(server.endpoint());
        auto [ec1, first] = c.read_some();
        read_first.set_value();
        REQUIRE_FALSE(ec1);
        CHECK(first == "bye");
        auto [ec2, second] = c.read_some();
        CHECK(ec2 == asio::error::connection_reset);
        CHECK(second.empty());
    }
}

TEST_CASE("plain_stream: a read that nothing answers is cut at its deadline") {
    script_server server(wait_for_close);
    client c(server.endpoint());
    const auto start = std::chrono::steady_clock::now();
    c.stream->expires_at(start + 200ms);
    auto [ec, got] = c.read_some();
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(ec == beast::error::timeout);
    CHECK(got.empty());
    CHECK(took >= 200ms);
    CHECK(took < 10s); // bounded, with room for a loaded machine
    // As beast::tcp_stream's: a timeout closes the connection, and the next read fails alike.
    CHECK_FALSE(c.stream->next_layer().socket().is_open());
    auto [ec2, got2] = c.read_some();
    CHECK(ec2 == beast::error::timeout);
}

TEST_CASE("plain_stream: a write the peer does not read is cut at its deadline") {
    // The server reads nothing until the client gives up: the socket's buffers fill, and the
    // write waits for the socket to be writable.
    std::promise<void> gave_up;
    auto gave_up_done = gave_up.get_future();
    script_server server([&](tcp::socket&) { gave_up_done.wait(); });
    client c(server.endpoint());
    const std::string chunk(1 << 20, 'x');
    const auto start = std::chrono::steady_clock::now();
    c.stream->expires_at(start + 300ms);
    error_code ec;
    std::size_t total = 0;
    for (int i = 0; i < 256 && !ec; ++i) { // 256 MiB: far more than loopback buffers hold
        auto [e, n] = c.write(asio::buffer(chunk));
        ec = e;
        total += n;
    }
    const auto took = std::chrono::steady_clock::now() - start;
    gave_up.set_value();
    CHECK(ec == beast::error::timeout);
    CHECK(total > 0);
    CHECK(took >= 300ms);
    CHECK(took < 10s);
}

TEST_CASE("plain_stream: a deadline moved later while the timer waits for the earlier one holds") {
    // The first read arms the timer for the first deadline and completes long before it; the
    // second read, under a later deadline, is still waiting when that timer fires.
    std::promise<void> moved;
    auto moved_done = moved.get_future();
    script_server server([&](tcp::socket& s) {
        asio::write(s, asio::buffer("a", 1));
        moved_done.wait();
        std::this_thread::sleep_for(1200ms); // past the first deadline, within the second
        asio::write(s, asio::buffer("b", 1));
        wait_for_close(s);
    });
    client c(server.endpoint());
    c.stream->expires_at(std::chrono::steady_clock::now() + 1s);
    auto [ec1, first] = c.read_some();
    REQUIRE_FALSE(ec1);
    CHECK(first == "a");
    c.stream->expires_at(std::chrono::steady_clock::now() + 60s);
    moved.set_value();
    auto [ec2, second] = c.read_some();
    CHECK_FALSE(ec2);
    CHECK(second == "b");
    c.stream->next_layer().socket().close();
}

TEST_CASE("plain_stream: a read that finds its bytes at once still completes posted") {
    std::promise<void> sent;
    auto sent_done = sent.get_future();
    script_server server([&](tcp::socket& s) {
        asio::write(s, asio::buffer("ready", 5));
        sent.set_value();
        wait_for_close(s);
    });
    client c(server.endpoint());
    sent_done.wait();
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (c.stream->next_layer().socket().available() < 5 &&
           std::chrono::steady_clock::now() < give_up)
        std::this_thread::yield();
    std::string buf(16, '\0');
    std::optional<std::size_t> got;
    c.stream->async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        got = n;
    });
    CHECK_FALSE(got.has_value()); // never inside the initiating call
    c.ioc.run();
    REQUIRE(got.has_value());
    CHECK(*got == 5);
    c.stream->next_layer().socket().close();
}

TEST_CASE("plain_stream: a cancelled read completes with operation_aborted") {
    script_server server(wait_for_close);
    client c(server.endpoint());
    std::string buf(16, '\0');
    std::optional<error_code> got;
    c.stream->async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t) { got = ec; });
    c.ioc.poll();
    CHECK_FALSE(got.has_value());
    c.stream->next_layer().socket().cancel();
    c.ioc.run();
    REQUIRE(got.has_value());
    CHECK(*got == asio::error::operation_aborted);
    c.stream->next_layer().socket().close();
}

TEST_CASE("plain_stream: writing to a peer that reset is an error, not SIGPIPE") {
    // The default action of SIGPIPE ends the process: a library must not raise it.
    const auto previous = std::signal(SIGPIPE, SIG_DFL);
    {
        script_server server([](tcp::socket& s) {
            char byte;
            s.read_some(asio::buffer(&byte, 1));
            s.set_option(asio::socket_base::linger(true, 0));
            s.close(); // RST
        });
        client c(server.endpoint());
        const std::string chunk(64 * 1024, 'x');
        error_code ec;
        for (int i = 0; i < 200 && !ec; ++i) {
            ec = c.write(asio::buffer(chunk)).first;
            if (!ec)
                std::this_thread::sleep_for(5ms);
        }
        CHECK((ec == asio::error::connection_reset || ec == asio::error::broken_pipe));
    }
    std::signal(SIGPIPE, previous);
}

TEST_CASE("plain_stream: a stream destroyed with its timer armed leaves nothing behind") {
    script_server server([](tcp::socket& s) {
        std::this_thread::sleep_for(50ms); // the client's read waits for it: its timer is armed
        asio::write(s, asio::buffer("a", 1));
        wait_for_close(s);
    });
    auto c = std::make_unique<client>(server.endpoint());
    c->stream->expires_at(std::chrono::steady_clock::now() + 200ms);
    auto [ec, got] = c->read_some(); // the timer is armed for 200 ms, and stays armed
    REQUIRE_FALSE(ec);
    CHECK(got == "a");
    c->stream->next_layer().socket().close();
    c->stream.reset();
    // The timer's wait completes (cancelled) after the stream is gone: nothing touches it.
    c->ioc.run_for(300ms);
}

} // namespace plain_stream_test
