#include "loadgen/pacing.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using sluice::detail::pace;
using sluice::detail::pacing;

TEST_CASE("a request due now or earlier is sent, whatever the busy wait") {
    const auto now = std::chrono::steady_clock::time_point{} + 1s;
    CHECK(pace(now, now, 20us) == pacing::send);
    CHECK(pace(now - 5ms, now, 20us) == pacing::send);
    CHECK(pace(now - 1ns, now, 0us) == pacing::send);
}

TEST_CASE("a request due within the busy wait is polled for, one due later waits on a timer") {
    const auto now = std::chrono::steady_clock::time_point{} + 1s;
    CHECK(pace(now + 1ns, now, 20us) == pacing::poll);
    CHECK(pace(now + 19us, now, 20us) == pacing::poll);
    CHECK(pace(now + 20us, now, 20us) == pacing::sleep);
    CHECK(pace(now + 1ms, now, 20us) == pacing::sleep);
}

TEST_CASE("a busy wait of zero always waits on a timer") {
    const auto now = std::chrono::steady_clock::time_point{} + 1s;
    CHECK(pace(now + 1ns, now, 0us) == pacing::sleep);
    CHECK(pace(now + 8us, now, 0us) == pacing::sleep);
}
