// The connection pool against the mock server on 127.0.0.1: reuse, limits, replacement of
// connections the server closes, timeouts and size limits.
#include "support/loopback.hpp"
#include "support/one_answer_server.hpp"

#include <sluice/parse/completion_parser.hpp>
#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/tls_context.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace connection_pool_test {

using namespace sluice;
using sluice::test::answer_body;
using sluice::test::answer_style;
using sluice::test::one_answer_server;
namespace asio = boost::asio;

namespace {

struct pool_run {
    std::vector<http_response> responses;
    pool_stats stats;
    std::size_t most_open = 0; // the most connections open at any completion
};

// Sends `n` exchanges (at most `parallel` at a time) through a fresh pool and collects them.
pool_run exchange_many(const std::string& base_url,
                       pool_options opts,
                       int n,
                       int parallel,
                       int max_tokens = 64,
                       const tls_options& tls = {}) {
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(base_url, ec);
    REQUIRE_FALSE(ec);
    auto ctx = make_client_tls_context(tls);
    request_headers h;
    h.target = ep.target("/chat/completions");
    h.authorization = "Bearer sk-test";
    connection_pool pool(ioc.get_executor(), ep, h, opts, ep.tls ? &ctx : nullptr);

    pool_run out;
    std::vector<std::string> bodies;
    for (int i = 0; i < n; ++i)
        bodies.push_back(test::chat_body(i, max_tokens));
    int next = 0, done = 0;
    std::function<void()> launch = [&] {
        const int i = next++;
        pool.async_exchange(bodies[static_cast<std::size_t>(i)], [&](http_response r) {
            out.responses.push_back(std::move(r));
            out.stats = pool.stats();
            out.most_open = std::max(out.most_open, out.stats.open);
            if (++done == n)
                pool.close();
            else if (next < n)
                launch();
        });
    };
    for (int i = 0; i < std::min(parallel, n); ++i)
        launch();
    ioc.run();
    return out;
}

} // namespace

TEST_CASE("sequential exchanges reuse one keep-alive connection") {
    test::loopback_mock mock;
    // 200, not more: each answer on a reused connection waits out reuse_quiet_period (10 ms)
    // before it is delivered.
    const auto run = exchange_many(mock.server().base_url(), {}, 200, 1);
    REQUIRE(run.responses.size() == 200);
    for (const auto& r : run.responses) {
        REQUIRE_FALSE(r.ec);
        CHECK(r.status == 200);
    }
    CHECK(run.stats.connects == 1);
    CHECK(mock.server().stats().connections == 1);
    const auto& r = run.responses.front();
    CHECK(r.body.find("\"chat.completion\"") != std::string::npos);
    CHECK(r.body.capacity() >= r.body.size() + parse_padding); // room to parse in place
    CHECK_FALSE(r.request_id.empty());
    CHECK(r.sent <= r.first_byte);
}

TEST_CASE("no more than max_connections are opened under load") {
    test::loopback_mock mock;
    pool_options o;
    o.max_connections = 8;
    const auto run = exchange_many(mock.server().base_url(), o, 500, 500);
    REQUIRE(run.responses.size() == 500);
    for (const auto& r : run.responses)
        CHECK(r.status == 200);
    CHECK(run.stats.connects == 8);
    CHECK(run.most_open <= 8);
    CHECK(mock.server().stats().connections == 8);
}

TEST_CASE("connections the server closes are replaced and nothing is lost") {
    mock_options mo;
    mo.close_every = 3;
    test::loopback_mock mock(mo);
    pool_options o;
    o.max_connections = 4;
    const auto run = exchange_many(mock.server().base_url(), o, 300, 16);
    REQUIRE(run.responses.size() == 300);
    for (const auto& r : run.responses) {
        REQUIRE_FALSE(r.ec);
        CHECK(r.status == 200);
    }
    CHECK(run.stats.connects >= 100);
    CHECK(mock.server().stats().ok == 300);
}

TEST_CASE("a response larger than max_body_size is an error, not an allocation") {
    mock_options mo;
    mo.answer_tokens = 2000; // about 14 kB of text
    test::loopback_mock mock(mo);
    pool_options o;
    o.max_body_size = 4096;
    const auto run = exchange_many(mock.server().base_url(), o, 2, 1, 4000);
    REQUIRE(run.responses.size() == 2);
    for (const auto& r : run.responses) {
        CHECK(r.ec == errc::body_too_large);
        CHECK(std::string(r.failed_step) == "read (body over pool.max_body_size)");
        CHECK(r.body.size() <= 4096 + parse_padding);
    }
}

TEST_CASE("a refused connection fails at the connect step") {
    std::string url;
    {
        test::loopback_mock mock;
        url = mock.server().base_url();
    }
    const auto run = exchange_many(url, {}, 1, 1);
    REQUIRE(run.responses.size() == 1);
    CHECK(run.responses[0].ec == asio::error::connection_refused);
    CHECK(std::string(run.responses[0].failed_step) == "connect");
}

// Not under the sanitizers: their runtime needs descriptors of its own (UBSan checks that memory
// is readable through a pipe), and with none left it reports the objects it cannot check.
#ifndef SLUICE_SANITIZED
TEST_CASE("a socket the open-file limit refuses is named, not reported as cancelled") {
    test::loopback_mock mock;
    const std::string url = mock.server().base_url();
    pool_run run;
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(url, ec);
    request_headers h;
    h.target = ep.target("/chat/completions");
    connection_pool pool(ioc.get_executor(), ep, h, {}, nullptr);
    // Every descriptor under a lowered limit taken: the connection's socket finds none.
    rlimit saved{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
    rlimit low = saved;
    low.rlim_cur = 1024;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    std::vector<int> fillers;
    for (int fd; (fd = ::dup(0)) >= 0 && fillers.size() < 1024;)
        fillers.push_back(fd);
    pool.async_exchange(test::chat_body(0, 8), [&](http_response r) {
        run.responses.push_back(std::move(r));
        pool.close();
    });
    ioc.run();
    for (const int fd : fillers)
        ::close(fd);
    setrlimit(RLIMIT_NOFILE, &saved);
    REQUIRE(run.responses.size() == 1);
    CHECK(run.responses[0].ec == asio::error::no_descriptors);
    CHECK(std::string(run.responses[0].failed_step) == "connect");
}

#endif

TEST_CASE("no more than max_connecting connections are opened at once") {
    // A listener that never accepts: the kernel completes the TCP connects, and every TLS
    // handshake then waits for an answer that does not come.
    asio::io_context ioc;
    asio::ip::tcp::acceptor silent(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    error_code ec;
    const endpoint ep = endpoint::parse(
        "https://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/v1", ec);
    REQUIRE_FALSE(ec);
    // Verifying nothing, so that no first contact holds the others back (that is its own test).
    tls_options insecure;
    insecure.insecure = true;
    auto ctx = make_client_tls_context(insecure);
    request_headers h;
    h.target = ep.target("/chat/completions");
    pool_options opts;
    opts.max_connections = 8;
    opts.max_connecting = 3;
    connection_pool pool(ioc.get_executor(), ep, h, opts, &ctx);
    int failed = 0;
    for (int i = 0; i < 8; ++i)
        pool.async_exchange(test::chat_body(i, 8),
                            [&](http_response r) { failed += r.ec ? 1 : 0; });
    pool_stats seen;
    asio::steady_timer look(ioc, std::chrono::milliseconds(300));
    look.async_wait([&](error_code) {
        seen = pool.stats();
        pool.close();
    });
    ioc.run();
    CHECK(seen.connects == 3);
    CHECK(seen.open == 3);
    CHECK(seen.waiting == 5);
    CHECK(failed == 8); // closed: every exchange ends, none is lost
}

TEST_CASE("a server slower than the request timeout gives a timeout") {
    mock_options mo;
    mo.latency = std::chrono::milliseconds(2000);
    test::loopback_mock mock(mo);
    pool_options o;
    o.request_timeout = std::chrono::milliseconds(100);
    o.tls_buffered_connections = GENERATE(std::size_t{256}, std::size_t{0});
    INFO("tls_buffered_connections " << o.tls_buffered_connections);
    const auto run = exchange_many(mock.server().base_url(), o, 1, 1);
    REQUIRE(run.responses.size() == 1);
    CHECK(std::string(error_kind(run.responses[0].ec)) == "timeout");
}

TEST_CASE("idle connections are closed after idle_timeout") {
    test::loopback_mock mock;
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(mock.server().base_url(), ec);
    pool_options o;
    o.idle_timeout = std::chrono::milliseconds(50);
    request_headers h;
    h.target = ep.target("/chat/completions");
    connection_pool pool(ioc.get_executor(), ep, h, o, nullptr);
    const std::string body = test::chat_body(1);
    pool_stats after_answer, after_idle;
    asio::steady_timer wait(ioc);
    pool.async_exchange(body, [&](http_response r) {
        CHECK(r.status == 200);
        after_answer = pool.stats();
        wait.expires_after(std::chrono::milliseconds(300));
        wait.async_wait([&](error_code) {
            after_idle = pool.stats();
            pool.close();
        });
    });
    ioc.run();
    CHECK(after_answer.open == 1);
    CHECK(after_answer.idle == 1);
    CHECK(after_idle.open == 0);
    CHECK(after_idle.idle == 0);
}

TEST_CASE("a connection the server closed while idle is never lent again") {
    one_answer_server server(answer_style::keep_alive);
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(server.base_url(), ec);
    REQUIRE_FALSE(ec);
    request_headers h;
    h.target = ep.target("/chat/completions");
    connection_pool pool(ioc.get_executor(), ep, h, {}, nullptr);
    const std::string body = test::chat_body(0);
    std::vector<http_response> responses;
    bool closed_seen = true;
    asio::steady_timer poll(ioc);
    // Each next exchange starts once the pool has let go of the connection the server closed
    // (nothing open): the close then surely arrived while the connection was idle, which is
    // the case under test. Without the idle read the pool never notices, and the wait fails.
    std::function<void()> launch;
    std::function<void(int)> wait_closed = [&](int tries) {
        if (pool.stats().open == 0)
            return launch();
        if (tries == 0) {
            closed_seen = false;
            return pool.close();
        }
        poll.expires_after(std::chrono::milliseconds(1));
        poll.async_wait([&, tries](error_code) { wait_closed(tries - 1); });
    };
    launch = [&] {
        pool.async_exchange(body, [&](http_response r) {
            responses.push_back(std::move(r));
            if (responses.size() == 5)
                return pool.close();
            wait_closed(5000);
        });
    };
    launch();
    ioc.run_for(std::chrono::seconds(20));
    REQUIRE(closed_seen);
    REQUIRE(responses.size() == 5);
    for (const auto& r : responses) {
        REQUIRE_FALSE(r.ec);
        CHECK(r.status == 200);
        CHECK(r.body == answer_body);
    }
    // Each exchange went straight to a new connection: no request written into a dead one.
    const pool_stats stats = pool.stats();
    CHECK(stats.replayed == 0);
    CHECK(stats.connects == 5);
    CHECK(server.requests().size() == 5);
}

TEST_CASE("a reused connection the server dropped is replayed once on a fresh one") {
    // Also on connections beyond tls_buffered_connections, which read 4 KiB at a time.
    pool_options o;
    o.tls_buffered_connections = GENERATE(std::size_t{256}, std::size_t{0});
    INFO("tls_buffered_connections " << o.tls_buffered_connections);
    one_answer_server server(answer_style::drop_next);
    const auto run = exchange_many(server.base_url(), o, 5, 1);
    REQUIRE(run.responses.size() == 5);
    for (const auto& r : run.responses) {
        REQUIRE_FALSE(r.ec);
        CHECK(r.status == 200);
        CHECK(r.body == answer_body);
    }
    // Exchanges 2 to 5 each found their connection closed under the request, before any byte
    // of an answer, and went again on a new one.
    CHECK(run.stats.replayed == 4);
    CHECK(run.stats.connects == 5);
    CHECK(server.dropped() == 4);
    // Every request was answered exactly once.
    CHECK(server.requests().size() == 5);
}

TEST_CASE("the request carries the fixed headers, its length and the body as given") {
    one_answer_server server(answer_style::keep_alive);
    const auto run = exchange_many(server.base_url(), {}, 1, 1);
    REQUIRE(run.responses.size() == 1);
    REQUIRE(server.requests().size() == 1);
    const std::string& req = server.requests()[0];
    const std::string body = test::chat_body(0);
    const auto port = server.base_url().substr(17, server.base_url().size() - 17 - 3);
    CHECK(req.rfind("POST /v1/chat/completions HTTP/1.1\r\n", 0) == 0);
    CHECK(req.find("\r\nHost: 127.0.0.1:" + port + "\r\n") != std::string::npos);
    CHECK(req.find("\r\nAuthorization: Bearer sk-test\r\n") != std::string::npos);
    CHECK(req.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
    CHECK(req.find("\r\nUser-Agent: sluice\r\n") != std::string::npos);
    CHECK(req.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n") !=
          std::string::npos);
    CHECK(req.substr(req.size() - body.size()) == body);
}

TEST_CASE("a request larger than the socket takes at once goes out whole, reused or not") {
    // The first write takes what the socket holds, or one TLS record; the rest follows as the
    // server reads. A byte lost, repeated or out of place breaks the JSON the mock parses.
    const bool tls = GENERATE(false, true);
    INFO((tls ? "TLS" : "plain HTTP"));
    test::loopback_mock mock(test::mock_with_tls(tls));
    tls_options t;
    if (tls)
        t.ca_pem = mock.server().certificate_pem();
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(mock.server().base_url(), ec);
    REQUIRE_FALSE(ec);
    auto ctx = make_client_tls_context(t);
    request_headers h;
    h.target = ep.target("/chat/completions");
    connection_pool pool(ioc.get_executor(), ep, h, {}, ep.tls ? &ctx : nullptr);
    std::vector<std::string> bodies;
    for (int i = 0; i < 4; ++i) {
        std::string words;
        for (int w = 0;
             words.size() < std::size_t{3} * 1024 * 1024 + 1000 * static_cast<std::size_t>(i);
             ++w)
            words += "w" + std::to_string(w) + ' ';
        bodies.push_back(R"({"model":"m","messages":[{"role":"user","content":")" + words +
                         R"("}],"max_tokens":4})");
    }
    std::vector<http_response> responses;
    std::function<void(std::size_t)> send = [&](std::size_t i) {
        pool.async_exchange(bodies[i], [&, i](http_response r) {
            responses.push_back(std::move(r));
            if (responses.size() == bodies.size())
                return pool.close();
            if (i + 2 < bodies.size())
                send(i + 2); // on the connection just freed
        });
    };
    send(0);
    send(1);
    ioc.run_for(std::chrono::seconds(60));
    REQUIRE(responses.size() == bodies.size());
    for (const auto& r : responses) {
        REQUIRE_FALSE(r.ec);
        CHECK(r.status == 200);
        CHECK(r.body.find("\"chat.completion\"") != std::string::npos);
    }
    CHECK(pool.stats().connects == 2);
    CHECK(mock.server().stats().requests == bodies.size());
}

TEST_CASE("the rate-limit and retry headers are read whatever their case") {
    one_answer_server server(answer_style::limited);
    const auto run = exchange_many(server.base_url(), {}, 1, 1);
    REQUIRE(run.responses.size() == 1);
    const http_response& r = run.responses[0];
    REQUIRE_FALSE(r.ec);
    CHECK(r.status == 429);
    CHECK(r.request_id == "req_abc");
    CHECK(r.retry_after == "2");
    CHECK(r.retry_after_ms == "1500");
    CHECK(r.should_retry == "true");
    CHECK(r.limit_requests == "60");
    CHECK(r.limit_tokens == "150000");
    CHECK(r.remaining_requests == "0");
    CHECK(r.remaining_tokens == "149000");
    CHECK(r.reset_requests == "1s");
    CHECK(r.reset_tokens == "6m0s");
    CHECK(r.meta().reset_tokens == "6m0s");
    CHECK(r.body == answer_body);
}

TEST_CASE("a chunked body arrives whole, with room to parse it in place") {
    one_answer_server server(answer_style::chunked);
    const auto run = exchange_many(server.base_url(), {}, 2, 1);
    REQUIRE(run.responses.size() == 2);
    for (const auto& r : run.responses) {
        REQUIRE_FALSE(r.ec);
        CHECK(r.body == answer_body);
        CHECK(r.body.capacity() >= r.body.size() + parse_padding);
    }
}

TEST_CASE("TLS connections beyond tls_buffered_connections carry long answers as the first do") {
    // They free OpenSSL's buffers before each wait and read 4 KiB at a time: answers of
    // about 40 KB, many records each, must arrive whole on them and on the buffered one.
    mock_options mo = test::mock_with_tls(true);
    mo.answer_tokens = 8000;
    test::loopback_mock mock(mo);
    tls_options t;
    t.ca_pem = mock.server().certificate_pem();
    pool_options o;
    o.tls_buffered_connections = 1;
    const auto run = exchange_many(mock.server().base_url(), o, 200, 8, 8000, t);
    REQUIRE(run.responses.size() == 200);
    for (const auto& r : run.responses) {
        REQUIRE_FALSE(r.ec);
        CHECK(r.status == 200);
        CHECK(r.body.size() > 32 * 1024);
        CHECK(r.body.find("\"chat.completion\"") != std::string::npos);
        CHECK(r.body.back() == '}');
    }
    CHECK(run.most_open > 1); // some of them went over the unbuffered connections
}

TEST_CASE("a body that ends with the connection is read whole and the connection not reused") {
    one_answer_server server(answer_style::until_eof);
    const auto run = exchange_many(server.base_url(), {}, 3, 1);
    REQUIRE(run.responses.size() == 3);
    for (const auto& r : run.responses) {
        REQUIRE_FALSE(r.ec);
        CHECK(r.body == answer_body);
    }
    CHECK(run.stats.connects == 3);
    CHECK(run.stats.replayed == 0); // the server said it would close: nothing to replay
}

TEST_CASE("a fresh connection reset before any answer is reported, not replayed") {
    mock_options mo;
    mo.faults.reset = 1;
    test::loopback_mock mock(mo);
    const auto run = exchange_many(mock.server().base_url(), {}, 1, 1);
    REQUIRE(run.responses.size() == 1);
    CHECK(run.responses[0].ec);
    CHECK(std::string(run.responses[0].failed_step) == "read");
    CHECK(run.stats.replayed == 0);
    CHECK(mock.server().stats().requests == 1);
}

TEST_CASE("a host name is resolved and its connections shared") {
    test::loopback_mock mock;
    const std::string url = "http://localhost:" + std::to_string(mock.server().port()) + "/v1";
    pool_options o;
    o.max_connections = 4;
    const auto run = exchange_many(url, o, 40, 40);
    REQUIRE(run.responses.size() == 40);
    for (const auto& r : run.responses) {
        REQUIRE_FALSE(r.ec);
        CHECK(r.status == 200);
    }
    CHECK(run.stats.connects == 4);
}

TEST_CASE("close() ends running and waiting exchanges with operation_aborted at once") {
    mock_options mo;
    mo.latency = std::chrono::milliseconds(5000);
    test::loopback_mock mock(mo);
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(mock.server().base_url(), ec);
    pool_options o;
    o.max_connections = 2;
    request_headers h;
    h.target = ep.target("/chat/completions");
    connection_pool pool(ioc.get_executor(), ep, h, o, nullptr);
    const std::string body = test::chat_body(1);
    std::vector<error_code> results;
    for (int i = 0; i < 6; ++i)
        pool.async_exchange(body, [&](http_response r) { results.push_back(r.ec); });
    asio::steady_timer later(ioc);
    bool late_done = false, returned = false;
    later.expires_after(std::chrono::milliseconds(200));
    later.async_wait([&](error_code) {
        CHECK(pool.stats().waiting == 4);
        pool.close();
        // After close, a new exchange fails too, and never inside the call that starts it.
        pool.async_exchange(body, [&](http_response r) {
            CHECK(returned);
            CHECK(r.ec == asio::error::operation_aborted);
            late_done = true;
        });
        returned = true;
    });
    const auto start = std::chrono::steady_clock::now();
    ioc.run_for(std::chrono::seconds(10));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    REQUIRE(results.size() == 6);
    for (const auto& e : results)
        CHECK(e == asio::error::operation_aborted);
    CHECK(late_done);
    CHECK(pool.stats().open == 0);
}

TEST_CASE("close() while connecting or resolving sends nothing more") {
    for (const bool tls : {false, true}) {
        INFO("tls " << tls);
        mock_options mo = test::mock_with_tls(tls);
        mo.close_every = 1; // no idle connection: new exchanges must connect
        test::loopback_mock mock(mo);
        asio::io_context ioc;
        error_code ec;
        const endpoint ep = endpoint::parse(mock.server().base_url(), ec);
        tls_options t;
        t.ca_pem = mock.server().certificate_pem();
        auto ctx = make_client_tls_context(t);
        request_headers h;
        h.target = ep.target("/chat/completions");
        connection_pool pool(ioc.get_executor(), ep, h, {}, &ctx);
        const std::string body = test::chat_body(1);
        std::vector<http_response> results;
        auto collect = [&](http_response r) {
            results.push_back(std::move(r));
        };

        // Closed while the host is being resolved.
        pool.async_exchange(body, collect);
        pool.close();
        ioc.run_for(std::chrono::seconds(10));
        REQUIRE(results.size() == 1);
        CHECK(results[0].ec == asio::error::operation_aborted);
        CHECK(std::string(results[0].failed_step) == "connect");

        // Closed while connections are being opened, the address known.
        ioc.restart();
        results.clear();
        connection_pool pool2(ioc.get_executor(), ep, h, {}, &ctx);
        pool2.async_exchange(body, [&](http_response first) {
            CHECK(first.status == 200);
            for (int i = 0; i < 3; ++i)
                pool2.async_exchange(body, collect);
            pool2.close();
        });
        ioc.run_for(std::chrono::seconds(10));
        REQUIRE(results.size() == 3);
        for (const auto& r : results) {
            CHECK(r.ec == asio::error::operation_aborted);
            CHECK(std::string(r.failed_step) == "connect");
        }
        CHECK(pool2.stats().open == 0);
        CHECK(mock.server().stats().requests == 1);
    }
}

} // namespace connection_pool_test
