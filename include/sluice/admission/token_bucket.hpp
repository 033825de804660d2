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

    /// What `available(now)` would return, without moving the bucket's books: for an observer
    /// (metrics) that must not change the arithmetic of the admissions that follow.
    double peek(time_point now) const noexcept { return level_at(now); }

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

    /// Time from `now` until `n` tokens are available; zero when they already are. The answer
    /// is exact to the tick: at `now + wait_for(now, n)` the tokens are there, one tick earlier
    /// they are not. A request larger than the capacity is measured against the capacity (it
    /// can never be paid in one go, so callers should refuse it first). Waits longer than
    /// `max_wait` are reported as `max_wait`: ask again then.
    duration wait_for(time_point now, double n) noexcept {
        if (unlimited())
            return duration::zero();
        refill(now);
        const double target = std::min(n, capacity_);
        if (level_at(now) >= target)
            return duration::zero();
        // Tokens accrue from the stamp, which a hold may have put after `now`.
        const duration lead = stamp_ > now ? stamp_ - now : duration::zero();
        const std::chrono::duration<double> secs((target - level_) / rate_);
        if (!(secs < max_wait - lead))
            return max_wait;
        duration wait = lead + std::chrono::ceil<duration>(secs);
        // The division and the conversion each round: settle on the first tick at which
        // refill's own arithmetic finds the tokens, so a timer set for the answer never wakes
        // a tick too early and asks again.
        for (int i = 0; i < 4 && level_at(now + wait) < target; ++i)
            wait += duration(1);
        for (int i = 0; i < 4 && wait > duration(1) && level_at(now + wait - duration(1)) >= target;
             ++i)
            wait -= duration(1);
        return wait;
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

    /// The longest wait `wait_for` reports (about 30 years), so that `now + wait` never
    /// overflows however small the rate or deep the debt.
    static constexpr duration max_wait = std::chrono::hours(24 * 365 * 30);

private:
    // The level refill() would reach at `t`, without moving the stamp.
    double level_at(time_point t) const noexcept {
        if (t <= stamp_)
            return level_;
        const double secs = std::chrono::duration<double>(t - stamp_).count();
        return std::min(capacity_, level_ + secs * rate_);
    }

    void refill(time_point now) noexcept {
        if (now > stamp_) {
            level_ = level_at(now);
            stamp_ = now;
        }
    }

    double rate_ = 0;
    double capacity_ = 0;
    double level_ = 0;
    time_point stamp_{};
};

} // namespace sluice
