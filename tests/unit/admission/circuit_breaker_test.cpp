#include "support/manual_clock.hpp"

#include <sluice/admission/circuit_breaker.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;
using state = circuit_breaker::state;

namespace {

breaker_options options(unsigned threshold = 3) {
    breaker_options o;
    o.failure_threshold = threshold;
    o.cool_down = 1000ms;
    o.max_cool_down = 3000ms;
    return o;
}

} // namespace

TEST_CASE("the breaker opens at the threshold of failures in a row, not before") {
    test::manual_clock clock;
    circuit_breaker b(options(3));
    b.on_failure(clock.now(), false);
    b.on_failure(clock.now(), false);
    CHECK(b.current(clock.now()) == state::closed);
    CHECK(b.can_send(clock.now()));
    b.on_failure(clock.now(), false);
    CHECK(b.current(clock.now()) == state::open);
    CHECK_FALSE(b.can_send(clock.now()));
    CHECK(b.opened() == 1);
    CHECK(b.reopens_at() == clock.now() + 1000ms);
}

TEST_CASE("an answer between failures resets the count") {
    test::manual_clock clock;
    circuit_breaker b(options(3));
    for (int round = 0; round < 10; ++round) {
        b.on_failure(clock.now(), false);
        b.on_failure(clock.now(), false);
        b.on_success(clock.now(), false);
    }
    CHECK(b.current(clock.now()) == state::closed);
    CHECK(b.opened() == 0);
}

TEST_CASE("after the cool-down exactly one probe goes, and its success closes the breaker") {
    test::manual_clock clock;
    circuit_breaker b(options(1));
    b.on_failure(clock.now(), false);
    const auto opened_at = clock.now();
    clock.advance(1000ms - 1ns);
    CHECK_FALSE(b.can_send(clock.now()));
    CHECK(b.current(clock.now()) == state::open);
    CHECK(b.probe_at() == opened_at + 1000ms);
    clock.advance(1ns);
    CHECK(b.current(clock.now()) == state::half_open);
    REQUIRE(b.can_send(clock.now()));
    CHECK(b.on_send(clock.now())); // the probe
    CHECK_FALSE(b.can_send(clock.now()));
    CHECK_FALSE(b.on_send(clock.now()));
    CHECK_FALSE(b.probe_at()); // no timer while the probe is out
    // A late answer of a request sent before the breaker opened changes nothing.
    b.on_success(clock.now(), false);
    CHECK(b.current(clock.now()) == state::half_open);
    b.on_success(clock.now(), true);
    CHECK(b.current(clock.now()) == state::closed);
    CHECK(b.can_send(clock.now()));
}

TEST_CASE("a failed probe opens the breaker again for twice the cool-down, up to the cap") {
    test::manual_clock clock;
    circuit_breaker b(options(1));
    b.on_failure(clock.now(), false);
    const std::chrono::milliseconds expected[] = {2000ms, 3000ms, 3000ms};
    auto cool_down = 1000ms;
    for (const auto next : expected) {
        clock.advance(cool_down);
        REQUIRE(b.on_send(clock.now()));
        b.on_failure(clock.now(), true);
        CHECK(b.current(clock.now()) == state::open);
        CHECK(b.reopens_at() == clock.now() + next);
        clock.advance(next - 1ns);
        CHECK_FALSE(b.can_send(clock.now()));
        clock.advance(1ns);
        CHECK(b.can_send(clock.now()));
        clock.advance(-next); // back to the failure, for the next round's arithmetic
        cool_down = next;
    }
    // A successful probe closes it and the next opening is back to the first cool-down.
    clock.advance(3000ms);
    REQUIRE(b.on_send(clock.now()));
    b.on_success(clock.now(), true);
    b.on_failure(clock.now(), false);
    CHECK(b.reopens_at() == clock.now() + 1000ms);
}

TEST_CASE("failures of requests sent before the breaker opened do not extend it") {
    test::manual_clock clock;
    circuit_breaker b(options(2));
    b.on_failure(clock.now(), false);
    b.on_failure(clock.now(), false);
    const auto reopens = b.reopens_at();
    clock.advance(500ms);
    for (int i = 0; i < 10; ++i)
        b.on_failure(clock.now(), false); // the rest of the in-flight crowd
    CHECK(b.reopens_at() == reopens);
    CHECK(b.opened() == 1);
}

TEST_CASE("a retired endpoint never takes a request again") {
    test::manual_clock clock;
    circuit_breaker b(options(1));
    b.retire();
    CHECK(b.retired());
    CHECK(b.current(clock.now()) == state::retired);
    clock.advance(std::chrono::hours(1));
    CHECK_FALSE(b.can_send(clock.now()));
    CHECK_FALSE(b.on_send(clock.now()));
    CHECK_FALSE(b.probe_at());
    b.on_success(clock.now(), true);
    CHECK(b.current(clock.now()) == state::retired);
    CHECK(to_string(b.current(clock.now())) == "retired");
}

TEST_CASE("threshold 0 never opens, and the options are checked") {
    test::manual_clock clock;
    circuit_breaker b(options(0));
    for (int i = 0; i < 1000; ++i)
        b.on_failure(clock.now(), false);
    CHECK(b.current(clock.now()) == state::closed);
    breaker_options o;
    o.cool_down = 0ms;
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("cool_down"));
    o.cool_down = 10s;
    o.max_cool_down = 5s;
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("max_cool_down"));
}
