#include <sluice/metrics.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

TEST_CASE("latency percentiles are within the histogram's 1/32 relative precision") {
    latency_histogram h;
    for (int ms = 1; ms <= 1000; ++ms)
        h.record(std::chrono::milliseconds(ms));
    CHECK(h.count() == 1000);
    CHECK(h.max() == nanoseconds(1000ms));
    for (double q : {0.5, 0.9, 0.99}) {
        const double expected = q * 1e9; // q-th of 1..1000 ms
        const double got = static_cast<double>(h.percentile(q).count());
        CHECK(got >= expected);
        CHECK(got <= expected * (1 + 1.0 / 32) + 1e6);
    }
    CHECK(h.percentile(1.0) == nanoseconds(1000ms));
    CHECK(h.mean() == nanoseconds(500500us));
}

TEST_CASE("an empty histogram reports zero and small values are exact") {
    latency_histogram h;
    CHECK(h.percentile(0.5) == nanoseconds(0));
    h.record(nanoseconds(7));
    CHECK(h.percentile(0.5) == nanoseconds(7));
    h.record(-5ns); // clock skew is clamped, not a crash
    CHECK(h.count() == 2);
}

TEST_CASE("merge adds the counts of several dispatchers") {
    stats_snapshot a, b;
    a.succeeded = 3;
    a.failures["timeout"] = 1;
    a.latency.record(1ms);
    b.succeeded = 4;
    b.failures["timeout"] = 2;
    b.failures["rate_limited"] = 1;
    b.latency.record(3ms);
    a.statuses[200] = 3;
    b.statuses[200] = 4;
    b.statuses[0] = 1;
    merge(a, b);
    CHECK(a.statuses[200] == 7);
    CHECK(a.statuses[0] == 1);
    CHECK(a.succeeded == 7);
    CHECK(a.failures["timeout"] == 3);
    CHECK(a.failures["rate_limited"] == 1);
    CHECK(a.latency.count() == 2);
    CHECK(a.latency.max() == nanoseconds(3ms));
}
