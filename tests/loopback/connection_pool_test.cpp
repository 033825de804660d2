// The connection pool against the mock server on 127.0.0.1: reuse, limits, replacement of
// connections the server closes, timeouts and size limits.
#include "support/loopback.hpp"

#include <sluice/parse/completion_parser.hpp>
#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/tls_context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

using namespace sluice;
namespace asio = boost::asio;

namespace {

struct pool_run {
    std::vector<http_response> responses;
    pool_stats stats;
    std::size_t most_open = 0; // the most connections open at any completion
};

// Sends `n` exchanges (at most `parallel` at a time) through a fresh pool and collects them.
pool_run exchange_many(
    const std::string& base_url, pool_options opts, int n, int parallel, int max_tokens = 64) {
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(base_url, ec);
    REQUIRE_FALSE(ec);
    auto ctx = make_client_tls_context({});
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
    const auto run = exchange_many(mock.server().base_url(), {}, 1000, 1);
    REQUIRE(run.responses.size() == 1000);
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
        CHECK(std::string(r.failed_step) == "read");
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

TEST_CASE("a server slower than the request timeout gives a timeout") {
    mock_options mo;
    mo.latency = std::chrono::milliseconds(2000);
    test::loopback_mock mock(mo);
    pool_options o;
    o.request_timeout = std::chrono::milliseconds(100);
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
