// The shared budget's Redis side against a real redis-server: the lease script's arithmetic
// and membership, AUTH/ACL/SELECT, the start-up probe, and one engine sharing through it.
#include "support/loopback.hpp"
#include "support/redis_peer.hpp"

#include <sluice/redis/shared_budget.hpp>

#include "redis/lease_script.hpp"
#include "redis/redis_connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <atomic>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace shared_budget_test {

using namespace sluice;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Calls the lease script of budget "b", scope "" as `member`, on a connection of its own.
class script_caller {
public:
    explicit script_caller(const test::redis_peer& redis) {
        error_code ec;
        url_ = redis_url::parse(redis.url(), ec);
        REQUIRE_FALSE(ec);
    }

    /// Time since the first call began: what the buckets refilled meanwhile (each call opens a
    /// connection of its own, which takes longer on a loaded machine).
    std::chrono::milliseconds elapsed() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - first_);
    }

    lease_reply
    call(const std::string& member, const lease_call& c, std::chrono::milliseconds ttl = 1000ms) {
        if (first_ == std::chrono::steady_clock::time_point{})
            first_ = std::chrono::steady_clock::now();
        detail::resp_value reply;
        run(detail::lease_command("b", "", member, c, ttl, true), reply);
        lease_reply r;
        INFO(reply.text);
        REQUIRE(detail::parse_lease_reply(reply, r));
        return r;
    }

    void run(std::vector<std::string> args, detail::resp_value& reply) {
        asio::io_context ioc;
        detail::redis_connection conn(ioc.get_executor(), url_, 2000ms, nullptr);
        error_code result = make_error_code(std::errc::timed_out);
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                std::string why;
                if ((result = co_await conn.connect(why)))
                    co_return;
                result = co_await conn.exec(args, reply);
            },
            asio::detached);
        ioc.run_for(5s);
        REQUIRE_FALSE(result);
    }

private:
    redis_url url_;
    std::chrono::steady_clock::time_point first_{};
};

// 10 requests a second, a bucket of 10; 1,000 tokens a second, a bucket of 1,000.
lease_call want(double requests, double tokens) {
    lease_call c;
    c.request_rate = 10;
    c.request_capacity = 10;
    c.token_rate = 1000;
    c.token_capacity = 1000;
    c.want_requests = requests;
    c.want_tokens = tokens;
    c.need_requests = std::min(1.0, requests);
    c.need_tokens = std::min(100.0, tokens);
    return c;
}

} // namespace

TEST_CASE("the lease script grants from a full bucket, then reserves ahead of the refill") {
    test::redis_peer redis;
    script_caller s(redis);
    lease_reply a = s.call("a", want(6, 600));
    CHECK(a.granted_requests == Approx(6));
    CHECK(a.granted_tokens == Approx(600));
    CHECK(a.wait == 0ms);
    CHECK(a.members == 1);
    // 4 requests left: a grant of 8 drives the bucket to -4, paid by 0.4 s of refill.
    lease_reply b = s.call("b", want(8, 100));
    CHECK(b.members == 2);
    CHECK(b.granted_requests == Approx(8));
    CHECK(b.wait >= 400ms - s.elapsed() - 5ms);
    CHECK(b.wait <= 420ms);
    // At most one bucket in advance: at about -4 now, a grant of 10 would reach -14; it gets
    // what takes the bucket to -10 (6, and what refilled since).
    lease_reply c = s.call("c", want(10, 100));
    CHECK(c.granted_requests >= 6 - 0.01);
    CHECK(c.granted_requests <=
          6 + 10 * std::chrono::duration<double>(s.elapsed() + 2ms).count()); // + rounding
    CHECK(c.wait >= 990ms);
    CHECK(c.wait <= 1020ms);
    lease_reply d = s.call("d", want(10, 100));
    CHECK(d.granted_requests == Approx(0).margin(0.2));
    CHECK(d.wait > 0ms);
}

TEST_CASE("returns refill the shared buckets, up to their capacity") {
    test::redis_peer redis;
    script_caller s(redis);
    REQUIRE(s.call("a", want(10, 1000)).granted_requests == Approx(10));
    lease_call back = want(0, 0);
    back.return_requests = 25; // more than the capacity: the excess is not kept
    back.return_tokens = 400;
    s.call("a", back);
    lease_reply r = s.call("b", want(20, 1000));
    CHECK(r.granted_requests == Approx(20).margin(0.1)); // 10 now and 10 reserved
    CHECK(r.wait >= 990ms);
    CHECK(r.granted_tokens == Approx(1000));
    CHECK(r.wait <= 1020ms);
}

TEST_CASE("members count while they renew, and drop out after their ttl or when they leave") {
    test::redis_peer redis;
    script_caller s(redis);
    CHECK(s.call("a", want(0, 0), 1000ms).members == 1);
    CHECK(s.call("b", want(0, 0), 1000ms).members == 2);
    CHECK(s.call("c", want(0, 0), 1000ms).members == 3);
    lease_call leave = want(0, 0);
    leave.leave = true;
    CHECK(s.call("c", leave, 1000ms).members == 2);
    std::this_thread::sleep_for(600ms);
    CHECK(s.call("a", want(0, 0), 1000ms).members == 2);
    std::this_thread::sleep_for(600ms); // b was last heard of 1.2 s ago: gone
    CHECK(s.call("a", want(0, 0), 1000ms).members == 1);
}

TEST_CASE("a 429's hold stops every member's grants, and the buckets start empty after it") {
    test::redis_peer redis;
    script_caller s(redis);
    lease_call hold = want(0, 0);
    hold.hold = 500ms;
    CHECK(s.call("a", hold).held >= 490ms);
    lease_reply b = s.call("b", want(2, 200));
    CHECK(b.granted_requests == 0);
    CHECK(b.held >= 500ms - s.elapsed() - 5ms);
    CHECK(b.wait >= 500ms - s.elapsed() - 5ms);
    std::this_thread::sleep_for(550ms);
    // The hold ended; the buckets started from empty at its end (full, they would pay at once).
    lease_reply c = s.call("c", want(2, 200));
    CHECK(c.held == 0ms);
    CHECK(c.granted_requests == Approx(2));
    CHECK(c.wait > 0ms);
}

TEST_CASE("the server's view lowers the shared buckets, and a settlement debt is carried") {
    test::redis_peer redis;
    script_caller s(redis);
    lease_call c = want(0, 0);
    c.clamp_requests = 2;   // x-ratelimit-remaining-requests, as a member saw it
    c.return_tokens = -400; // usage above the estimates
    s.call("a", c);
    // 2 requests left (capacity 10): 5 more are paid by 0.3 s of refill; 600 tokens left.
    lease_reply r = s.call("a", want(5, 500));
    CHECK(r.granted_requests == Approx(5));
    CHECK(r.wait >= 300ms - s.elapsed() - 5ms);
    CHECK(r.wait <= 320ms);
    // Tokens: 100 left, 400 short at 1,000 a second (and one more request: 0.4 s too).
    r = s.call("b", want(1, 500));
    CHECK(r.granted_tokens == Approx(500));
    CHECK(r.wait >= 400ms - s.elapsed() - 5ms);
    CHECK(r.wait <= 420ms);
}

TEST_CASE("a bucket made after Redis lost its state starts empty when a member says so") {
    test::redis_peer redis;
    script_caller s(redis);
    lease_call c = want(5, 500);
    c.start_full = false;
    lease_reply r = s.call("a", c);
    CHECK(r.granted_requests == Approx(5));
    CHECK(r.wait >= 490ms);
}

TEST_CASE("the probe: AUTH with a password or an ACL user, SELECT, and clear errors") {
    shared_budget_options o;
    std::string why;
    {
        test::redis_peer redis("pw-0123456789");
        o.url = redis.url(":pw-0123456789", 3);
        CHECK_FALSE(probe_redis(o, why));
        o.url = redis.url(":wrong-password-77");
        CHECK(probe_redis(o, why));
        CHECK(why.find("AUTH") != std::string::npos);
        CHECK(why.find("wrong-password-77") == std::string::npos);
        o.url = redis.url();
        CHECK(probe_redis(o, why)); // NOAUTH
    }
    {
        test::redis_peer redis("pw-acl-0123456789", "sluice");
        o.url = redis.url("sluice:pw-acl-0123456789");
        CHECK_FALSE(probe_redis(o, why));
        o.url = redis.url(":pw-acl-0123456789"); // the default user is off
        CHECK(probe_redis(o, why));
    }
    test::redis_peer redis;
    o.url = redis.url("", 99999);
    CHECK(probe_redis(o, why)); // no such database
    CHECK(why.find("SELECT") != std::string::npos);
    const std::string address = "127.0.0.1:" + std::to_string(redis.port());
    redis.stop();
    o.url = redis.url();
    CHECK(probe_redis(o, why));
    CHECK(why.find(address) != std::string::npos);
}

TEST_CASE("rediss://: TLS verified against the given CA, refused without it") {
    test::redis_peer redis("pw-tls-0123456789", "", true);
    shared_budget_options o;
    std::string why;
    o.url = redis.url(":pw-tls-0123456789");
    REQUIRE(o.url.rfind("rediss://", 0) == 0);
    CHECK(probe_redis(o, why)); // a self-signed certificate: not trusted by the system
    CHECK(why.find("TLS") != std::string::npos);
    o.tls.ca_file = redis.ca_file();
    CHECK_FALSE(probe_redis(o, why));
    INFO(why);
    o.url = "rediss://localhost:" + std::to_string(redis.port());
    CHECK(probe_redis(o, why)); // the certificate names 127.0.0.1 only
}

TEST_CASE("an engine on a shared budget sends through leases, and reloads a flushed script") {
    test::redis_peer redis;
    test::loopback_mock mock;
    dispatcher_options opts = mock.client_options();
    opts.limits.rpm = 60000; // 1,000 a second: a few lease calls a second
    opts.shared_budget.url = redis.url();
    opts.shared_budget.key = "engine-test";
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), opts);
    std::atomic<int> ok{0};
    int remaining = 400;
    std::function<void(int)> send = [&](int i) {
        request req;
        req.custom_id = std::to_string(i);
        req.body = test::chat_body(i, 8);
        engine.async_complete(std::move(req), [&, i](error_code ec, result) {
            ok += !ec;
            if (i == 199) // half way: Redis forgets the script (a restart, SCRIPT FLUSH)
                redis.cli("SCRIPT FLUSH");
            if (--remaining == 0)
                engine.stop();
        });
    };
    for (int i = 0; i < 400; ++i)
        send(i);
    ioc.run_for(30s);
    CHECK(ok == 400);
    const stats_snapshot s = engine.stats();
    CHECK(s.shared_budget.enabled);
    CHECK(s.shared_budget.failures == 0);
    CHECK(s.shared_budget.round_trips > 0);
    CHECK(s.shared_budget.round_trips < 100); // leases, not one call per request
    // The member left: nothing is registered any more.
    CHECK(redis.cli("ZCARD 'sluice:{engine-test}:members'").find("0") == 0);
}

} // namespace shared_budget_test
