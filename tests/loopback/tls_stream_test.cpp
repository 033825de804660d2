// The pool's own TLS stream (src/transport/tls_stream.hpp) against a small TLS server on
// 127.0.0.1 that runs a script per test on its own thread: what arrives, how it ends, and
// when a deadline cuts it.
#include "transport/tls_stream.hpp"

#include <sluice/transport/tls_context.hpp>

#include "mock/self_signed.hpp"
#include "support/stream_io.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>

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
namespace tls_stream_test {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
using sluice::error_code;
using sluice::detail::tls_stream;
using sluice::test::gathered_request;
using sluice::test::pattern;
using namespace std::chrono_literals;

using server_stream = asio::ssl::stream<tcp::socket>;

// Accepts one connection, completes the TLS handshake and runs `script` on it (blocking
// calls, on its own thread). Joined at scope end; a script must end by itself.
class script_tls_server {
public:
    explicit script_tls_server(std::function<void(server_stream&)> script)
        : ctx_(asio::ssl::context::tls_server)
        , acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
        const auto pem = sluice::detail::make_self_signed_certificate();
        ctx_.use_certificate_chain(asio::buffer(pem.certificate_pem));
        ctx_.use_private_key(asio::buffer(pem.private_key_pem), asio::ssl::context::pem);
        thread_ = std::thread([this, script = std::move(script)] {
            try {
                server_stream s(acceptor_.accept(), ctx_);
                s.handshake(asio::ssl::stream_base::server);
                script(s);
            } catch (const std::exception&) {
                // the client went away: the test checks what it saw
            }
        });
    }
    ~script_tls_server() { thread_.join(); }
    script_tls_server(const script_tls_server&) = delete;
    script_tls_server& operator=(const script_tls_server&) = delete;

    tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }

private:
    asio::io_context ioc_;
    asio::ssl::context ctx_;
    tcp::acceptor acceptor_;
    std::thread thread_;
};

// The client side: a tls_stream, connected and past its handshake.
struct client {
    asio::io_context ioc;
    asio::ssl::context ctx = sluice::make_client_tls_context({{}, {}, true});
    std::shared_ptr<tls_stream> stream = std::make_shared<tls_stream>(ioc.get_executor(), ctx);

    explicit client(const tcp::endpoint& ep) {
        stream->set_owner(stream);
        stream->next_layer().socket().connect(ep);
        error_code ec;
        stream->attach(ec);
        REQUIRE_FALSE(ec);
        std::optional<error_code> done;
        stream->async_handshake([&](error_code e) { done = e; });
        ioc.run();
        ioc.restart();
        REQUIRE(done.has_value());
        REQUIRE_FALSE(*done);
    }

    std::pair<error_code, std::string> read_some(std::size_t room = 64 * 1024) {
        return sluice::test::read_some(ioc, *stream, room);
    }
};

// Until both of the server's records are in the client's socket, so that its first read takes
// them together (OpenSSL reads ahead all the socket holds). TLS 1.3 records of one byte of data
// and of an alert are 23 and 24 bytes (a 5-byte header, the content type, a 16-byte tag).
// Bounded: a server that sends less fails the test's checks instead of hanging it.
void wait_for_bytes(tls_stream& stream, std::size_t n) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (stream.next_layer().socket().available() < n &&
           std::chrono::steady_clock::now() < give_up)
        std::this_thread::yield();
}

// Reads the server's first byte ("s"; with it the session tickets sent after the handshake),
// then lets the server go on: the socket then holds only what the server sends next.
void sync_with(client& c, std::promise<void>& synced) {
    auto [ec, got] = c.read_some(1);
    synced.set_value(); // first: a failed check must not leave the server waiting
    REQUIRE_FALSE(ec);
    REQUIRE(got == "s");
}

} // namespace

TEST_CASE("tls_stream: a gathered request and a 1 MiB answer arrive whole") {
    const std::string answer = pattern(1 << 20);
    std::string received;
    {
        script_tls_server server([&](server_stream& s) {
            std::array<char, 11> request{};
            asio::read(s, asio::buffer(request));
            received.assign(request.data(), request.size());
            asio::write(s, asio::buffer(answer));
        });
        client c(server.endpoint());
        const auto [ec, n] = sluice::test::write_all(c.ioc, *c.stream, gathered_request());
        REQUIRE_FALSE(ec);
        CHECK(n == 11);
        CHECK(sluice::test::read_exactly(c.ioc, *c.stream, answer.size()) == answer);
    }
    CHECK(received == "POST /v1 x\n");
}

TEST_CASE("tls_stream: a close_notify is an end of stream and a cut without one is truncation") {
    SECTION("close_notify") {
        script_tls_server server([](server_stream& s) {
            asio::write(s, asio::buffer("bye", 3));
            error_code ignored;
            s.shutdown(ignored); // sends close_notify, then waits for the client's
        });
        client c(server.endpoint());
        auto [ec1, first] = c.read_some();
        REQUIRE_FALSE(ec1);
        CHECK(first == "bye");
        auto [ec2, second] = c.read_some();
        CHECK(ec2 == asio::error::eof);
        CHECK(second.empty());
        c.stream->next_layer().socket().close(); // lets the server's shutdown return
    }
    SECTION("a TCP close with no close_notify") {
        script_tls_server server([](server_stream& s) {
            asio::write(s, asio::buffer("bye", 3));
            s.next_layer().close();
        });
        client c(server.endpoint());
        auto [ec1, first] = c.read_some();
        REQUIRE_FALSE(ec1);
        CHECK(first == "bye");
        auto [ec2, second] = c.read_some();
        CHECK(ec2 == asio::ssl::error::stream_truncated);
        CHECK(second.empty());
    }
}

TEST_CASE("tls_stream: a read that nothing answers is cut at its deadline") {
    script_tls_server server([](server_stream& s) {
        char byte;
        error_code ignored;
        s.read_some(asio::buffer(&byte, 1), ignored); // until the client closes
    });
    client c(server.endpoint());
    const auto start = std::chrono::steady_clock::now();
    c.stream->expires_at(start + 200ms);
    auto [ec, got] = c.read_some();
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(ec == beast::error::timeout);
    CHECK(got.empty());
    CHECK(took >= 200ms);
    CHECK(took < 10s); // bounded, with room for a loaded machine
    c.stream->next_layer().socket().close();
}

TEST_CASE("tls_stream: a deadline moved later while the timer waits for the earlier one holds") {
    // The first read arms the timer for the first deadline and completes long before it; the
    // second read, under a later deadline, is still waiting when that timer fires.
    std::promise<void> moved;
    auto moved_done = moved.get_future();
    script_tls_server server([&](server_stream& s) {
        asio::write(s, asio::buffer("a", 1));
        moved_done.wait();
        std::this_thread::sleep_for(1200ms); // past the first deadline, within the second
        asio::write(s, asio::buffer("b", 1));
        char byte;
        error_code ignored;
        s.read_some(asio::buffer(&byte, 1), ignored);
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

TEST_CASE(
    "tls_stream: a deadline that passed while nothing waited fails the next read when posted") {
    script_tls_server server([](server_stream& s) {
        char byte;
        error_code ignored;
        s.read_some(asio::buffer(&byte, 1), ignored);
    });
    client c(server.endpoint());
    c.stream->expires_at(std::chrono::steady_clock::now() - 1ms);
    std::string buf(16, '\0');
    bool ran = false;
    error_code got;
    c.stream->async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t) {
        ran = true;
        got = ec;
    });
    CHECK_FALSE(ran); // never inside the initiating call
    c.ioc.run();
    CHECK(ran);
    CHECK(got == beast::error::timeout);
    c.stream->next_layer().socket().close();
}

TEST_CASE("tls_stream: a cancelled read completes with operation_aborted") {
    script_tls_server server([](server_stream& s) {
        char byte;
        error_code ignored;
        s.read_some(asio::buffer(&byte, 1), ignored);
    });
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

TEST_CASE("tls_stream: writing to a peer that reset is an error, not SIGPIPE") {
    // The default action of SIGPIPE ends the process: a library must not raise it.
    const auto previous = std::signal(SIGPIPE, SIG_DFL);
    {
        script_tls_server server([](server_stream& s) {
            char byte;
            s.read_some(asio::buffer(&byte, 1));
            s.next_layer().set_option(asio::socket_base::linger(true, 0));
            s.next_layer().close(); // RST
        });
        client c(server.endpoint());
        const std::string chunk(64 * 1024, 'x');
        error_code ec;
        for (int i = 0; i < 200 && !ec; ++i) {
            ec = sluice::test::write_all(c.ioc, *c.stream, asio::buffer(chunk)).first;
            if (!ec)
                std::this_thread::sleep_for(5ms);
        }
        CHECK((ec == asio::error::connection_reset || ec == asio::error::broken_pipe));
    }
    std::signal(SIGPIPE, previous);
}

TEST_CASE("tls_stream: a stream destroyed with its timer armed leaves nothing behind") {
    script_tls_server server([](server_stream& s) {
        asio::write(s, asio::buffer("a", 1));
        char byte;
        error_code ignored;
        s.read_some(asio::buffer(&byte, 1), ignored);
    });
    auto c = std::make_unique<client>(server.endpoint());
    c->stream->expires_at(std::chrono::steady_clock::now() + 100ms);
    auto [ec, got] = c->read_some(); // the timer is armed for 100 ms, and stays armed
    REQUIRE_FALSE(ec);
    CHECK(got == "a");
    c->stream->next_layer().socket().close();
    c->stream.reset();
    // The timer's wait completes (cancelled) after the stream is gone: nothing touches it.
    c->ioc.run_for(300ms);
}

TEST_CASE("tls_stream: a close_notify behind an answer is not unread data but more data is") {
    // The pool asks after each answer whether anything arrived behind it: more data is a
    // stray answer, a close_notify only ends the connection. Both are in OpenSSL's read-ahead
    // buffer, received with the answer and not yet decrypted, when it asks.
    SECTION("close_notify") {
        std::promise<void> synced;
        auto synced_done = synced.get_future();
        script_tls_server server([&](server_stream& s) {
            asio::write(s, asio::buffer("s", 1));
            synced_done.wait();
            asio::write(s, asio::buffer("a", 1));
            error_code ignored;
            s.shutdown(ignored); // close_notify, then until the client closes
        });
        client c(server.endpoint());
        sync_with(c, synced);
        wait_for_bytes(*c.stream, 23 + 24);
        auto [ec, got] = c.read_some(1);
        REQUIRE_FALSE(ec);
        CHECK(got == "a");
        CHECK(c.stream->has_pending());
        CHECK_FALSE(c.stream->has_unread_data());
        CHECK(c.stream->read_ended());
        c.stream->next_layer().socket().close();
    }
    SECTION("a second record of data") {
        std::promise<void> synced;
        auto synced_done = synced.get_future();
        script_tls_server server([&](server_stream& s) {
            asio::write(s, asio::buffer("s", 1));
            synced_done.wait();
            asio::write(s, asio::buffer("a", 1));
            asio::write(s, asio::buffer("b", 1));
            char byte;
            error_code ignored;
            s.read_some(asio::buffer(&byte, 1), ignored);
        });
        client c(server.endpoint());
        sync_with(c, synced);
        wait_for_bytes(*c.stream, 23 + 23);
        auto [ec, got] = c.read_some(1);
        REQUIRE_FALSE(ec);
        CHECK(got == "a");
        CHECK(c.stream->has_unread_data());
        CHECK_FALSE(c.stream->read_ended());
        auto [ec2, second] = c.read_some(1);
        CHECK_FALSE(ec2);
        CHECK(second == "b"); // peeked, not taken
        c.stream->next_layer().socket().close();
    }
}

} // namespace tls_stream_test
