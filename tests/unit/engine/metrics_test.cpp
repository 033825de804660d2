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

TEST_CASE("merge adds the scopes of several engines: shares of limits, levels and 429s") {
    stats_snapshot a, b;
    a.scopes[""].rpm = 30;
    a.scopes[""].rate_limited = 1;
    a.scopes[""].requests_available = 0.5;
    a.scopes[""].waiting = 2;
    b.scopes[""].rpm = 30;
    b.scopes[""].rate_limited = 2;
    b.scopes[""].requests_available = -1;
    b.scopes[""].limits_learned = true;
    b.scopes["gpt-4o"].tpm = 1000;
    a.admission_wait.record(1ms);
    b.admission_wait.record(2ms);
    merge(a, b);
    CHECK(a.scopes[""].rpm == 60);
    CHECK(a.scopes[""].rate_limited == 3);
    CHECK(a.scopes[""].requests_available == -0.5);
    CHECK(a.scopes[""].waiting == 2);
    CHECK(a.scopes[""].limits_learned);
    CHECK(a.scopes["gpt-4o"].tpm == 1000);
    CHECK(a.admission_wait.count() == 2);
}
