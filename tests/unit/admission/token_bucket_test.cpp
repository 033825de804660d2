#include "support/manual_clock.hpp"

#include <sluice/admission/token_bucket.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;

TEST_CASE("a bucket starts full and refills continuously at its rate") {
    test::manual_clock clock;
    token_bucket b(10, 10, clock.now()); // 10 per second, one second of burst
    CHECK(b.available(clock.now()) == Approx(10));
    CHECK(b.try_take(clock.now(), 10));
    CHECK_FALSE(b.try_take(clock.now(), 1));
    clock.advance(100ms);
    CHECK(b.available(clock.now()) == Approx(1));
    CHECK(b.try_take(clock.now(), 1));
    CHECK_FALSE(b.try_take(clock.now(), 1));
}

TEST_CASE("a bucket never holds more than its capacity") {
    test::manual_clock clock;
    token_bucket b(10, 5, clock.now());
    clock.advance(1h);
    CHECK(b.available(clock.now()) == Approx(5));
}

TEST_CASE("wait_for names the exact moment the tokens are there") {
    test::manual_clock clock;
    token_bucket b(4, 4, clock.now());
    REQUIRE(b.try_take(clock.now(), 4));
    const auto wait = b.wait_for(clock.now(), 2);
    CHECK(wait == std::chrono::duration_cast<token_bucket::duration>(500ms));
    clock.advance(wait - 1ns);
    CHECK_FALSE(b.try_take(clock.now(), 2));
    clock.advance(1ns);
    CHECK(b.try_take(clock.now(), 2));
}

TEST_CASE("wait_for is zero when the tokens are there and measures big requests by capacity") {
    test::manual_clock clock;
    token_bucket b(1, 2, clock.now());
    CHECK(b.wait_for(clock.now(), 2) == token_bucket::duration::zero());
    REQUIRE(b.try_take(clock.now(), 2));
    // 100 tokens can never be there at once: the wait is until the bucket is full.
    CHECK(b.wait_for(clock.now(), 100) == std::chrono::duration_cast<token_bucket::duration>(2s));
}

TEST_CASE("take leaves a debt that refill pays back first") {
    test::manual_clock clock;
    token_bucket b(10, 10, clock.now());
    b.take(clock.now(), 30);
    CHECK(b.available(clock.now()) == Approx(-20));
    CHECK(b.wait_for(clock.now(), 1) == std::chrono::duration_cast<token_bucket::duration>(2100ms));
    clock.advance(2s);
    CHECK(b.available(clock.now()) == Approx(0));
}

TEST_CASE("refund and clamp move the level but never above capacity") {
    test::manual_clock clock;
    token_bucket b(10, 10, clock.now());
    REQUIRE(b.try_take(clock.now(), 8));
    b.refund(5);
    CHECK(b.available(clock.now()) == Approx(7));
    b.refund(100);
    CHECK(b.available(clock.now()) == Approx(10));
    b.clamp(clock.now(), 3);
    CHECK(b.available(clock.now()) == Approx(3));
    b.clamp(clock.now(), 50); // a clamp never raises
    CHECK(b.available(clock.now()) == Approx(3));
}

TEST_CASE("an unlimited bucket admits everything at once") {
    test::manual_clock clock;
    token_bucket b;
    CHECK(b.unlimited());
    CHECK(b.try_take(clock.now(), 1e12));
    CHECK(b.wait_for(clock.now(), 1e12) == token_bucket::duration::zero());
}

TEST_CASE("reconfigure keeps the level within the new capacity") {
    test::manual_clock clock;
    token_bucket b(100, 100, clock.now());
    b.reconfigure(clock.now(), 10, 10);
    CHECK(b.available(clock.now()) == Approx(10));
    REQUIRE(b.try_take(clock.now(), 10));
    clock.advance(500ms);
    CHECK(b.available(clock.now()) == Approx(5));
}

TEST_CASE("wait_for is exact to the nanosecond for provider-like rates") {
    // Rates are limit/60 per second, which rarely divide evenly: the rounding must still give
    // the first nanosecond at which the tokens are there. Bounded: 200 limits x 20 takes.
    test::manual_clock clock;
    int waits = 0;
    for (int limit = 7; limit < 2'000'000; limit = limit * 3 / 2 + 1) {
        const double rate = limit / 60.0;
        token_bucket b(rate, std::max(1.0, rate), clock.now());
        for (int i = 0; i < 20; ++i) {
            const double cost = std::min(b.capacity(), 1.0 + (i * 37 % 101));
            const auto wait = b.wait_for(clock.now(), cost);
            if (wait > token_bucket::duration::zero()) {
                ++waits;
                token_bucket early = b;
                CHECK_FALSE(early.try_take(clock.now() + wait - 1ns, cost));
                clock.advance(wait);
                REQUIRE(b.wait_for(clock.now(), cost) == token_bucket::duration::zero());
            }
            b.take(clock.now(), cost);
        }
    }
    CHECK(waits > 100);
}

TEST_CASE("wait_for counts from the stamp when a drain moved it past now") {
    test::manual_clock clock;
    token_bucket b(10, 10, clock.now());
    b.clamp(clock.now() + 2s, 0); // empty at now + 2 s (what a 429 hold does)
    CHECK(b.wait_for(clock.now(), 1) == std::chrono::duration_cast<token_bucket::duration>(2100ms));
}

TEST_CASE("wait_for never overflows, however slow the refill or deep the debt") {
    test::manual_clock clock;
    token_bucket slow(1e-12, 1, clock.now());
    slow.take(clock.now(), 1);
    CHECK(slow.wait_for(clock.now(), 1) == token_bucket::max_wait);
    token_bucket debt(1, 1, clock.now());
    debt.take(clock.now(), 1e300);
    CHECK(debt.wait_for(clock.now(), 1) == token_bucket::max_wait);
}
