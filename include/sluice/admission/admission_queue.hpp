#pragma once

#include <sluice/admission/rate_limiter.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <variant>

namespace sluice {

/// The waiting line of one rate-limit scope, sans I/O: items are admitted strictly in order,
/// each when the scope's `rate_limiter` can pay its cost, so a big request at the head is never
/// starved by small ones behind it. `next(now)` answers what to do: admit the head, wait a
/// given time (then ask again: a timer, not polling), or nothing (empty).
///
/// Thread safety: none; the owner serialises access.
template <class T>
class admission_queue {
public:
    using duration = rate_limiter::duration;
    using time_point = rate_limiter::time_point;

    /// `next` found the line empty.
    struct empty {};

    explicit admission_queue(const limit_options& limits, time_point now)
        : limiter_(limits, now) {}

    /// Joins the end of the line.
    void push_back(T item, std::uint64_t cost) { items_.emplace_back(std::move(item), cost); }

    /// Joins the front (a retry, having waited longest).
    void push_front(T item, std::uint64_t cost) { items_.emplace_front(std::move(item), cost); }

    /// Admits the head when the buckets can pay for it (charging them), or says how long to
    /// wait before asking again.
    std::variant<T, duration, empty> next(time_point now) {
        if (items_.empty())
            return empty{};
        const duration wait = limiter_.try_admit(now, items_.front().second);
        if (wait > duration::zero())
            return wait;
        T item = std::move(items_.front().first);
        items_.pop_front();
        return item;
    }

    /// The cost of the head, which must exist.
    std::uint64_t head_cost() const { return items_.front().second; }

    /// The head, which must exist.
    const T& head() const { return items_.front().first; }

    /// Takes the head out without charging anything (it is refused, not admitted).
    T pop_front() {
        T item = std::move(items_.front().first);
        items_.pop_front();
        return item;
    }

    /// Takes every waiting item out, in order (the job is stopping).
    std::deque<T> drain() {
        std::deque<T> out;
        for (auto& [item, cost] : items_)
            out.push_back(std::move(item));
        items_.clear();
        return out;
    }

    bool is_empty() const noexcept { return items_.empty(); }
    std::size_t size() const noexcept { return items_.size(); }
    rate_limiter& limiter() noexcept { return limiter_; }
    const rate_limiter& limiter() const noexcept { return limiter_; }

private:
    rate_limiter limiter_;
    std::deque<std::pair<T, std::uint64_t>> items_;
};

} // namespace sluice
