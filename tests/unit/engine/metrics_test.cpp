#include <sluice/metrics.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

TEST_CASE("merge adds the counts of several dispatchers") {
    stats_snapshot a, b;
    a.succeeded = 3;
    a.failures["timeout"] = 1;
    a.latency.record(1ms);
    b.succeeded = 4;
    b.failures["timeout"] = 2;
    b.failures["rate_limited"] = 1;
    b.latency.record(3ms);
    b.ttft.record(2ms);
    b.itl.record(4ms);
    b.itl.record(5ms);
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
    CHECK(a.ttft.count() == 1);
    CHECK(a.itl.count() == 2);
    CHECK(a.itl.max() == nanoseconds(5ms));
}
