#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace sluice {

/// A retry budget per endpoint, in the spirit of Finagle's and Envoy's retry budgets and the
/// AWS SDK's retry quota: over a sliding window, retries may be at most `ratio` of the
/// requests sent plus a small floor, so that an outage cannot turn into a retry storm. Sans
/// I/O: every call takes `now`.
///
/// Thread safety: none; the dispatcher calls it from its own executor.
class retry_budget {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;

    /// `ratio` retries per request (0.2: one retry per five requests), plus `min_per_second`
    /// retries a second whatever the traffic, counted over `window` (at most 60 s).
    retry_budget(double ratio, double min_per_second, std::chrono::seconds window, time_point now);

    /// Counts a first attempt.
    void on_request(time_point now) noexcept;

    /// Takes one retry from the budget; false when it is spent (the retry must not be made).
    bool try_retry(time_point now) noexcept;

    /// Retries still allowed at `now`.
    double available(time_point now) noexcept;

private:
    static constexpr std::size_t slots = 60;

    void advance(time_point now) noexcept;

    double ratio_;
    double min_per_second_;
    std::int64_t window_s_;
    std::int64_t current_ = 0; // the second of the newest slot
    std::array<std::uint64_t, slots> requests_{};
    std::array<std::uint64_t, slots> retries_{};
    time_point origin_;
};

} // namespace sluice
