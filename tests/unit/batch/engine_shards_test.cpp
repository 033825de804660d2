#include "support/manual_clock.hpp"
#include <sluice/batch/engine_shards.hpp>

#include <sluice/admission/rate_limiter.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

dispatcher_options account() {
    dispatcher_options o;
    o.pool.max_connections = 10;
    o.queue_limit = 7;
    o.limits.rpm = 2400;
    o.limits.tpm = 400'000;
    o.model_limits["gpt-4o"].rpm = 500;
    o.model_limits["gpt-4o"].tpm = 30'000;
    o.model_limits["o1"].tpm = 8'000;
    return o;
}

} // namespace

TEST_CASE("shard_options splits every scope's limits and gives each shard its share") {
    const dispatcher_options opts = account();
    std::size_t connections = 0;
    std::size_t queue = 0;
    for (unsigned i = 0; i < 4; ++i) {
        const dispatcher_options s = shard_options(opts, i, 4);
        CHECK_NOTHROW(s.validate());
        connections += s.pool.max_connections;
        queue += s.queue_limit;
        CHECK(s.limits.rpm == 600);
        CHECK(s.limits.tpm == 100'000);
        CHECK(s.limits.share == 0.25);
        REQUIRE(s.model_limits.size() == 2);
        CHECK(s.model_limits.at("gpt-4o").rpm == 125);
        CHECK(s.model_limits.at("gpt-4o").tpm == 7'500);
        CHECK(s.model_limits.at("gpt-4o").share == 0.25);
        CHECK(s.model_limits.at("o1").rpm == 0); // none configured stays none
        CHECK(s.model_limits.at("o1").tpm == 2'000);
        CHECK(s.model_limits.at("o1").share == 0.25);
    }
    // The remainder goes to the first shards: the totals are the configured ones.
    CHECK(connections == 10);
    CHECK(queue == 7);

    const dispatcher_options one = shard_options(opts, 0, 1);
    CHECK(one.limits.rpm == 2400);
    CHECK(one.limits.share == 1);
    CHECK(one.model_limits.at("gpt-4o").rpm == 500);
    CHECK(one.model_limits.at("gpt-4o").share == 1);
}

TEST_CASE("shard_options splits each of several endpoints' limits too") {
    dispatcher_options opts = account();
    endpoint_options e;
    e.name = "backup";
    e.base_url = "http://127.0.0.1:9/v1";
    e.limits.rpm = 1200;
    e.limits.tpm = 40'000;
    opts.endpoints.push_back(e);
    for (unsigned i = 0; i < 4; ++i) {
        const dispatcher_options s = shard_options(opts, i, 4);
        CHECK_NOTHROW(s.validate());
        REQUIRE(s.endpoints.size() == 1);
        CHECK(s.endpoints[0].limits.rpm == 300);
        CHECK(s.endpoints[0].limits.tpm == 10'000);
        CHECK(s.endpoints[0].limits.share == 0.25);
        CHECK(s.limits.rpm == 600);
    }
}

TEST_CASE("shards reconciling with the account's headers keep the account's limit together") {
    // Three shards of an account configured at 1,800 RPM that the server says allows 900 with
    // 12 left. Each shard must take a third of that (300 RPM, 4 now), not the whole: taken
    // whole, 900 is above a shard's 600 and 12 fills each shard's bucket of 10.
    test::manual_clock clock;
    dispatcher_options opts;
    opts.limits.rpm = 1800;
    rate_limit_headers h;
    h.limit_requests = 900;
    h.remaining_requests = 12;
    int admitted_now = 0;
    double rpm_total = 0;
    for (unsigned i = 0; i < 3; ++i) {
        rate_limiter shard(shard_options(opts, i, 3).limits, clock.now());
        CHECK(shard.reconcile(clock.now(), h));
        rpm_total += shard.limits().rpm;
        while (shard.try_admit(clock.now(), 1) == rate_limiter::duration::zero())
            ++admitted_now;
    }
    CHECK(rpm_total == Approx(900));
    CHECK(admitted_now == 12);

    // With no limit configured, the shards learn a third each.
    dispatcher_options open;
    rpm_total = 0;
    for (unsigned i = 0; i < 3; ++i) {
        rate_limiter shard(shard_options(open, i, 3).limits, clock.now());
        CHECK(shard.reconcile(clock.now(), h));
        rpm_total += shard.limits().rpm;
    }
    CHECK(rpm_total == Approx(900));
}
