// The rules a scope combines on every response, each exact with a manual clock: whose count of
// tokens wins, what a 429 gives back and when, what the retry budget pays for, x-should-retry,
// the 429 hold and its cap, learned request caps, the fatal stop, and a stopping run.
#include "support/manual_clock.hpp"

#include <sluice/admission/scope.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

using test_scope = scope<std::string>;
using duration = test_scope::duration;

limit_options tokens_per_minute(double tpm) {
    limit_options o;
    o.tpm = tpm; // tpm / 60 a second, a bucket of one second's refill
    return o;
}

// Admits `item` at once (it must be admissible) and returns its ticket.
std::uint64_t
admit(test_scope& sc, test::manual_clock& clock, std::string item, std::uint64_t cost) {
    sc.push_back(std::move(item), cost);
    auto step = sc.next(clock.now());
    REQUIRE(std::holds_alternative<test_scope::admitted>(step));
    auto& a = std::get<test_scope::admitted>(step);
    sc.on_attempt(clock.now(), 1);
    return a.ticket;
}

response_event answer(unsigned status, std::uint64_t ticket, std::uint64_t cost) {
    response_event ev;
    ev.outcome.status = status;
    ev.ticket = ticket;
    ev.cost = cost;
    return ev;
}

response_event rate_limited(std::uint64_t ticket, std::uint64_t cost) {
    response_event ev = answer(429, ticket, cost);
    ev.outcome.provider_code = "rate_limit_exceeded";
    return ev;
}

// How long a request costing `cost` would wait now: the probe of the token bucket's level.
duration wait_for(test_scope& sc, test::manual_clock& clock, std::uint64_t cost) {
    sc.push_back("probe", cost);
    auto step = sc.next(clock.now());
    if (auto* wait = std::get_if<duration>(&step)) {
        sc.drain();
        return *wait;
    }
    REQUIRE(std::holds_alternative<test_scope::admitted>(step));
    return duration::zero();
}

retry_options no_budget() {
    retry_options r;
    r.budget_ratio = 0;
    r.budget_min_per_second = 0;
    return r;
}

} // namespace

TEST_CASE("the server's remaining-tokens header wins over usage") {
    test::manual_clock clock;
    test_scope sc("", tokens_per_minute(6000), {}, clock.now(), 1); // 100 tokens/s, bucket 100
    const auto ticket = admit(sc, clock, "a", 50);                  // level 50
    response_event ev = answer(200, ticket, 50);
    ev.sent = clock.now();
    ev.usage_tokens = 10;              // usage would give 40 back...
    ev.headers.remaining_tokens = 100; // ...but the server says it charged the estimate
    CHECK(sc.on_response(clock.now(), ev).what == response_action::kind::deliver);
    // Still 50: a request of 60 waits for 10 tokens, at 100 a second.
    CHECK(wait_for(sc, clock, 60) == duration(100ms));
}

TEST_CASE("without a remaining-tokens header usage corrects the books") {
    test::manual_clock clock;
    test_scope sc("", tokens_per_minute(6000), {}, clock.now(), 1);
    const auto ticket = admit(sc, clock, "a", 50);
    response_event ev = answer(200, ticket, 50);
    ev.usage_tokens = 10;
    CHECK(sc.on_response(clock.now(), ev).what == response_action::kind::deliver);
    CHECK(wait_for(sc, clock, 90) == duration::zero()); // 50 + 40 refunded
}

TEST_CASE("usage of a failed answer does not touch the books") {
    test::manual_clock clock;
    test_scope sc("", tokens_per_minute(6000), no_budget(), clock.now(), 1);
    const auto ticket = admit(sc, clock, "a", 50);
    response_event ev = answer(500, ticket, 50);
    ev.usage_tokens = 10;
    sc.on_response(clock.now(), ev);
    CHECK(wait_for(sc, clock, 60) == duration(100ms));
}

TEST_CASE("a 429 is refunded before the headers cap the level") {
    test::manual_clock clock;
    test_scope sc("", tokens_per_minute(6000), {}, clock.now(), 1);
    const auto ticket = admit(sc, clock, "a", 50); // level 50
    response_event ev = rate_limited(ticket, 50);
    ev.sent = clock.now();
    ev.headers.remaining_tokens = 80;
    const response_action a = sc.on_response(clock.now(), ev);
    CHECK(a.what == response_action::kind::retry);
    CHECK(a.ec == errc::rate_limited);
    CHECK(a.rate_limited);
    // Refunded to 100, then capped at the server's 80 (the other order would leave 100).
    CHECK(wait_for(sc, clock, 90) == duration(100ms));
}

TEST_CASE("a 429 spends no retry budget, a 5xx does") {
    test::manual_clock clock;
    // Not paced after the hintless 429 (adaptive_rate_test.cpp has that): the budget alone.
    limit_options unpaced;
    unpaced.adaptive.enabled = false;
    test_scope sc("", unpaced, no_budget(), clock.now(), 1);
    const auto t1 = admit(sc, clock, "a", 1);
    const response_action paced = sc.on_response(clock.now(), rate_limited(t1, 1));
    CHECK(paced.what == response_action::kind::retry);

    const auto t2 = admit(sc, clock, "b", 1);
    const response_action failed = sc.on_response(clock.now(), answer(503, t2, 1));
    CHECK(failed.what == response_action::kind::give_up);
    CHECK(failed.ec == errc::retry_budget_exhausted);
    CHECK(failed.cause == errc::server_error);
}

TEST_CASE("the retry budget allows its ratio of the requests sent") {
    test::manual_clock clock;
    retry_options r;
    r.budget_ratio = 0.5;
    r.budget_min_per_second = 0;
    test_scope sc("", {}, r, clock.now(), 1);
    const auto t1 = admit(sc, clock, "a", 1);
    const auto t2 = admit(sc, clock, "b", 1); // two first attempts: one retry allowed
    CHECK(sc.on_response(clock.now(), answer(500, t1, 1)).what == response_action::kind::retry);
    const response_action second = sc.on_response(clock.now(), answer(500, t2, 1));
    CHECK(second.what == response_action::kind::give_up);
    CHECK(second.ec == errc::retry_budget_exhausted);
}

TEST_CASE("x-should-retry overrides the status rule both ways") {
    test::manual_clock clock;
    test_scope sc("", {}, {}, clock.now(), 1);
    response_event bad = answer(400, admit(sc, clock, "a", 1), 1);
    bad.outcome.should_retry = true;
    CHECK(sc.on_response(clock.now(), bad).what == response_action::kind::retry);

    response_event down = answer(500, admit(sc, clock, "b", 1), 1);
    down.outcome.should_retry = false;
    const response_action a = sc.on_response(clock.now(), down);
    CHECK(a.what == response_action::kind::give_up);
    CHECK(a.ec == errc::server_error);
}

TEST_CASE("a 429's hint holds the whole scope, capped at max_retry_after") {
    test::manual_clock clock;
    retry_options r;
    r.max_retry_after = 5s;
    test_scope sc("", {}, r, clock.now(), 1);
    response_event ev = rate_limited(admit(sc, clock, "a", 1), 1);
    ev.outcome.retry_after = std::chrono::hours(24 * 365 * 30); // "retry-after: 999999999"
    const response_action a = sc.on_response(clock.now(), ev);
    CHECK(a.what == response_action::kind::retry);
    CHECK(a.delay == 5s);
    // Every other request of the scope waits out the same capped hold, not 30 years.
    CHECK(wait_for(sc, clock, 1) == duration(5s));
    clock.advance(5s);
    CHECK(wait_for(sc, clock, 1) == duration::zero());
}

TEST_CASE("a hint on a 5xx delays that retry only") {
    test::manual_clock clock;
    test_scope sc("", {}, {}, clock.now(), 1);
    response_event ev = answer(503, admit(sc, clock, "a", 1), 1);
    ev.outcome.retry_after = 2s;
    const response_action a = sc.on_response(clock.now(), ev);
    CHECK(a.what == response_action::kind::retry);
    CHECK(a.delay == 2s);
    CHECK(wait_for(sc, clock, 1) == duration::zero());
}

TEST_CASE("quota exhausted and a refused key stop the run") {
    test::manual_clock clock;
    test_scope sc("", {}, {}, clock.now(), 1);
    response_event quota = answer(429, admit(sc, clock, "a", 1), 1);
    quota.outcome.provider_code = "insufficient_quota";
    const response_action q = sc.on_response(clock.now(), quota);
    CHECK(q.what == response_action::kind::stop_run);
    CHECK(q.ec == errc::quota_exhausted);

    const response_action key =
        sc.on_response(clock.now(), answer(401, admit(sc, clock, "b", 1), 1));
    CHECK(key.what == response_action::kind::stop_run);
    CHECK(key.ec == errc::unauthorized);
}

TEST_CASE("a 'Request too large' refusal is final and refuses the like of it unsent") {
    test::manual_clock clock;
    test_scope sc("gpt-4o-mini", {}, {}, clock.now(), 1);
    const auto ticket = admit(sc, clock, "big", 300);
    sc.push_back("big too", 300);
    sc.push_back("small", 10);
    response_event ev = rate_limited(ticket, 300);
    ev.outcome.provider_message = "Request too large for gpt-4o-mini in organization org-x on "
                                  "tokens per min (TPM): Limit 100, Requested 600.";
    const response_action a = sc.on_response(clock.now(), ev);
    CHECK(a.what == response_action::kind::give_up);
    CHECK(a.ec == errc::request_too_large);
    // The server's 100 of its 600 is 50 of our 300: the next big one goes out no more.
    auto step = sc.next(clock.now());
    REQUIRE(std::holds_alternative<test_scope::refused>(step));
    CHECK(std::get<test_scope::refused>(step).item == "big too");
    CHECK(std::get<test_scope::refused>(step).reason.find("learned from an earlier refusal") !=
          std::string::npos);
    step = sc.next(clock.now());
    REQUIRE(std::holds_alternative<test_scope::admitted>(step));
    CHECK(std::get<test_scope::admitted>(step).item == "small");
    CHECK(sc.refusal(51) != "");
    CHECK(sc.refusal(50) == "");
}

TEST_CASE("a request over the scope's tpm is refused before it joins") {
    test::manual_clock clock;
    test_scope sc("", tokens_per_minute(1000), {}, clock.now(), 1);
    CHECK(sc.refusal(1000) == "");
    CHECK(sc.refusal(1001) ==
          "estimated cost of 1001 tokens exceeds the limit of 1000 tokens per minute");
}

TEST_CASE("a stopping run hands back a request it would retry, without spending budget") {
    test::manual_clock clock;
    test_scope sc("", {}, no_budget(), clock.now(), 1);
    response_event ev = answer(500, admit(sc, clock, "a", 1), 1);
    ev.stopping = true;
    const response_action a = sc.on_response(clock.now(), ev);
    CHECK(a.what == response_action::kind::stopped);
    CHECK(a.ec == errc::server_error);
    // A final answer is still final.
    response_event done = answer(200, admit(sc, clock, "b", 1), 1);
    done.stopping = true;
    CHECK(sc.on_response(clock.now(), done).what == response_action::kind::deliver);
}

TEST_CASE("the last attempt gives up with its own failure") {
    test::manual_clock clock;
    retry_options r;
    r.max_attempts = 2;
    test_scope sc("", {}, r, clock.now(), 1);
    response_event ev = answer(502, admit(sc, clock, "a", 1), 1);
    ev.attempts = 2;
    const response_action a = sc.on_response(clock.now(), ev);
    CHECK(a.what == response_action::kind::give_up);
    CHECK(a.ec == errc::server_error);
    CHECK_FALSE(a.cause);
}

TEST_CASE("server limits lower than configured are adopted and reported once") {
    test::manual_clock clock;
    limit_options l;
    l.rpm = 600;
    test_scope sc("", l, {}, clock.now(), 1);
    response_event ev = answer(200, admit(sc, clock, "a", 1), 1);
    ev.sent = clock.now();
    ev.headers.limit_requests = 60;
    CHECK(sc.on_response(clock.now(), ev).limits_learned);
    CHECK(sc.limits().rpm == 60);
    clock.advance(2s); // the lowered bucket (1 a second) refills
    response_event again = answer(200, admit(sc, clock, "b", 1), 1);
    again.sent = clock.now();
    again.headers.limit_requests = 30;
    CHECK_FALSE(sc.on_response(clock.now(), again).limits_learned);
    CHECK(sc.limits().rpm == 30);
}
