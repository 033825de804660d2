#include "support/manual_clock.hpp"

#include <sluice/admission/endpoint_router.hpp>

#include <catch2/catch.hpp>

#include <map>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

std::vector<circuit_breaker> closed_breakers(std::size_t n) {
    breaker_options o;
    o.failure_threshold = 1;
    o.cool_down = 1000ms;
    return std::vector<circuit_breaker>(n, circuit_breaker(o));
}

} // namespace

TEST_CASE("only endpoints that serve the model are candidates") {
    test::manual_clock clock;
    endpoint_router r({{{}, 1}, {{"gpt-4o", "gpt-4o-mini"}, 1}, {{"llama"}, 1}});
    const auto breakers = closed_breakers(3);
    std::vector<std::size_t> c;
    r.candidates("gpt-4o", clock.now(), breakers, c);
    CHECK(c == std::vector<std::size_t>{0, 1});
    r.candidates("llama", clock.now(), breakers, c);
    CHECK(c == std::vector<std::size_t>{0, 2});
    r.candidates("other", clock.now(), breakers, c);
    CHECK(c == std::vector<std::size_t>{0});
    // A request naming no model goes to the endpoints without a list.
    r.candidates("", clock.now(), breakers, c);
    CHECK(c == std::vector<std::size_t>{0});
    CHECK(r.anyone_serves("other"));
}

TEST_CASE("with every endpoint listing models, an unnamed model goes anywhere and an unlisted "
          "one nowhere") {
    test::manual_clock clock;
    endpoint_router r({{{"a"}, 1}, {{"b"}, 1}});
    const auto breakers = closed_breakers(2);
    std::vector<std::size_t> c;
    r.candidates("", clock.now(), breakers, c);
    CHECK(c == std::vector<std::size_t>{0, 1});
    r.candidates("c", clock.now(), breakers, c);
    CHECK(c.empty());
    CHECK_FALSE(r.anyone_serves("c"));
    CHECK_FALSE(r.can_serve("c", breakers));
}

TEST_CASE("weights share out requests in proportion when every endpoint has room") {
    test::manual_clock clock;
    endpoint_router r({{{}, 1}, {{}, 3}});
    const auto breakers = closed_breakers(2);
    std::vector<std::size_t> c;
    std::map<std::size_t, int> first;
    for (int i = 0; i < 400; ++i) {
        r.candidates("m", clock.now(), breakers, c);
        REQUIRE(c.size() == 2);
        ++first[c.front()];
        r.routed(c.front()); // the first asked admits it
    }
    CHECK(first[0] == 100);
    CHECK(first[1] == 300);
    CHECK(r.routed_count(1) == 300);
}

TEST_CASE("an endpoint that cannot admit leaves the next in order to take the request") {
    // The engine asks in order and sends to the first that admits: an endpoint whose buckets
    // are empty is skipped, so the other takes every request until it has room again.
    test::manual_clock clock;
    endpoint_router r({{{}, 1}, {{}, 1}});
    const auto breakers = closed_breakers(2);
    std::vector<std::size_t> c;
    for (int i = 0; i < 10; ++i) {
        r.candidates("m", clock.now(), breakers, c);
        const std::size_t taker = c.front() == 0 ? c[1] : c.front(); // endpoint 0 is full
        r.routed(taker);
    }
    CHECK(r.routed_count(1) == 10);
    // Endpoint 0 now leads until the counts even out.
    r.candidates("m", clock.now(), breakers, c);
    CHECK(c.front() == 0);
}

TEST_CASE("open breakers leave the candidates until their probe moment, retired ones for good") {
    test::manual_clock clock;
    endpoint_router r({{{}, 1}, {{}, 1}, {{}, 1}});
    auto breakers = closed_breakers(3);
    breakers[1].on_failure(clock.now(), false); // threshold 1: open for 1 s
    breakers[2].retire();
    std::vector<std::size_t> c;
    r.candidates("m", clock.now(), breakers, c);
    CHECK(c == std::vector<std::size_t>{0});
    CHECK(r.next_reopen("m", breakers) == clock.now() + 1000ms);
    clock.advance(1000ms);
    r.candidates("m", clock.now(), breakers, c);
    CHECK(c == std::vector<std::size_t>{0, 1});
    breakers[1].on_send(clock.now()); // the probe is out: no timer for it
    CHECK_FALSE(r.next_reopen("m", breakers));
    CHECK(r.can_serve("m", breakers));
    CHECK(r.live_count("m", breakers) == 2);
    breakers[0].retire();
    breakers[1].retire();
    CHECK_FALSE(r.can_serve("m", breakers));
    CHECK(r.live_count("m", breakers) == 0);
    CHECK(r.anyone_serves("m"));
}
