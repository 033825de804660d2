#include <sluice/admission/limit_headers.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

TEST_CASE("parse_duration reads the durations OpenAI sends") {
    CHECK(parse_duration("20ms") == nanoseconds(20ms));
    CHECK(parse_duration("1s") == nanoseconds(1s));
    CHECK(parse_duration("1.5s") == nanoseconds(1500ms));
    CHECK(parse_duration("6m0s") == nanoseconds(6min));
    CHECK(parse_duration("1h2m3.5s") == nanoseconds(1h + 2min + 3500ms));
    CHECK(parse_duration("250us") == nanoseconds(250us));
    CHECK(parse_duration("250\xC2\xB5s") == nanoseconds(250us));
    CHECK(parse_duration("10ns") == nanoseconds(10));
    CHECK(parse_duration("2") == nanoseconds(2s)); // a bare number is seconds
    CHECK(parse_duration(" 7ms ") == nanoseconds(7ms));
}

TEST_CASE("parse_duration refuses garbage") {
    for (const char* bad : {"", "-1s", "s", "1x", "ms", "1.2.3s", "abc", "1s garbage", "--"})
        CHECK_FALSE(parse_duration(bad).has_value());
}

TEST_CASE("parse_rate_limit_headers keeps sane values and drops the rest") {
    response_meta_view meta;
    meta.limit_requests = "3500";
    meta.limit_tokens = "90000";
    meta.remaining_requests = "3499";
    meta.remaining_tokens = "89500.5";
    meta.reset_requests = "17ms";
    meta.reset_tokens = "6m0s";
    const auto h = parse_rate_limit_headers(meta);
    CHECK(h.limit_requests == 3500);
    CHECK(h.limit_tokens == 90000);
    CHECK(h.remaining_requests == 3499);
    CHECK(h.remaining_tokens == Approx(89500.5));
    CHECK(h.reset_requests == nanoseconds(17ms));
    CHECK(h.reset_tokens == nanoseconds(6min));

    response_meta_view odd; // what Azure has sent, and garbage
    odd.limit_requests = "0";
    odd.remaining_requests = "-1";
    odd.limit_tokens = "lots";
    const auto o = parse_rate_limit_headers(odd);
    CHECK(o.empty());
}

TEST_CASE("parse_retry_after prefers retry-after-ms, then seconds, then an HTTP date") {
    const auto now = std::chrono::system_clock::from_time_t(1445412480); // 2015-10-21 07:28:00
    response_meta_view m;
    m.retry_after_ms = "250";
    m.retry_after = "3";
    CHECK(parse_retry_after(m, now) == nanoseconds(250ms));
    m.retry_after_ms = "";
    CHECK(parse_retry_after(m, now) == nanoseconds(3s));
    m.retry_after = "0.5";
    CHECK(parse_retry_after(m, now) == nanoseconds(500ms));
    m.retry_after = "Wed, 21 Oct 2015 07:28:20 GMT";
    CHECK(parse_retry_after(m, now) == nanoseconds(20s));
    m.retry_after = "Wed, 21 Oct 2015 07:27:00 GMT"; // in the past: retry now
    CHECK(parse_retry_after(m, now) == nanoseconds(0));
    m.retry_after = "soon";
    CHECK_FALSE(parse_retry_after(m, now).has_value());
    m.retry_after = "";
    CHECK_FALSE(parse_retry_after(m, now).has_value());
}

TEST_CASE("parse_duration takes Go's other micro sign and refuses absurd sizes") {
    CHECK(parse_duration("3\xCE\xBCs") == nanoseconds(3us));
    CHECK(parse_duration("0s") == nanoseconds(0));
    CHECK(parse_duration("1.5h") == nanoseconds(90min));
    CHECK_FALSE(parse_duration("1e300").has_value());
    CHECK_FALSE(parse_duration("99999999999h").has_value());
    CHECK_FALSE(parse_duration("inf").has_value());
    CHECK_FALSE(parse_duration("nan").has_value());
}

TEST_CASE("parse_retry_after skips a bad retry-after-ms and refuses bad dates") {
    const auto now = std::chrono::system_clock::from_time_t(1445412480); // 2015-10-21 07:28:00
    response_meta_view m;
    m.retry_after_ms = "-5";
    m.retry_after = "2";
    CHECK(parse_retry_after(m, now) == nanoseconds(2s)); // falls back to retry-after
    m.retry_after_ms = "12.5";
    CHECK(parse_retry_after(m, now) == nanoseconds(12500us));
    m.retry_after_ms = "";
    for (const char* bad : {"-3",
                            "1e400",
                            "Wed, 21 Foo 2015 07:28:00 GMT",
                            "Wed, 21 Oct 2015 25:28:00 GMT",
                            "Wed, 21 Oct 2015 07:28:00 UTC",
                            "Wed, 21 Oct 15 07:28:00 GMT",
                            "Wed, 21 Oct 9999 07:28:00 GMT"}) {
        m.retry_after = bad;
        CHECK_FALSE(parse_retry_after(m, now).has_value());
    }
    m.retry_after = "Thu, 22 Oct 2015 07:28:00 GMT"; // a day later, across a date boundary
    CHECK(parse_retry_after(m, now) == nanoseconds(24h));
}

TEST_CASE("parse_too_large reads the limit and the count out of a too-large refusal") {
    const auto h = parse_too_large(
        "Request too large for gpt-4o-mini in organization org-abc on tokens per min (TPM): "
        "Limit 10000, Requested 30000. The input or output tokens must be reduced in order to "
        "run successfully. Visit https://example.test/rate-limits to learn more.");
    REQUIRE(h);
    CHECK(h->limit == 10000);
    CHECK(h->requested == 30000);

    const auto commas = parse_too_large("request too large for gpt-4o on tokens per min: "
                                        "Limit 200,000, Requested 250,000.");
    REQUIRE(commas);
    CHECK(commas->limit == 200000);
    CHECK(commas->requested == 250000);

    // Ordinary rate limiting, garbage and impossible figures are not too-large refusals.
    CHECK_FALSE(parse_too_large("Rate limit reached for gpt-4o-mini: Limit 10000, Used 9990, "
                                "Requested 30."));
    CHECK_FALSE(parse_too_large("Request too large"));
    CHECK_FALSE(parse_too_large("Request too large: Limit 30000, Requested 100"));
    CHECK_FALSE(parse_too_large("Request too large: Limit -5, Requested 10"));
    CHECK_FALSE(parse_too_large("Request too large: RateLimit 5, Requested 10"));
    CHECK_FALSE(parse_too_large(""));
}
