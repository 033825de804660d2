#include "support/manual_clock.hpp"

#include <sluice/admission/retry_budget.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;

TEST_CASE("retries are bounded by the ratio of requests plus the floor") {
    test::manual_clock clock;
    retry_budget b(0.2, 1, 10s, clock.now()); // floor: 1/s over 10 s = 10
    for (int i = 0; i < 100; ++i)
        b.on_request(clock.now());
    CHECK(b.available(clock.now()) == Approx(30)); // 10 + 0.2 * 100
    int granted = 0;
    while (b.try_retry(clock.now()))
        ++granted;
    CHECK(granted == 30);
    CHECK_FALSE(b.try_retry(clock.now()));
}

TEST_CASE("an outage cannot retry more than the budget however many fail") {
    test::manual_clock clock;
    retry_budget b(0.1, 0, 10s, clock.now());
    int retries = 0, requests = 0;
    for (int second = 0; second < 30; ++second) {
        for (int i = 0; i < 50; ++i) {
            b.on_request(clock.now());
            ++requests;
            if (b.try_retry(clock.now())) // every request fails and wants a retry
                ++retries;
        }
        clock.advance(1s);
    }
    CHECK(retries <= requests / 10 + 1);
    CHECK(retries >= requests / 10 - 10);
}

TEST_CASE("the budget recovers as old requests and retries leave the window") {
    test::manual_clock clock;
    retry_budget b(0, 1, 5s, clock.now()); // 5 retries per 5 s window
    for (int i = 0; i < 5; ++i)
        CHECK(b.try_retry(clock.now()));
    CHECK_FALSE(b.try_retry(clock.now()));
    clock.advance(4s);
    CHECK_FALSE(b.try_retry(clock.now())); // still inside the window
    clock.advance(1s);
    CHECK(b.try_retry(clock.now())); // the first second's retries have left it
    clock.advance(1h);
    CHECK(b.available(clock.now()) == Approx(5));
}
