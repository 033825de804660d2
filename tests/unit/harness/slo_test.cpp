#include "support/manual_clock.hpp"

#include <sluice/harness/slo.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// A request sent at `clock.now()`: content events at the offsets, ended at `end`.
request_timing timed(const test::manual_clock& clock,
                     std::initializer_list<std::chrono::milliseconds> events) {
    request_timing r;
    r.scheduled = r.sent = clock.now();
    for (auto at : events) {
        if (r.content_events++ == 0)
            r.first_content = r.sent + at;
        r.last_content = r.sent + at;
    }
    return r;
}

} // namespace

TEST_CASE("parse_slo reads vLLM's metrics in milliseconds, in any order and subset") {
    const slo_options all = parse_slo("ttft=500,tpot=50.5,e2e=2000");
    REQUIRE(all.ttft);
    REQUIRE(all.tpot);
    REQUIRE(all.e2el);
    CHECK(all.ttft->count() == 500);
    CHECK(all.tpot->count() == 50.5);
    CHECK(all.e2el->count() == 2000);
    CHECK(to_string(all) == "ttft=500,tpot=50.5,e2e=2000");

    const slo_options some = parse_slo(" e2el:300 , ttft=20");
    CHECK(some.e2el->count() == 300);
    CHECK(some.ttft->count() == 20);
    CHECK_FALSE(some.tpot);
    CHECK(some.any());
    CHECK_FALSE(parse_slo("").any());
    CHECK(to_string(slo_options{}).empty());
}

TEST_CASE("parse_slo names what is wrong") {
    const auto message = [](const char* text) {
        try {
            parse_slo(text);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK_THAT(message("latency=5"), Catch::Contains("unknown metric 'latency'"));
    CHECK_THAT(message("ttft=5,ttft=6"), Catch::Contains("ttft given twice"));
    CHECK_THAT(message("ttft=0"), Catch::Contains("> 0"));
    CHECK_THAT(message("ttft=-1"), Catch::Contains("> 0"));
    CHECK_THAT(message("ttft=5ms"), Catch::Contains("number of milliseconds"));
    CHECK_THAT(message("ttft"), Catch::Contains("METRIC=MS"));
    CHECK_THAT(message("ttft=inf"), Catch::Contains("> 0"));
}

TEST_CASE("a request is good when it meets every objective that is set") {
    test::manual_clock clock;
    slo_options slo;
    slo.ttft = slo_options::milliseconds(100);
    slo.tpot = slo_options::milliseconds(20);
    goodput_counter good(slo);
    // TTFT 100 ms, then 4 more tokens in 80 ms: TPOT 20 ms; both at their limits.
    const auto fine = timed(clock, {100ms, 120ms, 140ms, 160ms, 180ms});
    CHECK(good.meets(fine, fine.sent + 180ms, 5));
    // TTFT 101 ms misses.
    const auto late = timed(clock, {101ms, 120ms});
    CHECK_FALSE(good.meets(late, late.sent + 120ms, 2));
    // TPOT 30 ms misses.
    const auto slow = timed(clock, {50ms, 80ms});
    CHECK_FALSE(good.meets(slow, slow.sent + 80ms, 2));
    good.on_success(fine, fine.sent + 180ms, 5);
    good.on_success(late, late.sent + 120ms, 2);
    CHECK(good.good() == 1);
    goodput_counter other(slo);
    other.on_success(fine, fine.sent + 180ms, 5);
    good.merge(other);
    CHECK(good.good() == 2);
}

TEST_CASE("an answer that was not streamed has its TTFT at its end and no TPOT") {
    test::manual_clock clock;
    const auto whole = timed(clock, {});
    CHECK(goodput_counter(parse_slo("ttft=100")).meets(whole, whole.sent + 100ms, 50));
    CHECK_FALSE(goodput_counter(parse_slo("ttft=100")).meets(whole, whole.sent + 101ms, 50));
    CHECK(goodput_counter(parse_slo("tpot=0.001")).meets(whole, whole.sent + 1s, 50));
}

TEST_CASE("without objectives nothing is counted, and bad objectives are refused") {
    test::manual_clock clock;
    goodput_counter none;
    const auto r = timed(clock, {1ms});
    none.on_success(r, r.sent + 1ms, 1);
    CHECK(none.good() == 0);
    slo_options bad;
    bad.e2el = slo_options::milliseconds(0);
    CHECK_THROWS_AS(goodput_counter(bad), std::invalid_argument);
}
