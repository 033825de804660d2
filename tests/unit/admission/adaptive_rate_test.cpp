// The adaptive request rate, exact on a manual clock: inactive until a 429, the cut to
// backoff x the rate the server took, one cut per wave, growth back to the ceiling and beyond
// only while used, the floor; and how the limiter and the scope use it only when no request limit
// is known.
#include "support/manual_clock.hpp"

#include <sluice/admission/adaptive_rate.hpp>
#include <sluice/admission/rate_limiter.hpp>
#include <sluice/admission/scope.hpp>

#include <boost/asio/error.hpp>
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// `n` requests sent evenly over `span`, each in the middle of its share, and the clock at the
// end of `span` (so that none falls on the edge of a tenth of the window).
void send(adaptive_rate& a, test::manual_clock& clock, int n, std::chrono::nanoseconds span) {
    const auto start = clock.now();
    for (int i = 0; i < n; ++i) {
        clock.advance(start + span * (2 * i + 1) / (2 * n) - clock.now());
        a.on_sent(clock.now());
    }
    clock.advance(start + span - clock.now());
}

// A 429 without a hint, as the limiter reports it: refused, then maybe a cut.
bool throttle(adaptive_rate& a,
              const test::manual_clock& clock,
              std::uint64_t ticket,
              std::uint64_t last_ticket) {
    a.on_refused(clock.now());
    return a.on_throttled(clock.now(), ticket, last_ticket);
}

// K of the default options: the seconds the rate takes to climb back to the ceiling.
double knee(const adaptive_options& o = {}) {
    return std::cbrt((1 - o.backoff) / o.growth);
}

} // namespace

TEST_CASE("adaptive rate: inactive, with no rate, until the first 429") {
    test::manual_clock clock;
    adaptive_rate a({}, clock.now());
    send(a, clock, 30, 1s);
    CHECK_FALSE(a.active());
    CHECK(a.rate(clock.now()) == 0);
    CHECK(a.taken(clock.now()) == Approx(30));
    a.on_refused(clock.now()); // a 429 with a hint: counted, no rate
    CHECK_FALSE(a.active());
    CHECK(a.taken(clock.now()) == Approx(29));
}

TEST_CASE("adaptive rate: the first 429 cuts to backoff x what the server took last second") {
    test::manual_clock clock;
    adaptive_rate a({}, clock.now());
    // 100 sent over two seconds: only the last second's 50 count, less the one refused. Those
    // still in flight count as taken: a server answers a refusal at once, a completion later.
    send(a, clock, 100, 2s);
    REQUIRE(throttle(a, clock, 100, 100));
    CHECK(a.active());
    CHECK(a.ceiling() == Approx(49));
    CHECK(a.rate(clock.now()) == Approx(0.9 * 49));
}

TEST_CASE("adaptive rate: one cut per wave, by ticket") {
    test::manual_clock clock;
    adaptive_rate a({}, clock.now());
    send(a, clock, 50, 1s);
    REQUIRE(throttle(a, clock, 1, 50)); // the first wave: all 50 were on the wire
    // The rest of the crowd that was on the wire: answered by the cut already.
    clock.advance(1ms);
    for (std::uint64_t t = 2; t <= 50; ++t)
        CHECK_FALSE(throttle(a, clock, t, 50));
    CHECK(a.ceiling() == Approx(49));
    // A request admitted after the cut and refused: the new rate is still too high.
    clock.advance(100ms);
    a.on_sent(clock.now());
    CHECK(throttle(a, clock, 51, 51));
    // The last second took nothing (everything refused): the rate it had (0.9 x 49 grown for
    // 0.1 s) is the new ceiling.
    CHECK(a.ceiling() > 0.9 * 49);
    CHECK(a.ceiling() < 0.92 * 49);
    CHECK(a.rate(clock.now()) == Approx(0.9 * a.ceiling()));
}

TEST_CASE("adaptive rate: climbs back to the ceiling in K seconds, then probes beyond") {
    test::manual_clock clock;
    adaptive_rate a({}, clock.now());
    send(a, clock, 51, 1s);
    REQUIRE(throttle(a, clock, 51, 51)); // a ceiling of 50
    const auto cut = clock.now();
    const double k = knee();
    CHECK(k == Approx(std::cbrt(5.0)));
    // Used all along: 60 sent a second keeps the cap (twice the rate taken) away.
    auto at = [&](double seconds) {
        const auto t = cut + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::duration<double>(seconds));
        constexpr auto sixtieth = std::chrono::nanoseconds(1s) / 60;
        while (clock.now() + sixtieth <= t)
            send(a, clock, 1, sixtieth);
        clock.advance(t - clock.now());
        return a.rate(clock.now());
    };
    const double half = at(k / 2);
    CHECK(half > 45);
    CHECK(half < 50);
    CHECK(at(k) == Approx(50));
    CHECK(at(k + 1) == Approx(50 * (1 + 0.02)));
    CHECK(at(k + 3) == Approx(50 * (1 + 0.02 * 27)));
}

TEST_CASE("adaptive rate: not grown beyond the ceiling while unused") {
    test::manual_clock clock;
    adaptive_rate a({}, clock.now());
    send(a, clock, 51, 1s);
    REQUIRE(throttle(a, clock, 51, 51));
    // Nothing sent for a minute (the input ran dry): the rate stays at the ceiling instead of
    // 50 x (1 + 0.02 x 58.3^3), which would let out a burst of thousands when work comes.
    clock.advance(60s);
    CHECK(a.rate(clock.now()) == Approx(50));
    // Used at 30 a second: the cap is twice that.
    send(a, clock, 30, 1s);
    CHECK(a.rate(clock.now()) == Approx(60));
}

TEST_CASE("adaptive rate: a later cut takes the average since the previous cut") {
    test::manual_clock clock;
    adaptive_rate a({}, clock.now());
    send(a, clock, 51, 1s); // the server's first bucket, all at once in a real run
    REQUIRE(throttle(a, clock, 51, 51));
    // Four seconds at 40 a second, 8 of them refused, then a refusal that cuts: taken 152 and
    // refused 9 of 161 in four seconds.
    send(a, clock, 161, 4s);
    for (int i = 0; i < 8; ++i)
        a.on_refused(clock.now());
    REQUIRE(throttle(a, clock, 200, 212));
    CHECK(a.ceiling() == Approx(152.0 / 4));
    CHECK(a.rate(clock.now()) == Approx(0.9 * 38));
}

TEST_CASE("adaptive rate: nothing taken sets no rate, and the rate keeps above its floor") {
    test::manual_clock clock;
    adaptive_options o;
    o.min_rpm = 600; // 10 a second
    adaptive_rate a(o, clock.now());
    // Refused before the server took anything: nothing to measure, no rate.
    a.on_sent(clock.now());
    CHECK_FALSE(throttle(a, clock, 1, 1));
    CHECK_FALSE(a.active());
    CHECK(a.rate(clock.now()) == 0);
    // 5 sent, 1 refused: 4 a second taken, below the floor of 10.
    send(a, clock, 5, 1s);
    REQUIRE(throttle(a, clock, 6, 6));
    CHECK(a.ceiling() == Approx(10));
    CHECK(a.rate(clock.now()) == Approx(10)); // backoff x floor is lifted to the floor
    a.reset(clock.now());
    CHECK_FALSE(a.active());
    CHECK(a.rate(clock.now()) == 0);
}

TEST_CASE("adaptive options: out-of-range values are refused, naming the key") {
    auto refused = [](auto change) {
        adaptive_options o;
        change(o);
        try {
            o.validate();
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(refused([](adaptive_options& o) { o.backoff = 1; }).find("backoff") != std::string::npos);
    CHECK(refused([](adaptive_options& o) { o.backoff = 0; }).find("backoff") != std::string::npos);
    CHECK(refused([](adaptive_options& o) { o.growth = 0; }).find("growth") != std::string::npos);
    CHECK(refused([](adaptive_options& o) { o.window = 0s; }).find("window") != std::string::npos);
    CHECK(refused([](adaptive_options& o) { o.min_rpm = std::nan(""); }).find("min_rpm") !=
          std::string::npos);
    CHECK(refused([](adaptive_options& o) { o.burst = 61s; }).find("burst") != std::string::npos);
    CHECK(refused([](adaptive_options&) {}).empty());
}

TEST_CASE("rate limiter: a 429 without a known request limit paces admission") {
    test::manual_clock clock;
    rate_limiter limiter({}, clock.now());
    // Unlimited: 50 go at once.
    for (int i = 0; i < 50; ++i) {
        REQUIRE(limiter.try_admit(clock.now(), 10) == rate_limiter::duration::zero());
        limiter.complete(limiter.last_ticket());
    }
    CHECK(limiter.adaptive_rpm(clock.now()) == 0);
    REQUIRE(limiter.try_admit(clock.now(), 10) == rate_limiter::duration::zero());
    clock.advance(10ms);
    CHECK(limiter.throttled(clock.now(), limiter.last_ticket()));
    // 51 sent and 1 refused over the 1.01 s the window covers, and 0.9 of that.
    const double rpm = limiter.adaptive_rpm(clock.now());
    CHECK(rpm == Approx(0.9 * 50 / 1.01 * 60));
    // The pacing bucket starts empty: the next request waits one interval of that rate.
    const auto wait = limiter.try_admit(clock.now(), 10);
    CHECK(std::chrono::duration<double>(wait).count() == Approx(60 / rpm).epsilon(1e-6));
    clock.advance(wait);
    CHECK(limiter.try_admit(clock.now(), 10) == rate_limiter::duration::zero());
    // Only the first cut says the scope started adapting.
    clock.advance(1ms);
    CHECK_FALSE(limiter.throttled(clock.now(), limiter.last_ticket()));
}

TEST_CASE("rate limiter: a known limit, or adaptive off, leaves 429s alone") {
    test::manual_clock clock;
    SECTION("a request limit configured") {
        limit_options o;
        o.rpm = 600;
        rate_limiter limiter(o, clock.now());
        REQUIRE(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
        CHECK_FALSE(limiter.throttled(clock.now(), limiter.last_ticket()));
        CHECK(limiter.adaptive_rpm(clock.now()) == 0);
    }
    SECTION("a token limit configured") {
        limit_options o;
        o.tpm = 60'000;
        rate_limiter limiter(o, clock.now());
        REQUIRE(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
        CHECK_FALSE(limiter.throttled(clock.now(), limiter.last_ticket()));
        CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    }
    SECTION("disabled") {
        limit_options o;
        o.adaptive.enabled = false;
        rate_limiter limiter(o, clock.now());
        REQUIRE(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
        CHECK_FALSE(limiter.throttled(clock.now(), limiter.last_ticket()));
        CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    }
    SECTION("learned after adapting") {
        rate_limiter limiter({}, clock.now());
        for (int i = 0; i < 3; ++i)
            REQUIRE(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
        REQUIRE(limiter.throttled(clock.now(), limiter.last_ticket()));
        CHECK(limiter.adaptive_rpm(clock.now()) == Approx(0.9 * 2 * 60)); // 3 sent, 1 refused
        rate_limit_headers h;
        h.limit_requests = 6000;
        h.remaining_requests = 100;
        REQUIRE(limiter.reconcile(clock.now(), h));
        // The server's limit wins: 100 a second, no pacing at the floor's one a minute.
        CHECK(limiter.adaptive_rpm(clock.now()) == 0);
        CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
        CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    }
}

namespace {

using test_scope = scope<std::string>;

response_event refusal(std::uint64_t ticket) {
    response_event ev;
    ev.outcome.status = 429;
    ev.outcome.provider_code = "rate_limit_exceeded";
    ev.ticket = ticket;
    ev.cost = 1;
    return ev;
}

std::uint64_t admit(test_scope& sc, test::manual_clock& clock) {
    sc.push_back("r", 1);
    auto step = sc.next(clock.now());
    REQUIRE(std::holds_alternative<test_scope::admitted>(step));
    sc.on_attempt(clock.now(), 1);
    return std::get<test_scope::admitted>(step).ticket;
}

} // namespace

TEST_CASE("scope: only a 429 with neither a hint nor limit headers starts adapting") {
    test::manual_clock clock;
    test_scope sc("", {}, {}, clock.now(), 1);
    SECTION("no hint, no headers") {
        admit(sc, clock); // taken: on the wire, not refused
        const auto ticket = admit(sc, clock);
        const response_action a = sc.on_response(clock.now(), refusal(ticket));
        CHECK(a.rate_limited);
        CHECK(a.adaptive_started);
        CHECK(sc.limiter().adaptive_rpm(clock.now()) == Approx(0.9 * 1 * 60));
    }
    SECTION("no hint, no headers, but nothing taken yet: backoff alone") {
        const auto ticket = admit(sc, clock);
        const response_action a = sc.on_response(clock.now(), refusal(ticket));
        CHECK(a.rate_limited);
        CHECK_FALSE(a.adaptive_started);
        CHECK(sc.limiter().adaptive_rpm(clock.now()) == 0);
    }
    SECTION("a hint: the hold, as before") {
        const auto ticket = admit(sc, clock);
        response_event ev = refusal(ticket);
        ev.outcome.retry_after = 1s;
        const response_action a = sc.on_response(clock.now(), ev);
        CHECK(a.rate_limited);
        CHECK_FALSE(a.adaptive_started);
        CHECK(sc.limiter().adaptive_rpm(clock.now()) == 0);
    }
    SECTION("limit headers: the server's limit") {
        const auto ticket = admit(sc, clock);
        response_event ev = refusal(ticket);
        ev.headers.limit_requests = 600;
        ev.headers.remaining_requests = 0;
        const response_action a = sc.on_response(clock.now(), ev);
        CHECK(a.limits_learned);
        CHECK_FALSE(a.adaptive_started);
        CHECK(sc.limits().rpm == 600);
        CHECK(sc.limiter().adaptive_rpm(clock.now()) == 0);
    }
    SECTION("every request sent counts as taken but those refused") {
        for (unsigned status : {200u, 500u}) {
            const auto ticket = admit(sc, clock);
            response_event ev = refusal(ticket);
            ev.outcome.status = status;
            ev.outcome.provider_code = {};
            sc.on_response(clock.now(), ev);
        }
        const auto failed = admit(sc, clock);
        response_event ev;
        ev.outcome.transport_error = make_error_code(boost::asio::error::connection_reset);
        ev.ticket = failed;
        sc.on_response(clock.now(), ev);
        const auto ticket = admit(sc, clock);
        REQUIRE(sc.on_response(clock.now(), refusal(ticket)).adaptive_started);
        // Four sent in the last second, one refused: a ceiling of 3 a second, paced at 2.7.
        CHECK(sc.limiter().adaptive_rpm(clock.now()) == Approx(0.9 * 3 * 60));
    }
}
