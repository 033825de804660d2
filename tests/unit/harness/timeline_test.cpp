#include "support/manual_clock.hpp"

#include <sluice/harness/timeline.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

request_timing sent_at(recorder::time_point at) {
    request_timing r;
    r.scheduled = r.sent = at;
    return r;
}

} // namespace

TEST_CASE("the timeline counts each event in the slice in which it happened") {
    test::manual_clock clock;
    const auto t0 = clock.now();
    timeline t(t0, 1s);
    t.on_sent(t0 - 5ms); // before the start: the first slice
    t.on_sent(t0 + 100ms);
    auto r = sent_at(t0 + 100ms);
    r.content_events = 3;
    r.first_content = r.sent + 40ms;
    t.on_success(r, t0 + 1500ms, 7);                    // E2EL 1400 ms, TTFT 40 ms
    t.on_success(sent_at(t0 + 1200ms), t0 + 1400ms, 2); // not streamed: E2EL 200 ms only
    t.on_failure(t0 + 3200ms);

    const auto& b = t.buckets();
    REQUIRE(b.size() == 4);
    CHECK(b[0].sent == 2);
    CHECK(b[0].completed == 0);
    CHECK(b[1].completed == 2);
    CHECK(b[1].output_tokens == 9);
    CHECK(b[1].e2el_sum == 1600ms);
    CHECK(b[1].e2el_max == 1400ms);
    CHECK(b[1].ttft_count == 1);
    CHECK(b[1].ttft_sum == 40ms);
    CHECK(b[2].completed + b[2].failed + b[2].sent == 0);
    CHECK(b[3].failed == 1);
    CHECK(t.width() == 1s);
}

TEST_CASE("a long run merges slices in pairs so memory stays bounded") {
    test::manual_clock clock;
    const auto t0 = clock.now();
    timeline t(t0, 1s, 4);
    for (int i = 0; i < 4; ++i)
        t.on_failure(t0 + i * 1s + 10ms);
    CHECK(t.buckets().size() == 4);
    t.on_failure(t0 + 4500ms); // slice 4 of 4: the width doubles
    CHECK(t.width() == 2s);
    REQUIRE(t.buckets().size() == 3);
    CHECK(t.buckets()[0].failed == 2);
    CHECK(t.buckets()[1].failed == 2);
    CHECK(t.buckets()[2].failed == 1);
    t.on_failure(t0 + 1h); // far beyond: as many doublings as it takes
    CHECK(t.buckets().size() <= 4);
    std::uint64_t total = 0;
    for (const auto& b : t.buckets())
        total += b.failed;
    CHECK(total == 6);
}

TEST_CASE("the timeline refuses a width that is not positive") {
    CHECK_THROWS_AS(timeline({}, 0s), std::invalid_argument);
    CHECK_THROWS_AS(timeline({}, 1s, 1), std::invalid_argument);
}
