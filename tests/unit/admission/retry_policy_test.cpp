#include <sluice/admission/retry_policy.hpp>

#include <boost/asio/error.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;
using action = retry_decision::action;

namespace {

attempt_outcome status(unsigned s, std::string_view code = {}) {
    attempt_outcome o;
    o.status = s;
    o.provider_code = code;
    return o;
}

} // namespace

TEST_CASE("classify maps statuses and provider codes to errors") {
    CHECK_FALSE(classify(status(200)));
    CHECK(classify(status(429, "rate_limit_exceeded")) == errc::rate_limited);
    CHECK(classify(status(429)) == errc::rate_limited);
    for (auto code : {"insufficient_quota",
                      "credit_balance_exhausted",
                      "organization_spend_limit_exceeded",
                      "project_spend_limit_exceeded",
                      "organization_usage_limit_exceeded"})
        CHECK(classify(status(429, code)) == errc::quota_exhausted);
    for (unsigned s : {408u, 409u, 500u, 502u, 503u, 504u})
        CHECK(classify(status(s)) == errc::server_error);
    for (unsigned s : {400u, 403u, 404u, 422u})
        CHECK(classify(status(s)) == errc::client_error);
    CHECK(classify(status(401, "invalid_api_key")) == errc::unauthorized);
    attempt_outcome reset;
    reset.transport_error = boost::asio::error::connection_reset;
    CHECK(classify(reset) == boost::asio::error::connection_reset);
}

TEST_CASE("retryable failures are retried, the others never") {
    retry_policy p(retry_options{}, 1);
    CHECK(p.decide(status(200), 1).what == action::done);
    for (unsigned s : {408u, 409u, 429u, 500u, 503u})
        CHECK(p.decide(status(s), 1).what == action::retry);
    for (unsigned s : {400u, 403u, 404u, 422u}) {
        const auto d = p.decide(status(s), 1);
        CHECK(d.what == action::give_up);
        CHECK(d.ec == errc::client_error);
    }
    const auto refused_key = p.decide(status(401), 1);
    CHECK(refused_key.what == action::give_up);
    CHECK(refused_key.ec == errc::unauthorized);
    CHECK(is_fatal(refused_key.ec));
    const auto quota = p.decide(status(429, "insufficient_quota"), 1);
    CHECK(quota.what == action::give_up);
    CHECK(quota.ec == errc::quota_exhausted);
    attempt_outcome refused;
    refused.transport_error = boost::asio::error::connection_refused;
    CHECK(p.decide(refused, 1).what == action::retry);
}

TEST_CASE("max_attempts bounds the retries and keeps the cause") {
    retry_options o;
    o.max_attempts = 3;
    retry_policy p(o, 1);
    CHECK(p.decide(status(503), 1).what == action::retry);
    CHECK(p.decide(status(503), 2).what == action::retry);
    const auto last = p.decide(status(503), 3);
    CHECK(last.what == action::give_up);
    CHECK(last.ec == errc::server_error);
}

TEST_CASE("the server's hint sets the delay, capped by max_retry_after") {
    retry_options o;
    o.max_retry_after = 10s;
    retry_policy p(o, 1);
    auto out = status(429, "rate_limit_exceeded");
    out.retry_after = nanoseconds(1200ms);
    CHECK(p.decide(out, 1).delay == nanoseconds(1200ms));
    out.retry_after = nanoseconds(5min);
    CHECK(p.decide(out, 1).delay == nanoseconds(10s));
}

TEST_CASE("x-should-retry overrides the status rule but never a quota error") {
    retry_policy p(retry_options{}, 1);
    auto no = status(503);
    no.should_retry = false;
    CHECK(p.decide(no, 1).what == action::give_up);
    auto yes = status(400);
    yes.should_retry = true;
    CHECK(p.decide(yes, 1).what == action::retry);
    auto quota = status(429, "insufficient_quota");
    quota.should_retry = true;
    CHECK(p.decide(quota, 1).what == action::give_up);
}

TEST_CASE("backoff is full jitter within the doubling window, capped") {
    retry_options o; // 0.5 s initial, 8 s cap
    retry_policy p(o, 42);
    for (unsigned attempt = 1; attempt <= 10; ++attempt) {
        const nanoseconds ceiling =
            std::min<nanoseconds>(nanoseconds(500ms) * (1 << (attempt - 1)), nanoseconds(8s));
        nanoseconds lo = ceiling, hi{0};
        for (int i = 0; i < 200; ++i) {
            const auto d = p.backoff(attempt);
            CHECK(d >= nanoseconds(0));
            CHECK(d <= ceiling);
            lo = std::min(lo, d);
            hi = std::max(hi, d);
        }
        // Spread over the window, not stuck at one end.
        CHECK(lo < ceiling / 4);
        CHECK(hi > ceiling * 3 / 4);
    }
}

TEST_CASE("the same seed gives the same backoff sequence") {
    retry_policy a(retry_options{}, 7), b(retry_options{}, 7);
    for (unsigned i = 1; i <= 5; ++i)
        CHECK(a.backoff(i) == b.backoff(i));
}

TEST_CASE("retry_options::validate names the bad field") {
    retry_options o;
    o.max_attempts = 0;
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("retry.max_attempts"));
    o = {};
    o.max_backoff = 1ms;
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("retry.max_backoff"));
}

TEST_CASE("classify keeps 5xx to the 500s") {
    CHECK(classify(status(599)) == errc::server_error);
    CHECK(classify(status(600)) == errc::client_error);
    CHECK(classify(status(302)) == errc::client_error);
    CHECK(classify(status(204)) == error_code{});
}

TEST_CASE("max_attempts of 1 disables retries") {
    retry_options o;
    o.max_attempts = 1;
    retry_policy p(o, 1);
    const auto d = p.decide(status(429, "rate_limit_exceeded"), 1);
    CHECK(d.what == action::give_up);
    CHECK(d.ec == errc::rate_limited);
}

TEST_CASE("a hint never makes a delay negative and is ignored for final failures") {
    retry_policy p(retry_options{}, 1);
    auto out = status(503);
    out.retry_after = nanoseconds(-5s);
    CHECK(p.decide(out, 1).delay == nanoseconds(0));
    auto bad = status(400);
    bad.retry_after = nanoseconds(1s);
    CHECK(p.decide(bad, 1).what == action::give_up);
}

TEST_CASE("backoff stays bounded for any attempt count and any options") {
    retry_options o;
    o.initial_backoff = 3s;
    o.max_backoff = 8s;
    retry_policy p(o, 3);
    nanoseconds hi{0};
    for (int i = 0; i < 200; ++i)
        hi = std::max(hi, p.backoff(3)); // min(8 s, 3 s * 4)
    CHECK(hi <= nanoseconds(8s));
    CHECK(hi > nanoseconds(6s)); // the window reaches the cap, not just 6 s
    CHECK(p.backoff(4'000'000'000u) <= nanoseconds(8s));
    o.initial_backoff = 0ms;
    retry_policy zero(o, 3);
    CHECK(zero.backoff(4'000'000'000u) == nanoseconds(0));
}

TEST_CASE("a 429 that says the request is too large is final, whatever x-should-retry says") {
    retry_policy p(retry_options{}, 1);
    auto out = status(429, "rate_limit_exceeded");
    out.provider_message = "Request too large for gpt-4o-mini in organization org-abc on tokens "
                           "per min (TPM): Limit 10000, Requested 30000. The input or output "
                           "tokens must be reduced in order to run successfully.";
    out.retry_after = nanoseconds(2s);
    out.should_retry = true;
    CHECK(classify(out) == errc::request_too_large);
    const auto d = p.decide(out, 1);
    CHECK(d.what == action::give_up);
    CHECK(d.ec == errc::request_too_large);
    // The same code with an ordinary message is the server pacing the client.
    out.provider_message = "Rate limit reached for gpt-4o-mini on tokens per min (TPM): Limit "
                           "10000, Used 9000, Requested 3000.";
    CHECK(classify(out) == errc::rate_limited);
    CHECK(p.decide(out, 1).what == action::retry);
}

TEST_CASE("x-should-retry: true does not make a refused key or a spent quota retried") {
    retry_policy p(retry_options{}, 1);
    auto key = status(401, "invalid_api_key");
    key.should_retry = true;
    CHECK(p.decide(key, 1).what == action::give_up);
    auto quota = status(429, "insufficient_quota");
    quota.should_retry = true;
    CHECK(p.decide(quota, 1).what == action::give_up);
    auto bad = status(400);
    bad.should_retry = true; // the server's word for an ordinary status stands
    CHECK(p.decide(bad, 1).what == action::retry);
}
