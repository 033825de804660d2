// Admission against the mock server enforcing RPM/TPM: the client uses the budget and does not
// run into the wall. Each load is sized to take a few seconds.
#include "support/loopback.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
namespace asio = boost::asio;

namespace {

struct load_result {
    stats_snapshot stats;
    double seconds = 0;
    int ok = 0;
};

load_result run_load(dispatcher_options opts, int n, int max_tokens) {
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), opts);
    load_result out;
    int remaining = n;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = std::to_string(i);
        req.body = test::chat_body(i, max_tokens);
        engine.async_complete(std::move(req), [&](error_code ec, result) {
            out.ok += !ec;
            if (--remaining == 0)
                engine.stop();
        });
    }
    ioc.run();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.stats = engine.stats();
    return out;
}

} // namespace

TEST_CASE("an RPM-bound load uses the limit without 429s") {
    mock_options mo;
    mo.rpm = 12'000; // 200 a second, one second of burst
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.limits.rpm = 12'000;
    const int n = 1'000;
    const auto r = run_load(opts, n, 16);
    CHECK(r.ok == n);
    // One second's burst, then the refill: (1000 - 200) / 200 = 4 s at least.
    const double floor_s = (n - 200) / 200.0;
    CHECK(r.seconds >= floor_s * 0.99);
    CHECK(r.seconds <= floor_s / 0.95); // at least 95% of the limit
    CHECK(mock.server().stats().rate_limited * 200 < static_cast<std::uint64_t>(n)); // < 0.5%
}

TEST_CASE("a TPM-bound load uses the token limit without 429s") {
    mock_options mo;
    mo.tpm = 600'000; // 10,000 tokens a second
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.limits.tpm = 600'000;
    const int n = 400;
    // about 20 prompt tokens + 256 of completion budget per request, as both sides count
    const auto r = run_load(opts, n, 256);
    CHECK(r.ok == n);
    const double tokens = static_cast<double>(r.stats.admitted) * 276;
    const double floor_s = (tokens - 10'000) / 10'000;
    CHECK(r.seconds >= floor_s * 0.9);
    CHECK(r.seconds <= floor_s / 0.95);
    CHECK(mock.server().stats().rate_limited * 200 < static_cast<std::uint64_t>(n));
}

TEST_CASE("limits configured 3x too high converge from the server's headers") {
    mock_options mo;
    mo.rpm = 6'000;
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.limits.rpm = 18'000;
    opts.retry.max_attempts = 10;
    const int n = 500;
    const auto r = run_load(opts, n, 16);
    CHECK(r.ok == n); // every request done, the 429s retried
    // After the first answers the client runs at the server's limit: few 429s in all.
    CHECK(mock.server().stats().rate_limited < static_cast<std::uint64_t>(n) / 5);
}
