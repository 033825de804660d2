#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>

namespace sluice {

/// A continuous-refill token bucket, sans I/O: time is a parameter, never read inside, so
/// tests drive it with any clock and get exact answers. Tokens refill at `rate` per second up
/// to `capacity`; a take may drive the level negative (a debt) when the caller must charge a
/// cost it cannot refuse, such as the correction after a response's `usage`.
///
/// Thread safety: none; the owner serialises access.
class token_bucket {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;

    /// A bucket with no limit: every take succeeds at once.
    token_bucket() = default;

    /// A bucket refilling `rate_per_second` tokens per second up to `capacity`, full at `now`.
    /// A rate of zero or less means unlimited.
    token_bucket(double rate_per_second, double capacity, time_point now) noexcept
        : rate_(rate_per_second)
        , capacity_(capacity)
        , level_(capacity)
        , stamp_(now) {}

    bool unlimited() const noexcept { return rate_ <= 0; }
    double rate() const noexcept { return rate_; }
    double capacity() const noexcept { return capacity_; }

    /// Tokens available at `now` (may be negative after a debt).
    double available(time_point now) noexcept {
        refill(now);
        return level_;
    }

    /// Takes `n` tokens if they are available at `now`.
    bool try_take(time_point now, double n) noexcept {
        if (unlimited())
            return true;
        refill(now);
        if (level_ < n)
            return false;
        level_ -= n;
        return true;
    }

    /// Time from `now` until `n` tokens are available; zero when they already are. A request
    /// larger than the capacity is measured against the capacity (it can never be paid in
    /// one go, so callers should refuse it first).
    duration wait_for(time_point now, double n) noexcept {
        if (unlimited())
            return duration::zero();
        refill(now);
        const double need = std::min(n, capacity_) - level_;
        if (need <= 0)
            return duration::zero();
        const auto secs = std::chrono::duration<double>(need / rate_);
        // Round up so that waking after the wait always finds the tokens there.
        return std::chrono::ceil<duration>(secs);
    }

    /// Takes `n` tokens whether or not they are there, possibly leaving a debt.
    void take(time_point now, double n) noexcept {
        if (unlimited())
            return;
        refill(now);
        level_ -= n;
    }

    /// Gives back `n` tokens (an estimate turned out too high), never above capacity.
    void refund(double n) noexcept { level_ = std::min(capacity_, level_ + n); }

    /// Lowers the level to at most `n` (the server says only `n` remain).
    void clamp(time_point now, double n) noexcept {
        refill(now);
        level_ = std::min(level_, n);
    }

    /// Changes rate and capacity at `now`, keeping the current level within the new capacity.
    void reconfigure(time_point now, double rate_per_second, double capacity) noexcept {
        refill(now);
        rate_ = rate_per_second;
        capacity_ = capacity;
        level_ = std::min(level_, capacity_);
    }

private:
    void refill(time_point now) noexcept {
        if (now > stamp_) {
            const double secs = std::chrono::duration<double>(now - stamp_).count();
            level_ = std::min(capacity_, level_ + secs * rate_);
            stamp_ = now;
        }
    }

    double rate_ = 0;
    double capacity_ = 0;
    double level_ = 0;
    time_point stamp_{};
};

} // namespace sluice
