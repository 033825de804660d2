#include "support/manual_clock.hpp"

#include <sluice/harness/arrivals.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

using time_point = arrivals::time_point;

arrivals_options open_loop(double rate, arrival_process process, std::uint64_t count) {
    arrivals_options o;
    o.rate = rate;
    o.process = process;
    o.max_requests = count;
    o.seed = 42;
    return o;
}

// Every due time of a finite schedule, asked for at `now` each time.
std::vector<time_point> drain(arrivals& a, time_point now) {
    std::vector<time_point> out;
    while (auto due = a.next_arrival(now))
        out.push_back(*due);
    return out;
}

struct gap_stats {
    double rate = 0; // arrivals per second over the schedule
    double cv = 0;   // coefficient of variation of the gaps
};

gap_stats stats_of(const std::vector<time_point>& due) {
    std::vector<double> gaps;
    for (std::size_t i = 1; i < due.size(); ++i)
        gaps.push_back(std::chrono::duration<double>(due[i] - due[i - 1]).count());
    double sum = 0;
    for (double g : gaps)
        sum += g;
    const double mean = sum / static_cast<double>(gaps.size());
    double sq = 0;
    for (double g : gaps)
        sq += (g - mean) * (g - mean);
    const double sd = std::sqrt(sq / static_cast<double>(gaps.size() - 1));
    return {1 / mean, sd / mean};
}

} // namespace

TEST_CASE("a constant schedule puts request n at start + n / rate, exactly") {
    test::manual_clock clock;
    const time_point start = clock.now();
    arrivals a(open_loop(4, arrival_process::constant, 5), start);
    const auto due = drain(a, start);
    const std::vector<time_point> want{
        start, start + 250ms, start + 500ms, start + 750ms, start + 1s};
    CHECK(due == want);

    // A rate with no exact period: each time is rounded from the start, never accumulated.
    arrivals b(open_loop(3, arrival_process::constant, 3001), start);
    const auto thirds = drain(b, start);
    REQUIRE(thirds.size() == 3001);
    CHECK(thirds[1] - start == 333'333'333ns);
    CHECK(thirds[2] - start == 666'666'667ns);
    CHECK(thirds[3000] - start == 1000s);
}

TEST_CASE("a late driver gets the overdue times, so lateness does not shift the schedule") {
    test::manual_clock clock;
    const time_point start = clock.now();
    arrivals a(open_loop(10, arrival_process::constant, 0), start);
    clock.advance(5s); // the driver stalled for 5 s before asking
    for (int k = 0; k < 60; ++k) {
        const auto due = a.next_arrival(clock.now());
        REQUIRE(due);
        CHECK(*due == start + k * 100ms); // 50 of them already overdue
        clock.advance(1ms);
    }

    // A random schedule is a function of the seed alone, not of when it is asked.
    arrivals early(open_loop(100, arrival_process::poisson, 1000), start);
    arrivals late(open_loop(100, arrival_process::poisson, 1000), start);
    const auto on_time = drain(early, start);
    const auto behind = drain(late, start + 1h);
    CHECK(on_time == behind);
}

TEST_CASE("poisson arrivals keep the mean rate with exponential gaps") {
    test::manual_clock clock;
    const std::uint64_t n = 100'000;
    arrivals a(open_loop(50, arrival_process::poisson, n + 1), clock.now());
    const auto s = stats_of(drain(a, clock.now()));
    // Four standard errors: the mean of n exponential gaps has relative error 1/sqrt(n).
    CHECK(s.rate == Approx(50).epsilon(4 / std::sqrt(double(n))));
    CHECK(s.cv == Approx(1).epsilon(0.02));
}

TEST_CASE("gamma arrivals keep the mean rate with a CV of 1/sqrt(burstiness), as vLLM's") {
    test::manual_clock clock;
    const std::uint64_t n = 100'000;
    for (double burstiness : {0.25, 1.0, 4.0}) {
        CAPTURE(burstiness);
        auto opts = open_loop(20, arrival_process::gamma, n + 1);
        opts.burstiness = burstiness;
        arrivals a(opts, clock.now());
        const auto s = stats_of(drain(a, clock.now()));
        const double cv = 1 / std::sqrt(burstiness);
        CHECK(s.rate == Approx(20).epsilon(4 * cv / std::sqrt(double(n))));
        CHECK(s.cv == Approx(cv).epsilon(0.05));
    }
}

TEST_CASE("the same seed gives the same schedule and another seed another") {
    test::manual_clock clock;
    auto opts = open_loop(10, arrival_process::gamma, 100);
    opts.burstiness = 0.5;
    arrivals a(opts, clock.now());
    arrivals b(opts, clock.now());
    opts.seed = 43;
    arrivals c(opts, clock.now());
    const auto first = drain(a, clock.now());
    CHECK(first == drain(b, clock.now()));
    CHECK(first != drain(c, clock.now()));
}

TEST_CASE("the count limit ends the schedule, for good") {
    test::manual_clock clock;
    arrivals a(open_loop(10, arrival_process::poisson, 3), clock.now());
    CHECK(drain(a, clock.now()).size() == 3);
    CHECK(a.done());
    CHECK(a.issued() == 3);
    CHECK_FALSE(a.next_arrival(clock.now()));
}

TEST_CASE("the duration limit ends the schedule at the first request due at or after it") {
    test::manual_clock clock;
    const time_point start = clock.now();
    auto opts = open_loop(10, arrival_process::constant, 0);
    opts.max_duration = 1s;
    arrivals a(opts, start);
    const auto due = drain(a, start);
    REQUIRE(due.size() == 10); // 0 ms .. 900 ms; the one at 1 s is out
    CHECK(due.back() == start + 900ms);
    CHECK(a.done());

    // Without a rate, a request is due when asked for, so the asking time is what counts.
    arrivals_options closed;
    closed.concurrency = 2;
    closed.max_requests = 0;
    closed.max_duration = 1s;
    arrivals b(closed, start);
    CHECK(b.next_arrival(start + 999ms) == start + 999ms);
    CHECK_FALSE(b.next_arrival(start + 1s));
    CHECK_FALSE(b.next_arrival(start)); // done stays done
}

TEST_CASE("the closed loop admits while fewer than N are in flight, each due when asked") {
    test::manual_clock clock;
    const time_point start = clock.now();
    arrivals_options opts;
    opts.concurrency = 2;
    opts.max_requests = 0;
    arrivals a(opts, start);
    CHECK(a.may_start(0));
    CHECK(a.may_start(1));
    CHECK_FALSE(a.may_start(2));
    CHECK_FALSE(a.may_start(3));
    CHECK(a.next_arrival(start - 1s) == start); // never due before the start
    clock.advance(3s);
    CHECK(a.next_arrival(clock.now()) == clock.now());

    opts.concurrency = 0; // no cap
    opts.max_requests = 5;
    arrivals uncapped(opts, start);
    CHECK(uncapped.may_start(1'000'000));
}

TEST_CASE("a linear ramp schedules by the integral of the ramped rate") {
    test::manual_clock clock;
    const time_point start = clock.now();
    // From 0 to 10 req/s over 10 s: n arrivals are expected by sqrt(2n) s during the ramp,
    // 50 by its end, then one every 100 ms.
    auto opts = open_loop(10, arrival_process::constant, 61);
    opts.ramp_start_rate = 0;
    opts.ramp_duration = 10s;
    arrivals up(opts, start);
    const auto due = drain(up, start);
    REQUIRE(due.size() == 61);
    CHECK(due[0] == start);
    CHECK(due[2] == start + 2s);
    CHECK(due[8] == start + 4s);
    CHECK(due[50] == start + 10s);
    CHECK(due[60] == start + 11s);

    // From 20 down to 10 req/s over 2 s: 30 arrivals in the ramp, then 10 a second.
    opts.ramp_start_rate = 20;
    opts.ramp_duration = 2s;
    arrivals down(opts, start);
    const auto fall = drain(down, start);
    const auto secs = [&](std::size_t n) {
        return std::chrono::duration<double>(fall[n] - start).count();
    };
    // 20 t - 2.5 t^2 = 10 at t = (20 - sqrt(300)) / 5.
    CHECK(secs(10) == Approx((20 - std::sqrt(300.0)) / 5).margin(1e-9));
    CHECK(secs(17) < 1); // 17.5 expected in the first second
    CHECK(secs(18) > 1);
    CHECK(fall[30] == start + 2s);
    CHECK(fall[40] == start + 3s);
}

TEST_CASE("arrival options are validated once, naming the field") {
    arrivals_options ok;
    CHECK_NOTHROW(ok.validate());
    const auto rejects = [](auto change) {
        arrivals_options o;
        change(o);
        CHECK_THROWS_AS(o.validate(), std::invalid_argument);
        CHECK_THROWS_AS(arrivals(o, {}), std::invalid_argument);
    };
    rejects([](arrivals_options& o) { o.rate = -1; });
    rejects([](arrivals_options& o) { o.rate = std::numeric_limits<double>::quiet_NaN(); });
    rejects([](arrivals_options& o) { o.rate = std::numeric_limits<double>::infinity(); });
    rejects([](arrivals_options& o) { o.burstiness = 0; });
    rejects([](arrivals_options& o) { o.max_duration = -1ms; });
    rejects([](arrivals_options& o) { o.ramp_duration = 1s; }); // a ramp without a rate
    rejects([](arrivals_options& o) { o.max_requests = 0; });   // unbounded burst
}
