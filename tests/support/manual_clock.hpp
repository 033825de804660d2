#pragma once

#include <chrono>

namespace sluice::test {

/// Time that moves only when the test says so: rate and retry logic is tested exactly, with
/// no sleeps. Starts at an arbitrary fixed point of the steady clock's timeline.
class manual_clock {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::steady_clock::duration;

    time_point now() const noexcept { return now_; }
    void advance(duration d) noexcept { now_ += d; }
    template <class Rep, class Period>
    void advance(std::chrono::duration<Rep, Period> d) noexcept {
        now_ += std::chrono::duration_cast<duration>(d);
    }

private:
    time_point now_{std::chrono::hours(1000)};
};

} // namespace sluice::test
