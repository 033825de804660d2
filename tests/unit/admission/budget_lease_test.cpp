#include <sluice/admission/budget_lease.hpp>
#include <sluice/admission/rate_limiter.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

using time_point = budget_lease::time_point;
const time_point t0 = time_point{} + 1000s;

lease_reply grant(double requests,
                  double tokens,
                  std::uint64_t members = 1,
                  std::chrono::milliseconds wait = 0ms) {
    lease_reply r;
    r.granted_requests = requests;
    r.granted_tokens = tokens;
    r.members = members;
    r.wait = wait;
    return r;
}

// 600 RPM (10 a second), 60,000 TPM (1,000 a second), a burst of one second.
budget_lease joined(lease_options o = {}) {
    budget_lease l(o);
    l.set_limits(600, 60000, 1s);
    return l;
}

} // namespace

TEST_CASE("a member admits nothing before its first grant, then exactly what it was granted") {
    budget_lease l = joined();
    CHECK(l.try_take(t0, 100) > 0ns);
    REQUIRE(l.due(t0));
    const lease_call c = l.prepare(t0);
    // A block: a quarter second of the shared rate, for the one member known so far.
    CHECK(c.want_requests == Approx(2.5));
    CHECK(c.want_tokens == Approx(250));
    CHECK(c.request_rate == Approx(10));
    CHECK(c.token_capacity == Approx(900)); // a tenth of a burst kept as headroom
    CHECK(c.start_full);
    l.on_reply(t0, grant(2.5, 250));
    CHECK(l.current() == budget_lease::state::shared);
    CHECK(l.try_take(t0, 100) == 0ns);
    CHECK(l.try_take(t0, 100) == 0ns);
    CHECK(l.try_take(t0, 100) > 0ns); // 50 tokens left: not enough
    CHECK(l.due(t0));                 // and it asks again at once
}

TEST_CASE("a reservation is used exactly when the shared buckets have refilled it") {
    budget_lease l = joined();
    l.prepare(t0);
    l.on_reply(t0, grant(2.5, 250, 1, 180ms));
    // Plus a guard of 5 ms against requests overtaking each other on the way.
    CHECK(l.try_take(t0, 10) == 185ms);
    CHECK(l.try_take(t0 + 184ms, 10) == 1ms);
    CHECK(l.try_take(t0 + 185ms, 10) == 0ns);
    // Holding a reservation, the member does not call again before it is half spent.
    CHECK_FALSE(l.due(t0 + 100ms));
}

TEST_CASE("the block shrinks with the members and grows back when they leave") {
    budget_lease l = joined();
    CHECK(l.try_take(t0, 10) > 0ns); // requests wait for budget
    l.prepare(t0);
    l.on_reply(t0, grant(0, 0, 4, 10ms));
    const lease_call four = l.prepare(t0 + 10ms);
    CHECK(four.want_requests == Approx(1.0)); // 2.5 / 4 = 0.625, at least one request
    CHECK(four.want_tokens == Approx(62.5));
    l.on_reply(t0 + 10ms, grant(0, 0, 2, 10ms));
    CHECK(l.prepare(t0 + 20ms).want_tokens == Approx(125));
}

TEST_CASE("budget unused past the lease goes back with the next call") {
    budget_lease l = joined();
    l.prepare(t0);
    l.on_reply(t0, grant(2.5, 250));
    REQUIRE(l.try_take(t0, 100) == 0ns);
    CHECK(l.next_due(t0) <= t0 + 1s);
    const lease_call c = l.prepare(t0 + 1s);
    CHECK(c.return_requests == Approx(1.5));
    CHECK(c.return_tokens == Approx(150));
    CHECK(l.requests_held() == 0);
    CHECK(l.tokens_held() == 0);
}

TEST_CASE("refunds, settlements, the server's view and holds travel with the next call") {
    budget_lease l = joined();
    l.prepare(t0);
    l.on_reply(t0, grant(2.5, 250));
    l.give_back(1, 100); // a 429's refund
    l.give_back(0, -30); // usage above the estimate: a debt
    l.observe_server(t0, 7.0, 400.0, t0 - 100ms, 1, 100);
    lease_call c = l.prepare(t0 + 1ms);
    CHECK(c.return_requests == Approx(1));
    CHECK(c.return_tokens == Approx(70));
    REQUIRE(c.clamp_requests);
    REQUIRE(c.clamp_tokens);
    // 7 + 10/s x 0.1 s - 1 on the wire - 2.5 held
    CHECK(*c.clamp_requests == Approx(7 + 1.0 - 1 - 2.5).margin(0.02));
    CHECK(*c.clamp_tokens == Approx(400 + 100 - 100 - 250).margin(2));
    // A 429's hint: published at once, the held budget dropped, admission held.
    l.hold_until(t0 + 2s);
    CHECK(l.due(t0 + 2ms));
    c = l.prepare(t0 + 2ms);
    CHECK(c.hold == 1998ms);
    CHECK(l.requests_held() == 0);
    CHECK(l.try_take(t0 + 3ms, 10) == 1997ms);
}

TEST_CASE("without Redis a member runs on 1/N of the limits, and rejoins") {
    budget_lease l = joined();
    l.prepare(t0);
    l.on_reply(t0, grant(2.5, 250, 4));
    l.on_lost();
    CHECK(l.current() == budget_lease::state::local);
    CHECK(l.local_share() == Approx(0.25));
    CHECK(l.try_take(t0, 1000000) == 0ns); // the local buckets decide
    CHECK_FALSE(l.due(t0));
    l.on_rejoin();
    CHECK(l.current() == budget_lease::state::joining);
    CHECK(l.local_share() == 1);
    REQUIRE(l.due(t0));
    // The account's bucket is not full after a run without Redis: a new one starts empty.
    CHECK_FALSE(l.prepare(t0).start_full);
}

TEST_CASE("leaving gives back everything held, reservations included") {
    budget_lease l = joined();
    l.prepare(t0);
    l.on_reply(t0, grant(2.5, 250));
    l.prepare(t0 + 1ms);
    l.on_reply(t0 + 1ms, grant(1, 100, 1, 300ms));
    const lease_call c = l.leave(t0 + 2ms);
    CHECK(c.leave);
    CHECK(c.want_requests == 0);
    CHECK(c.return_requests == Approx(3.5));
    CHECK(c.return_tokens == Approx(350));
}

TEST_CASE("a limiter on a shared budget pays from the lease and keeps to 1/N without Redis") {
    limit_options o;
    o.rpm = 600;
    o.tpm = 60000;
    rate_limiter limiter(o, t0);
    budget_lease l;
    limiter.share_budget(&l);
    CHECK(limiter.try_admit(t0, 100) > 0ns); // joining
    l.prepare(t0);
    l.on_reply(t0, grant(2.5, 250));
    CHECK(limiter.try_admit(t0, 100) == 0ns);
    CHECK(limiter.try_admit(t0, 100) == 0ns);
    CHECK(limiter.try_admit(t0, 100) > 0ns); // the lease, not the local bucket (1,000 tokens)
    // A 429 gives its cost back to the shared books.
    limiter.refused(limiter.last_ticket());
    CHECK(l.prepare(t0).return_tokens == Approx(100));

    l.on_reply(t0, grant(0, 0, 4, 10ms));
    l.on_lost();
    // The local buckets at 1/4 start empty: 1 request at 2.5 a second, 100 tokens at 250.
    CHECK(limiter.try_admit(t0 + 1s, 100) == 400ms);
    CHECK(limiter.try_admit(t0 + 1400ms, 100) == 0ns);
    CHECK(limiter.limits().rpm == Approx(150));
    CHECK(limiter.limits().tpm == Approx(15000));
    CHECK(limiter.limits().share == Approx(0.25));
    l.on_rejoin();
    limiter.try_admit(t0 + 2s, 100);
    CHECK(limiter.limits().rpm == Approx(600));
    CHECK(limiter.limits().share == Approx(1));
}

TEST_CASE("an idle member renews its membership every third of the lease ttl, and only then") {
    budget_lease l = joined();
    l.prepare(t0);
    l.on_reply(t0, grant(0, 0, 3));
    CHECK_FALSE(l.due(t0 + 300ms));
    CHECK(l.next_due(t0 + 300ms) == t0 + 1000ms / 3);
    CHECK(l.due(t0 + 334ms));
    // It admitted nothing: the call asks for no budget, a heartbeat only.
    lease_call c = l.prepare(t0 + 334ms);
    CHECK(c.want_requests == 0);
    CHECK(c.want_tokens == 0);
    l.on_reply(t0 + 334ms, grant(0, 0, 3));
    CHECK_FALSE(l.due(t0 + 600ms));
    // Asked to admit, it wants a block again: 10/s x 0.25 s / 3, at least one request.
    CHECK(l.try_take(t0 + 600ms, 10) > 0ns);
    REQUIRE(l.due(t0 + 600ms));
    c = l.prepare(t0 + 600ms);
    CHECK(c.want_requests == Approx(1.0));
    CHECK(c.want_tokens == Approx(1000 * 0.25 / 3));
}
