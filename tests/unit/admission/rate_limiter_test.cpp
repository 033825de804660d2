#include "support/manual_clock.hpp"

#include <sluice/admission/rate_limiter.hpp>

#include <catch2/catch.hpp>

#include <limits>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// A greedy client: asks for admission whenever the limiter says it may, for `span`, and counts
// what got in. Returns the number of admitted requests.
int run_greedy(rate_limiter& limiter,
               test::manual_clock& clock,
               std::uint64_t cost,
               std::chrono::seconds span) {
    const auto end = clock.now() + span;
    int admitted = 0;
    while (clock.now() < end) {
        const auto wait = limiter.try_admit(clock.now(), cost);
        if (wait == rate_limiter::duration::zero())
            ++admitted;
        else
            clock.advance(wait);
    }
    return admitted;
}

limit_options limits(double rpm, double tpm, double burst_s = 1.0) {
    limit_options o;
    o.rpm = rpm;
    o.tpm = tpm;
    o.burst = std::chrono::duration<double>(burst_s);
    return o;
}

} // namespace

TEST_CASE("an RPM-bound greedy client gets the limit and not more") {
    test::manual_clock clock;
    rate_limiter limiter(limits(600, 0), clock.now()); // 10/s, burst 10
    const int admitted = run_greedy(limiter, clock, 100, 60s);
    // A full bucket at the start, then exactly the refill: 600 + 10.
    CHECK(admitted >= 600);
    CHECK(admitted <= 610);
}

TEST_CASE("a TPM-bound greedy client gets the token limit and not more") {
    test::manual_clock clock;
    rate_limiter limiter(limits(100000, 60000), clock.now()); // 1000 tokens/s
    const int admitted = run_greedy(limiter, clock, 500, 60s);
    // 60,000 tokens a minute at 500 each: 120, plus one second of burst (2).
    CHECK(admitted >= 120);
    CHECK(admitted <= 122);
}

TEST_CASE("the limiter does not let a minute's budget out in the first second") {
    test::manual_clock clock;
    rate_limiter limiter(limits(3500, 0), clock.now());
    int first_second = 0;
    while (limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero())
        ++first_second;
    // about one second's worth (3500 / 60), not 3500
    CHECK(first_second == 58);
}

TEST_CASE("a request bigger than one second's tokens gets in when the bucket is full") {
    test::manual_clock clock;
    rate_limiter limiter(limits(0, 6000), clock.now()); // 100 tokens/s, bucket 100
    REQUIRE(limiter.try_admit(clock.now(), 100) == rate_limiter::duration::zero());
    // 250 tokens: more than the bucket holds, less than the minute's limit.
    const auto wait = limiter.try_admit(clock.now(), 250);
    CHECK(wait == std::chrono::duration_cast<rate_limiter::duration>(1s));
    clock.advance(wait);
    CHECK(limiter.try_admit(clock.now(), 250) == rate_limiter::duration::zero());
    // It left a debt of 150 tokens: the next small request waits for it to be paid.
    CHECK(limiter.try_admit(clock.now(), 1) ==
          std::chrono::duration_cast<rate_limiter::duration>(1510ms));
}

TEST_CASE("a request costing more than the token limit is refused as too large") {
    test::manual_clock clock;
    rate_limiter limiter(limits(0, 40000), clock.now());
    CHECK_FALSE(limiter.too_large(40000));
    CHECK(limiter.too_large(40001));
    rate_limiter unlimited(limits(0, 0), clock.now());
    CHECK_FALSE(unlimited.too_large(1'000'000'000));
}

TEST_CASE("settle refunds an overestimate and charges an underestimate") {
    test::manual_clock clock;
    rate_limiter limiter(limits(0, 6000), clock.now()); // bucket of 100 tokens
    REQUIRE(limiter.try_admit(clock.now(), 100) == rate_limiter::duration::zero());
    limiter.settle(clock.now(), 100, 40); // the response used 40: 60 come back
    CHECK(limiter.try_admit(clock.now(), 60) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 1) > rate_limiter::duration::zero());
    limiter.settle(clock.now(), 10, 110); // 100 more than estimated: a debt
    CHECK(limiter.try_admit(clock.now(), 1) ==
          std::chrono::duration_cast<rate_limiter::duration>(1010ms));
}

TEST_CASE("hold_until stops all admission until the hint and starts empty after it") {
    test::manual_clock clock;
    rate_limiter limiter(limits(600, 0), clock.now()); // bucket of 10
    limiter.hold_until(clock.now() + 2s);
    CHECK(limiter.try_admit(clock.now(), 1) ==
          std::chrono::duration_cast<rate_limiter::duration>(2s));
    clock.advance(2s);
    // The bucket was drained for the end of the hold: one request's refill time (0.1 s).
    CHECK(limiter.try_admit(clock.now(), 1) ==
          std::chrono::duration_cast<rate_limiter::duration>(100ms));
    clock.advance(100ms);
    CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
}

TEST_CASE("reconcile never leaves more than the server says remains") {
    test::manual_clock clock;
    rate_limiter limiter(limits(600, 60000), clock.now());
    rate_limit_headers h;
    h.remaining_requests = 2;
    h.remaining_tokens = 50000;
    CHECK_FALSE(limiter.reconcile(clock.now(), h));
    CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 1) > rate_limiter::duration::zero());
}

TEST_CASE("reconcile adopts a lower server limit and reports it") {
    test::manual_clock clock;
    rate_limiter limiter(limits(1800, 0), clock.now());
    rate_limit_headers h;
    h.limit_requests = 600;
    CHECK(limiter.reconcile(clock.now(), h));
    CHECK(limiter.limits().rpm == 600);
    CHECK_FALSE(limiter.reconcile(clock.now(), h)); // already adopted: reported once
    h.limit_requests = 6000;                        // a higher server limit is not adopted
    CHECK_FALSE(limiter.reconcile(clock.now(), h));
    CHECK(limiter.limits().rpm == 600);
    const int admitted = run_greedy(limiter, clock, 1, 60s);
    CHECK(admitted <= 610);
}

TEST_CASE("limit_options::validate names the bad field") {
    limit_options o;
    o.rpm = -1;
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("limits.rpm"));
    o = {};
    o.tpm = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("limits.tpm"));
    o = {};
    o.rpm = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("limits.rpm"));
    o = {};
    o.burst = std::chrono::duration<double>(0);
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("limits.burst"));
    o.burst = std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN());
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("limits.burst"));
    o = {};
    CHECK_NOTHROW(o.validate());
}

TEST_CASE("reconcile ignores values no server means") {
    test::manual_clock clock;
    rate_limiter limiter(limits(600, 0), clock.now()); // bucket of 10
    rate_limit_headers h;
    h.limit_requests = 0;
    h.remaining_requests = -1;
    CHECK_FALSE(limiter.reconcile(clock.now(), h));
    CHECK(limiter.limits().rpm == 600);
    h.limit_requests = -5;
    h.remaining_requests = std::numeric_limits<double>::quiet_NaN();
    CHECK_FALSE(limiter.reconcile(clock.now(), h));
    for (int i = 0; i < 10; ++i)
        CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
}

TEST_CASE("reconcile learns a limit that was not configured, and reports it once") {
    test::manual_clock clock;
    rate_limiter limiter(limits(0, 0), clock.now());
    // Unlimited: anything goes at once.
    for (int i = 0; i < 50; ++i)
        REQUIRE(limiter.try_admit(clock.now(), 1'000) == rate_limiter::duration::zero());
    for (std::uint64_t t = 1; t <= 50; ++t)
        limiter.complete(t);
    rate_limit_headers h;
    h.limit_requests = 600;  // 10 a second, bucket of 10
    h.limit_tokens = 60'000; // 1,000 a second, bucket of 1,000
    h.remaining_requests = 3;
    h.remaining_tokens = 60'000;
    CHECK(limiter.reconcile(clock.now(), h));
    CHECK(limiter.limits().rpm == 600);
    CHECK(limiter.limits().tpm == 60'000);
    CHECK_FALSE(limiter.reconcile(clock.now(), h)); // already in use: reported once
    // Full, then clamped to what the server says remains: 3 now, the fourth 0.1 s later.
    for (int i = 0; i < 3; ++i)
        CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 1) ==
          std::chrono::duration_cast<rate_limiter::duration>(100ms));
    // The learned token limit binds too, and refuses what can never pay.
    CHECK(limiter.too_large(60'001));
    CHECK_FALSE(limiter.too_large(60'000));
    // From here on it is the server's limit: a minute gives the refill, not more.
    const int admitted = run_greedy(limiter, clock, 1, 60s);
    CHECK(admitted >= 599);
    CHECK(admitted <= 601);
}

TEST_CASE("a limit learned without a remaining header still owes the requests in flight") {
    test::manual_clock clock;
    rate_limiter limiter(limits(0, 0), clock.now());
    for (int i = 0; i < 5; ++i)
        REQUIRE(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    // The answer to the first names the limit only; the four after it are still out and were
    // sent while no limit was known. The bucket of 10 starts full less those four.
    rate_limit_headers h;
    h.limit_requests = 600;
    CHECK(limiter.reconcile(clock.now(), h, clock.now(), 1));
    limiter.complete(1);
    for (int i = 0; i < 6; ++i)
        CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 1) > rate_limiter::duration::zero());
}

TEST_CASE("requests the server refused are not paid twice when their retries go out") {
    test::manual_clock clock;
    // No limit configured: a first wave of 64 goes out at once against a server allowing 600
    // a minute (a bucket of 10). It counts 10 and refuses the other 54 with 429s.
    rate_limiter limiter(limits(0, 0), clock.now());
    for (int i = 0; i < 64; ++i)
        REQUIRE(limiter.try_admit(clock.now(), 100) == rate_limiter::duration::zero());
    rate_limit_headers h;
    h.limit_requests = 600;
    h.remaining_requests = 9;
    // The first answer: 63 still out after it, which the server may not have counted yet.
    CHECK(limiter.reconcile(clock.now(), h, clock.now(), 1));
    limiter.complete(1);
    for (std::uint64_t t = 2; t <= 10; ++t) {
        h.remaining_requests = static_cast<double>(10 - t);
        limiter.reconcile(clock.now(), h, clock.now(), t);
        limiter.complete(t);
    }
    for (std::uint64_t t = 11; t <= 64; ++t) {
        limiter.refused(t);
        limiter.reconcile(clock.now(), h, clock.now(), t);
        limiter.complete(t);
    }
    limiter.refused(64); // again: no longer in flight, nothing to give back
    // The server is empty and refills one every 0.1 s; so is the client. Paid twice, the 54
    // refused would hold it back 5.4 s more.
    CHECK(limiter.try_admit(clock.now(), 100) ==
          std::chrono::duration_cast<rate_limiter::duration>(100ms));
}

TEST_CASE("a refused request's cost goes back to both buckets") {
    test::manual_clock clock;
    rate_limiter limiter(limits(600, 6000), clock.now()); // buckets of 10 requests, 100 tokens
    REQUIRE(limiter.try_admit(clock.now(), 100) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 100) > rate_limiter::duration::zero());
    limiter.refused(limiter.last_ticket());
    CHECK(limiter.try_admit(clock.now(), 100) == rate_limiter::duration::zero());
    // Completed first, it is not in flight any more: refused() then gives nothing back.
    limiter.complete(limiter.last_ticket());
    limiter.refused(limiter.last_ticket());
    CHECK(limiter.try_admit(clock.now(), 100) > rate_limiter::duration::zero());
}

TEST_CASE("reconcile learns nothing from values no server means") {
    test::manual_clock clock;
    rate_limiter limiter(limits(0, 0), clock.now());
    rate_limit_headers h;
    for (const double garbage : {0.0,
                                 -5.0,
                                 std::numeric_limits<double>::quiet_NaN(),
                                 std::numeric_limits<double>::infinity()}) {
        h.limit_requests = garbage;
        h.limit_tokens = garbage;
        h.remaining_requests = 0;
        h.remaining_tokens = 0;
        CHECK_FALSE(limiter.reconcile(clock.now(), h));
    }
    CHECK(limiter.limits().rpm == 0);
    CHECK(limiter.limits().tpm == 0);
    // A remaining count alone says nothing about the rate: still unlimited.
    h = {};
    h.remaining_requests = 0;
    h.remaining_tokens = 0;
    CHECK_FALSE(limiter.reconcile(clock.now(), h));
    for (int i = 0; i < 100; ++i)
        CHECK(limiter.try_admit(clock.now(), 1'000'000) == rate_limiter::duration::zero());
}

TEST_CASE("learn_from_headers = false keeps an unconfigured limit unlimited") {
    test::manual_clock clock;
    limit_options o = limits(0, 0);
    o.learn_from_headers = false;
    rate_limiter limiter(o, clock.now());
    rate_limit_headers h;
    h.limit_requests = 60;
    h.limit_tokens = 1000;
    h.remaining_requests = 0;
    h.remaining_tokens = 0;
    CHECK_FALSE(limiter.reconcile(clock.now(), h));
    CHECK(limiter.limits().rpm == 0);
    CHECK(limiter.limits().tpm == 0);
    CHECK_FALSE(limiter.too_large(1'000'000));
    CHECK(limiter.try_admit(clock.now(), 1'000'000) == rate_limiter::duration::zero());
    // A configured limit is still lowered by a lower server limit.
    o.rpm = 1800;
    rate_limiter configured(o, clock.now());
    CHECK(configured.reconcile(clock.now(), h));
    CHECK(configured.limits().rpm == 60);
    CHECK(configured.limits().tpm == 0);
}

TEST_CASE("a limiter with a share of the account takes that share of the server's figures") {
    test::manual_clock clock;
    // One of four shards of an account configured at 2,400 RPM: 600 RPM of its own.
    limit_options o = limits(600, 0);
    o.share = 0.25;
    rate_limiter limiter(o, clock.now());
    rate_limit_headers h;
    h.limit_requests = 2400; // the account's limit: this shard's share is what it has
    CHECK_FALSE(limiter.reconcile(clock.now(), h));
    CHECK(limiter.limits().rpm == 600);
    h.limit_requests = 1200;   // lower: the shard's share of it, 300, 5 a second
    h.remaining_requests = 20; // of the account: 5 for this shard
    CHECK(limiter.reconcile(clock.now(), h));
    CHECK(limiter.limits().rpm == 300);
    for (int i = 0; i < 5; ++i)
        CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 1) ==
          std::chrono::duration_cast<rate_limiter::duration>(200ms));

    // Learned from unlimited, the same.
    limit_options u = limits(0, 0);
    u.share = 0.5;
    rate_limiter learner(u, clock.now());
    h = {};
    h.limit_tokens = 120'000;
    h.remaining_tokens = 1'000;
    CHECK(learner.reconcile(clock.now(), h));
    CHECK(learner.limits().tpm == 60'000);
    CHECK(learner.try_admit(clock.now(), 500) == rate_limiter::duration::zero());
    CHECK(learner.try_admit(clock.now(), 1) > rate_limiter::duration::zero());
    // Too large is measured against the account, which the server checks, not the share.
    CHECK_FALSE(learner.too_large(120'000));
    CHECK(learner.too_large(120'001));
}

TEST_CASE("limit_options::validate wants a share above 0 and at most 1") {
    limit_options o;
    for (const double bad : {0.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
        o.share = bad;
        CHECK_THROWS_WITH(o.validate(), Catch::Contains("limits.share"));
    }
    o.share = 1;
    CHECK_NOTHROW(o.validate());
    o.share = 1.0 / 64;
    CHECK_NOTHROW(o.validate());
}

TEST_CASE("a shorter hold never cuts a longer one short") {
    test::manual_clock clock;
    rate_limiter limiter(limits(600, 0), clock.now());
    limiter.hold_until(clock.now() + 5s);
    limiter.hold_until(clock.now() + 1s);
    CHECK(limiter.try_admit(clock.now(), 1) ==
          std::chrono::duration_cast<rate_limiter::duration>(5s));
    clock.advance(1s);
    CHECK(limiter.try_admit(clock.now(), 1) ==
          std::chrono::duration_cast<rate_limiter::duration>(4s));
}

TEST_CASE("a big request's debt is paid by the refill, so the minute's tokens hold") {
    test::manual_clock clock;
    rate_limiter limiter(limits(0, 6000), clock.now()); // 100 tokens/s, bucket 100
    // Alternating big (450) and small (50) requests for a minute. Each is let out when the
    // bucket holds what it can (at most 100), so the debt never exceeds 350: over the minute
    // the client gets the refill (6000) plus the starting bucket, give or take one request.
    const auto end = clock.now() + 60s;
    std::uint64_t spent = 0;
    int admitted = 0;
    for (int i = 0; clock.now() < end && i < 10'000; ++i) {
        const std::uint64_t cost = admitted % 2 == 0 ? 450 : 50;
        const auto wait = limiter.try_admit(clock.now(), cost);
        if (wait == rate_limiter::duration::zero()) {
            spent += cost;
            ++admitted;
        } else {
            clock.advance(wait);
        }
    }
    CHECK(spent >= 6000);
    CHECK(spent <= 6000 + 100 + 350);
}

TEST_CASE("reconcile takes off the requests admitted after the answered one and still out") {
    test::manual_clock clock;
    rate_limiter limiter(limits(600, 6000), clock.now()); // buckets of 10 requests, 100 tokens
    for (int i = 0; i < 5; ++i)
        REQUIRE(limiter.try_admit(clock.now(), 10) == rate_limiter::duration::zero());
    const std::uint64_t first = 1;
    CHECK(limiter.last_ticket() == 5);
    // The server handled the first request with 9 requests and 90 tokens left; the four sent
    // after it have not reached it. Its 9 are really 5, and 90 tokens really 50.
    rate_limit_headers h;
    h.remaining_requests = 9;
    h.remaining_tokens = 90;
    limiter.reconcile(clock.now(), h, clock.now(), first);
    limiter.complete(first);
    for (int i = 0; i < 5; ++i)
        CHECK(limiter.try_admit(clock.now(), 10) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 10) > rate_limiter::duration::zero());
}

TEST_CASE("reconcile adds what the server refilled since it counted, and forgets completed") {
    test::manual_clock clock;
    rate_limiter limiter(limits(600, 0), clock.now()); // 10 a second, bucket of 10
    for (int i = 0; i < 3; ++i)
        REQUIRE(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    const auto sent = clock.now();
    clock.advance(300ms);
    // Requests 2 and 3 have their answers already: only the refill since `sent` counts.
    limiter.complete(2);
    limiter.complete(3);
    rate_limit_headers h;
    h.remaining_requests = 0;
    limiter.reconcile(clock.now(), h, sent, 1);
    limiter.complete(1);
    // 0 at `sent`, refilled 3 since: three requests may go now, the fourth 0.1 s later.
    for (int i = 0; i < 3; ++i)
        CHECK(limiter.try_admit(clock.now(), 1) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 1) ==
          std::chrono::duration_cast<rate_limiter::duration>(100ms));
}

TEST_CASE("the reconcile example of docs/rate-limits.md") {
    test::manual_clock clock;
    rate_limiter limiter(limits(600, 60'000), clock.now()); // buckets of 10 and 1,000
    const auto sent = clock.now();
    for (int i = 0; i < 5; ++i)
        REQUIRE(limiter.try_admit(clock.now(), 100) == rate_limiter::duration::zero());
    clock.advance(300ms);
    rate_limit_headers h;
    h.limit_requests = 600;
    h.limit_tokens = 60'000;
    h.remaining_requests = 6;
    h.remaining_tokens = 600;
    CHECK_FALSE(limiter.reconcile(clock.now(), h, sent, 1));
    limiter.complete(1);
    // tokens: min(1000, 600 + 300) - 4 x 100 = 500
    CHECK(limiter.try_admit(clock.now(), 501) > rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 500) == rate_limiter::duration::zero());
    // requests: min(10, 6 + 3) - 4 = 5, one of them just taken
    for (int i = 0; i < 4; ++i)
        CHECK(limiter.try_admit(clock.now(), 0) == rate_limiter::duration::zero());
    CHECK(limiter.try_admit(clock.now(), 0) ==
          std::chrono::duration_cast<rate_limiter::duration>(100ms));
}

TEST_CASE("a too-large refusal teaches the largest request the server accepts, on our scale") {
    test::manual_clock clock;
    rate_limiter limiter(limits(0, 0), clock.now()); // nothing configured
    CHECK_FALSE(limiter.too_large(25'000));
    // Estimated at 24,000, counted by the server as 30,000 against a limit of 10,000: on our
    // scale the server takes at most 8,000.
    limiter.learn_too_large(24'000, too_large_hint{10'000, 30'000});
    CHECK(limiter.request_cap() == Approx(8'000));
    CHECK(limiter.too_large(24'000)); // the request that taught it
    CHECK(limiter.too_large(8'001));
    CHECK_FALSE(limiter.too_large(8'000));
    // A looser lesson does not undo a stricter one; a stricter one wins.
    limiter.learn_too_large(40'000, too_large_hint{10'000, 20'000});
    CHECK(limiter.request_cap() == Approx(8'000));
    limiter.learn_too_large(12'000, too_large_hint{5'000, 12'000});
    CHECK(limiter.request_cap() == Approx(5'000));
    // Nonsense hints teach nothing.
    limiter.learn_too_large(0, too_large_hint{1, 2});
    limiter.learn_too_large(100, too_large_hint{200, 100});
    CHECK(limiter.request_cap() == Approx(5'000));
}
