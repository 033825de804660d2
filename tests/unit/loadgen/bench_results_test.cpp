#include "support/manual_clock.hpp"

#include <sluice/loadgen/bench_results.hpp>

#include <boost/asio/error.hpp>
#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// A result as the engine delivers it: sent `sent` after `t0`, done at `done`.
result
answer(recorder::time_point t0, std::chrono::milliseconds sent, std::chrono::milliseconds done) {
    result r;
    r.status = 200;
    r.attempts = 1;
    r.times.queued = t0;
    r.times.admitted = t0;
    r.times.sent = t0 + sent;
    r.times.first_byte = r.times.sent + 1ms;
    r.times.done = t0 + done;
    return r;
}

void streamed(result& r,
              std::chrono::milliseconds first_token,
              std::initializer_list<std::chrono::milliseconds> gaps) {
    r.streamed = true;
    r.times.first_token = r.times.sent + first_token;
    for (auto g : gaps)
        r.times.token_gaps.push_back(g);
}

void set_usage(result& r, std::uint64_t in, std::uint64_t out) {
    r.completion.usage = sluice::usage{in, out, in + out};
}

} // namespace

TEST_CASE("a streamed result gives send lag, TTFT, every gap, TPOT and E2EL") {
    test::manual_clock clock;
    const auto t0 = clock.now();
    bench_results b({}, t0);
    // Due at t0, handed over 2 ms late, written 1 ms after that; first token 40 ms after the
    // write, then gaps of 10, 20 and 30 ms; done 5 ms after the last token.
    result r = answer(t0, 3ms, 3ms + 40ms + 60ms + 5ms);
    streamed(r, 40ms, {10ms, 20ms, 30ms});
    set_usage(r, 50, 4);
    b.record({t0, t0 + 2ms, 999}, r);

    const recorder& rec = b.rec();
    CHECK(rec.completed() == 1);
    CHECK(rec.send_lag().max() == 2ms);
    CHECK(rec.ttft().max() == 40ms);
    CHECK(rec.itl().count() == 3);
    CHECK(rec.itl().min() == 10ms);
    CHECK(rec.itl().max() == 30ms);
    CHECK(rec.e2e().max() == 105ms); // from the write, not the submission
    CHECK(rec.tpot().max() == std::chrono::nanoseconds(105ms - 40ms) / 3); // per later token
    CHECK(rec.input_tokens() == 50); // usage, not the estimate
    CHECK(rec.output_tokens() == 4);
    REQUIRE(b.over_time().buckets().size() == 1);
    CHECK(b.over_time().buckets()[0].completed == 1);
}

TEST_CASE("without usage the prompt's estimate and the content events count") {
    test::manual_clock clock;
    const auto t0 = clock.now();
    bench_results b;
    result r = answer(t0, 0ms, 50ms);
    streamed(r, 10ms, {5ms, 5ms});
    b.record({t0, t0, 77}, r);
    CHECK(b.rec().input_tokens() == 77);
    CHECK(b.rec().output_tokens() == 3);

    result whole = answer(t0, 0ms, 30ms); // not streamed, no usage
    b.record({t0, t0, 5}, whole);
    CHECK(b.rec().output_tokens() == 3);
    CHECK(b.rec().ttft().count() == 1); // the unstreamed answer adds E2EL only
    CHECK(b.rec().e2e().count() == 2);
}

TEST_CASE("failures count by kind, HTTP errors by their status") {
    test::manual_clock clock;
    const auto t0 = clock.now();
    bench_results b({}, t0);
    const auto fail = [&](error_code ec, unsigned status) {
        result r = answer(t0, 1ms, 9ms);
        r.ec = ec;
        r.status = status;
        b.record({t0, t0, 1}, r);
        return failure_kind(r);
    };
    CHECK(fail(errc::server_error, 500) == "http_500");
    CHECK(fail(errc::server_error, 503) == "http_503");
    CHECK(fail(errc::client_error, 400) == "http_400");
    CHECK(fail(errc::rate_limited, 429) == "rate_limited");
    CHECK(fail(errc::malformed_response, 200) == "malformed_response");
    CHECK(fail(boost::asio::error::connection_reset, 0) == "connection_reset");
    CHECK(b.rec().failed() == 6);
    CHECK(b.rec().completed() == 0);
    CHECK(b.rec().failures().at("http_500") == 1);
    CHECK(b.rec().e2e().count() == 0);
    CHECK(b.rec().send_lag().count() == 6);
    CHECK(b.over_time().buckets().at(0).failed == 6);
}

TEST_CASE("a result never written counts from its submission") {
    test::manual_clock clock;
    const auto t0 = clock.now();
    bench_results b;
    result r;
    r.ec = boost::asio::error::connection_refused;
    r.times.done = t0 + 4ms;
    b.record({t0, t0 + 1ms, 1}, r);
    CHECK(b.rec().wall() == 3ms);
}

TEST_CASE("cancellations are told apart from the server's failures") {
    result r;
    r.ec = errc::not_attempted;
    CHECK(is_cancellation(r));
    r.ec = errc::stopped;
    CHECK(is_cancellation(r));
    r.ec = boost::asio::error::operation_aborted;
    CHECK(is_cancellation(r));
    r.ec = errc::server_error;
    CHECK_FALSE(is_cancellation(r));
    bench_results b;
    b.count_cancelled();
    b.count_warmup();
    b.count_warmup();
    const report_extras x = b.extras();
    CHECK(x.cancelled == 1);
    CHECK(x.warmup_requests == 2);
    CHECK(x.goodput == &b.goodput());
    CHECK(x.over_time == &b.over_time());
}

TEST_CASE("goodput counts the successes within the objectives") {
    test::manual_clock clock;
    const auto t0 = clock.now();
    bench_results b(parse_slo("ttft=50,e2e=200"), t0);
    result fast = answer(t0, 0ms, 100ms);
    streamed(fast, 20ms, {10ms});
    b.record({t0, t0, 1}, fast);
    result late = answer(t0, 0ms, 100ms);
    streamed(late, 60ms, {10ms});
    b.record({t0, t0, 1}, late);
    result long_one = answer(t0, 0ms, 300ms);
    b.record({t0, t0, 1}, long_one);
    result failed = answer(t0, 0ms, 10ms);
    failed.ec = errc::server_error;
    b.record({t0, t0, 1}, failed);
    CHECK(b.goodput().good() == 1);
}

TEST_CASE("restarting the timeline moves its start and forgets the warm-up") {
    test::manual_clock clock;
    const auto t0 = clock.now();
    bench_results b({}, t0, 500ms);
    b.record({t0, t0, 1}, answer(t0, 0ms, 10ms));
    b.restart_timeline(t0 + 2s);
    CHECK(b.over_time().buckets().empty());
    CHECK(b.over_time().start() == t0 + 2s);
    CHECK(b.over_time().width() == 500ms);
}
