#include "support/manual_clock.hpp"

#include <sluice/harness/recorder.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

using time_point = recorder::time_point;

// One streamed request: sent `lag` after it was due, content events at the given offsets
// from the send, ended `end` after the send.
void streamed(recorder& rec,
              time_point due,
              std::chrono::nanoseconds lag,
              std::initializer_list<std::chrono::milliseconds> events,
              std::chrono::milliseconds end,
              std::uint64_t input,
              std::uint64_t output) {
    auto r = rec.on_sent(due, due + lag);
    for (auto at : events)
        rec.on_content(r, r.sent + at);
    rec.on_success(r, r.sent + end, input, output);
}

double ms(std::chrono::nanoseconds d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

} // namespace

TEST_CASE("a streamed request gives TTFT, every inter-token gap, TPOT, E2EL and send lag") {
    test::manual_clock clock;
    recorder rec;
    streamed(rec, clock.now(), 2ms, {100ms, 120ms, 150ms}, 160ms, 10, 3);
    CHECK(rec.completed() == 1);
    CHECK(rec.input_tokens() == 10);
    CHECK(rec.output_tokens() == 3);
    CHECK(rec.ttft().count() == 1);
    CHECK(rec.ttft().max() == 100ms);
    CHECK(rec.itl().count() == 2); // 20 ms and 30 ms
    CHECK(rec.itl().min() == 20ms);
    CHECK(rec.itl().max() == 30ms);
    CHECK(rec.tpot().max() == 30ms); // (160 - 100) / (3 - 1)
    CHECK(rec.e2e().max() == 160ms);
    CHECK(rec.send_lag().max() == 2ms);
    CHECK(rec.wall() == 160ms); // from the send, not from the due time
}

TEST_CASE("the timing value counts content events for servers that send no usage") {
    test::manual_clock clock;
    recorder rec;
    auto r = rec.on_sent(clock.now(), clock.now());
    for (int i = 1; i <= 4; ++i)
        rec.on_content(r, clock.now() + i * 10ms);
    CHECK(r.content_events == 4);
    CHECK(r.first_content == clock.now() + 10ms);
    CHECK(r.last_content == clock.now() + 40ms);
}

TEST_CASE("a response without content events adds E2EL only") {
    test::manual_clock clock;
    recorder rec;
    streamed(rec, clock.now(), 0ms, {}, 80ms, 5, 7);
    CHECK(rec.e2e().count() == 1);
    CHECK(rec.ttft().empty());
    CHECK(rec.itl().empty());
    CHECK(rec.tpot().empty()); // no first token to measure decoding from
    CHECK(rec.output_tokens() == 7);
}

TEST_CASE("TPOT needs two output tokens, as in vLLM") {
    test::manual_clock clock;
    recorder rec;
    streamed(rec, clock.now(), 0ms, {50ms}, 60ms, 1, 1);
    CHECK(rec.ttft().count() == 1);
    CHECK(rec.tpot().empty());
}

TEST_CASE("failures count by kind, add no tokens or latency, and take part in the wall time") {
    test::manual_clock clock;
    const time_point t0 = clock.now();
    recorder rec;
    streamed(rec, t0, 0ms, {10ms}, 100ms, 10, 20);
    auto a = rec.on_sent(t0 + 50ms, t0 + 50ms);
    rec.on_failure(a, t0 + 400ms, "http_500");
    auto b = rec.on_sent(t0 + 60ms, t0 + 60ms);
    rec.on_failure(b, t0 + 70ms, "timeout");
    auto c = rec.on_sent(t0 + 70ms, t0 + 70ms);
    rec.on_failure(c, t0 + 90ms, std::string_view("http_500"));
    CHECK(rec.completed() == 1);
    CHECK(rec.failed() == 3);
    CHECK(rec.failures() == recorder::failure_counts{{"http_500", 2}, {"timeout", 1}});
    CHECK(rec.e2e().count() == 1);
    CHECK(rec.input_tokens() == 10);
    CHECK(rec.output_tokens() == 20);
    CHECK(rec.send_lag().count() == 4);
    CHECK(rec.wall() == 400ms); // the slow failure ends the run
}

TEST_CASE("throughputs are per second of wall time from the first send to the last end") {
    test::manual_clock clock;
    const time_point t0 = clock.now();
    recorder rec;
    CHECK(rec.request_throughput() == 0); // no wall time yet: no division by zero
    streamed(rec, t0, 0ms, {100ms}, 1000ms, 100, 50);
    streamed(rec, t0 + 1000ms, 0ms, {100ms}, 1000ms, 300, 150);
    REQUIRE(rec.wall() == 2s);
    CHECK(rec.request_throughput() == Approx(1.0));
    CHECK(rec.output_throughput() == Approx(100.0));
    CHECK(rec.total_token_throughput() == Approx(300.0));
}

TEST_CASE("merging per-thread recorders equals recording everything in one") {
    test::manual_clock clock;
    const time_point t0 = clock.now();
    recorder one, left, right;
    for (int i = 0; i < 40; ++i) {
        recorder& part = i % 2 ? left : right;
        const time_point due = t0 + i * 25ms;
        const auto lag = std::chrono::microseconds(i * 37);
        const std::chrono::milliseconds end(200 + i * 3);
        streamed(one, due, lag, {20ms, 35ms, 50ms + std::chrono::milliseconds(i)}, end, i, 3);
        streamed(part, due, lag, {20ms, 35ms, 50ms + std::chrono::milliseconds(i)}, end, i, 3);
        if (i % 7 == 0) {
            auto f = one.on_sent(due, due);
            one.on_failure(f, due + 5ms, "http_429");
            auto g = part.on_sent(due, due);
            part.on_failure(g, due + 5ms, "http_429");
        }
    }
    recorder merged;
    merged.merge(left);
    merged.merge(right);
    CHECK(merged.completed() == one.completed());
    CHECK(merged.failed() == one.failed());
    CHECK(merged.failures() == one.failures());
    CHECK(merged.input_tokens() == one.input_tokens());
    CHECK(merged.output_tokens() == one.output_tokens());
    CHECK(merged.wall() == one.wall());
    for (auto get :
         {&recorder::e2e, &recorder::ttft, &recorder::itl, &recorder::tpot, &recorder::send_lag}) {
        const timing_histogram& a = (merged.*get)();
        const timing_histogram& b = (one.*get)();
        CHECK(a.count() == b.count());
        CHECK(a.mean_ns() == b.mean_ns());
        CHECK(ms(a.percentile(99)) == ms(b.percentile(99)));
        CHECK(a.max() == b.max());
    }
}
