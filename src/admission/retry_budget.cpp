#include <sluice/admission/retry_budget.hpp>

#include <algorithm>
#include <stdexcept>

namespace sluice {

retry_budget::retry_budget(double ratio,
                           double min_per_second,
                           std::chrono::seconds window,
                           time_point now)
    : ratio_(ratio)
    , min_per_second_(min_per_second)
    , window_s_(std::clamp<std::int64_t>(window.count(), 1, static_cast<std::int64_t>(slots)))
    , origin_(now) {}

// One slot per second of the window; slots older than the window are emptied as time passes.
void retry_budget::advance(time_point now) noexcept {
    const auto second = std::chrono::duration_cast<std::chrono::seconds>(now - origin_).count();
    if (second <= current_)
        return;
    const std::int64_t stale = std::min<std::int64_t>(second - current_, slots);
    for (std::int64_t i = 1; i <= stale; ++i) {
        const auto slot =
            static_cast<std::size_t>((current_ + i) % static_cast<std::int64_t>(slots));
        requests_[slot] = 0;
        retries_[slot] = 0;
    }
    current_ = second;
}

double retry_budget::available(time_point now) noexcept {
    advance(now);
    std::uint64_t requests = 0, retries = 0;
    for (std::int64_t i = 0; i < window_s_; ++i) {
        const auto slot = static_cast<std::size_t>(
            ((current_ - i) % static_cast<std::int64_t>(slots) + slots) % slots);
        requests += requests_[slot];
        retries += retries_[slot];
    }
    const double allowed =
        min_per_second_ * static_cast<double>(window_s_) + ratio_ * static_cast<double>(requests);
    return allowed - static_cast<double>(retries);
}

void retry_budget::on_request(time_point now) noexcept {
    advance(now);
    ++requests_[static_cast<std::size_t>(current_ % static_cast<std::int64_t>(slots))];
}

bool retry_budget::try_retry(time_point now) noexcept {
    if (available(now) < 1)
        return false;
    ++retries_[static_cast<std::size_t>(current_ % static_cast<std::int64_t>(slots))];
    return true;
}

} // namespace sluice
