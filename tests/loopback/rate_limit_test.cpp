// Admission against the mock server enforcing RPM/TPM: the client uses the budget and does not
// run into the wall. Each load is sized to take a few seconds.
#include "support/loopback.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace rate_limit_test {

using namespace sluice;
namespace asio = boost::asio;

namespace {

struct load_result {
    stats_snapshot stats;
    double seconds = 0;
    int ok = 0;
    // The mock's counters one second into the run (empty when it ended sooner) and at its end:
    // what happened once the client had taken the first answers' headers.
    std::optional<mock_stats> early;
    mock_stats end;
    double early_seconds = 0;
};

load_result run_load(test::loopback_mock& mock, dispatcher_options opts, int n, int max_tokens) {
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), opts);
    load_result out;
    int remaining = n;
    const auto start = std::chrono::steady_clock::now();
    asio::steady_timer checkpoint(ioc, start + std::chrono::seconds(1));
    checkpoint.async_wait([&](error_code ec) {
        if (ec)
            return;
        out.early = mock.server().stats();
        out.early_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = std::to_string(i);
        req.body = test::chat_body(i, max_tokens);
        engine.async_complete(std::move(req), [&](error_code ec, result) {
            out.ok += !ec;
            if (--remaining == 0) {
                out.end = mock.server().stats();
                checkpoint.cancel();
                engine.stop();
            }
        });
    }
    ioc.run();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.stats = engine.stats();
    return out;
}

// The tokens the mock charged for the answers it served: prompt + the completion budget, which
// its usage reports in full when the mock answers with max_tokens words.
double charged_tokens(const stats_snapshot& s) {
    return static_cast<double>(s.prompt_tokens + s.completion_tokens);
}

// Checks a load that starts without the right limits (too high, or none): once the first
// answers' headers are in (after the first second) the client runs at the server's limit with
// no 429s, and every request is done. `per_second` is the binding limit in units a second,
// `units_per_request` what each request costs in them, `first_wave` the requests that go out
// before any answer (the connections).
void check_converged(const load_result& r,
                     int n,
                     double per_second,
                     double units_per_request,
                     std::uint64_t first_wave) {
    CHECK(r.ok == n); // every request done, the early 429s retried
    REQUIRE(r.early);
    REQUIRE(r.seconds > 2);
    // 429s after the first second: the client is at the server's pace. A stray one can come
    // from scheduling on a loaded machine (an answer's headers read late); a client still
    // running on its configured limits earns hundreds.
    const std::uint64_t late_429s = r.end.rate_limited - r.early->rate_limited;
    CHECK(late_429s <= 2);
    // And it uses the limit: served after the first second at >= 90% of the server's rate.
    const double late_rate = static_cast<double>(r.end.ok - r.early->ok) * units_per_request /
                             (r.seconds - r.early_seconds);
    CHECK(late_rate >= 0.9 * per_second);
    // Before the first answer nothing is known: the first wave (one request per connection)
    // may overrun the server's bucket, and that is all; the retries after it do not.
    CHECK(r.end.rate_limited <= first_wave);
}

} // namespace

TEST_CASE("an RPM-bound load uses the limit without 429s") {
    mock_options mo;
    mo.rpm = 12'000; // 200 a second, one second of burst
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.limits.rpm = 12'000;
    const int n = 1'000;
    const auto r = run_load(mock, opts, n, 16);
    CHECK(r.ok == n);
    // One second's burst, then the refill: (1000 - 200) / 200 = 4 s at least.
    const double floor_s = (n - 200) / 200.0;
    // Never faster than the limit allows: a loaded machine can only make this slower. That it
    // uses the whole limit is exact on a manual clock (engine_timing_test); a wall-clock upper
    // bound here would only measure the machine's load.
    CHECK(r.seconds >= floor_s * 0.99);
    CHECK(mock.server().stats().rate_limited * 200 < static_cast<std::uint64_t>(n)); // < 0.5%
}

TEST_CASE("a TPM-bound load uses the token limit without 429s") {
    mock_options mo;
    mo.tpm = 600'000;       // 10,000 tokens a second
    mo.answer_tokens = 256; // usage then reports the whole budget the mock charged
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.limits.tpm = 600'000;
    const int n = 400;
    // 17 prompt tokens + 256 of completion budget per request, as both sides count
    const auto r = run_load(mock, opts, n, 256);
    CHECK(r.ok == n);
    const double tokens = charged_tokens(r.stats);
    CHECK(tokens == 273.0 * n);
    const double floor_s = (tokens - 10'000) / 10'000;
    CHECK(r.seconds >= floor_s * 0.9); // as above, the lower bound only
    CHECK(mock.server().stats().rate_limited * 200 < static_cast<std::uint64_t>(n));
}

TEST_CASE("RPM limits configured 3x too high converge from the server's headers") {
    mock_options mo;
    mo.rpm = 6'000; // 100 a second
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.limits.rpm = 18'000;
    opts.retry.max_attempts = 10;
    const int n = 500; // about 4 s at the server's limit
    const auto r = run_load(mock, opts, n, 16);
    check_converged(r, n, 100, 1, opts.pool.max_connections);
}

TEST_CASE("TPM limits configured 3x too high converge from the server's headers") {
    mock_options mo;
    mo.tpm = 600'000;       // 10,000 tokens a second
    mo.answer_tokens = 256; // usage then reports the whole budget the mock charged
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.limits.tpm = 1'800'000;
    opts.retry.max_attempts = 10;
    const int n = 200; // 273 tokens each: about 4.5 s at the server's limit
    const auto r = run_load(mock, opts, n, 256);
    REQUIRE(r.ok > 0);
    const double per_request = charged_tokens(r.stats) / r.ok;
    CHECK(per_request == 273); // what the test is sized for
    check_converged(r, n, 10'000, per_request, opts.pool.max_connections);
}

TEST_CASE("limits not configured are learned from the server's headers") {
    mock_options mo;
    mo.rpm = 6'000;
    test::loopback_mock mock(mo);
    auto opts = mock.client_options(); // no rpm, no tpm: learn_from_headers
    REQUIRE(opts.limits.learn_from_headers);
    opts.retry.max_attempts = 10;
    std::vector<std::string> logged;
    opts.log.sink = [&](log_level level, std::string_view m) {
        CHECK(level == log_level::info);
        logged.emplace_back(m);
    };
    const int n = 500;
    const auto r = run_load(mock, opts, n, 16);
    check_converged(r, n, 100, 1, opts.pool.max_connections);
    // Said once, with the server's figures, through the logger.
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].rfind("using the server's rate limits: 6000 requests/min", 0) == 0);
}

TEST_CASE("a first wave far over the server's bucket does not stall admission") {
    mock_options mo;
    mo.rpm = 600; // 10 a second, a bucket of 10: 54 of the first 64 are refused
    test::loopback_mock mock(mo);
    auto opts = mock.client_options(); // nothing configured: learned from the first answer
    opts.retry.max_attempts = 10;
    const int n = 50; // about 4 s at the server's limit
    const auto r = run_load(mock, opts, n, 16);
    // Paying for the refused ones twice would hold admission back 5 s after the server has
    // refilled, and the rate after the first second would drop to half.
    check_converged(r, n, 10, 1, opts.pool.max_connections);
}

TEST_CASE("with no limits known and no headers or hints, the rate is found from the 429s") {
    // The target (>= 90% of the limit, < 2% 429s), at ten times the rate of the
    // benchmark (bench/admission/adaptive.sh: 3,000 RPM for a minute) to keep it short.
    mock_options mo;
    mo.rpm = 30'000;       // 500 a second, a bucket of one second
    mo.hide_limits = true; // no x-ratelimit-*, no retry-after, no "try again in"
    test::loopback_mock mock(mo);
    auto opts = mock.client_options(); // no rpm, no tpm, no tier
    REQUIRE(opts.limits.adaptive.enabled);
    opts.retry.max_attempts = 10;
    std::vector<std::string> logged;
    opts.log.sink = [&](log_level, std::string_view m) {
        logged.emplace_back(m);
    };

    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), opts);
    const int n = 6'000; // 12 s at the limit, less the server's first second of burst
    int done = 0;
    int ok = 0;
    const auto start = std::chrono::steady_clock::now();
    double seconds = 0;
    // Bounded: a rate stuck low would otherwise take minutes. 30 s is 2.5 times the run at
    // the limit.
    asio::steady_timer bound(ioc, start + std::chrono::seconds(30));
    bound.async_wait([&](error_code ec) {
        if (!ec)
            engine.stop();
    });
    double adaptive_rpm = 0;
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = std::to_string(i);
        req.body = test::chat_body(i, 16);
        engine.async_complete(std::move(req), [&](error_code ec, result) {
            ok += !ec;
            if (++done == n) {
                seconds =
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                adaptive_rpm = engine.stats().scopes[""].adaptive_rpm;
                bound.cancel();
                engine.stop();
            }
        });
    }
    ioc.run();
    const mock_stats m = mock.server().stats();
    INFO("seconds " << seconds << ", mock requests " << m.requests << ", 429s " << m.rate_limited
                    << ", adaptive rpm at the end " << adaptive_rpm);
    REQUIRE(done == n);
    CHECK(ok == n);
    // The limit used: the server's first second of burst plus 500 a second, at least 90%.
    const double served_per_second = static_cast<double>(m.ok - 500) / seconds;
    CHECK(served_per_second >= 0.9 * 500);
    // Under 2% of the requests sent were refused.
    CHECK(m.rate_limited * 50 < m.requests);
    // The rate found is near the server's and shows in the stats; said once on the log.
    CHECK(adaptive_rpm > 0.8 * 30'000);
    CHECK(adaptive_rpm < 1.5 * 30'000);
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("finding the rate from the 429s") != std::string::npos);
}

TEST_CASE("adaptive admission off: 429s without hints are only retried") {
    mock_options mo;
    mo.rpm = 6'000; // 100 a second
    mo.hide_limits = true;
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.limits.adaptive.enabled = false;
    opts.retry.max_attempts = 20;
    const int n = 300;
    const auto r = run_load(mock, opts, n, 16);
    // Every request still ends well, but the client keeps running into the wall: the 429s
    // are many times the 2% that adapting keeps to (what the switch is there to compare).
    CHECK(r.ok == n);
    CHECK(r.end.rate_limited * 50 > r.end.requests);
    CHECK(r.stats.scopes.at("").adaptive_rpm == 0);
}

} // namespace rate_limit_test
