// Rate limits against nginx's limit_req, a limiter this project did not write.
#include "support/loopback.hpp"
#include "support/nginx_peer.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

// Its own namespace: the files of tests/peer/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace nginx_limit_req_test {

using namespace sluice;
namespace asio = boost::asio;

namespace {

stats_snapshot run_against(const test::nginx_peer& nginx, double rpm, int n) {
    asio::io_context ioc;
    dispatcher_options opts;
    opts.base_url = nginx.base_url();
    opts.pool.max_connections = 16;
    opts.limits.rpm = rpm;
    opts.retry.max_attempts = 20;
    dispatcher engine(ioc.get_executor(), opts);
    int remaining = n;
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = std::to_string(i);
        req.body = test::chat_body(i);
        engine.async_complete(std::move(req), [&](error_code, result) {
            if (--remaining == 0)
                engine.stop();
        });
    }
    ioc.run();
    return engine.stats();
}

test::nginx_options limited(unsigned rate, unsigned burst) {
    test::nginx_options o;
    o.tls = false;
    o.limit_rate = rate;
    o.limit_burst = burst;
    return o;
}

} // namespace

TEST_CASE("below nginx's limit_req rate no 429 is seen") {
    // 6,000 a minute with one second of burst, as providers enforce per-minute limits.
    test::nginx_peer nginx(limited(100, 100));
    const auto s = run_against(nginx, 4'800, 240);
    CHECK(s.succeeded == 240);
    CHECK(s.rate_limited == 0);
}

TEST_CASE("far above nginx's limit every request still ends in success") {
    test::nginx_peer nginx(limited(100, 10));
    const auto s = run_against(nginx, 0, 150); // no client limit at all
    CHECK(s.succeeded == 150);
    CHECK(s.failed == 0);
    CHECK(s.rate_limited > 0); // nginx did push back, and the 429s were waited out
}

} // namespace nginx_limit_req_test
