#include <sluice/admission/rate_limiter.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sluice {

void limit_options::validate() const {
    // Written so that NaN fails every check.
    if (!(rpm >= 0 && std::isfinite(rpm)))
        throw std::invalid_argument("limits.rpm: must be 0 (no limit) or positive");
    if (!(tpm >= 0 && std::isfinite(tpm)))
        throw std::invalid_argument("limits.tpm: must be 0 (no limit) or positive");
    if (!(burst.count() > 0 && burst.count() <= 60))
        throw std::invalid_argument("limits.burst: must be more than 0 and at most 60 seconds");
}

namespace {

// A per-minute limit refills continuously at limit/60 per second; the bucket holds `burst`
// seconds of refill, and at least one unit so that a limit below 60/min still admits.
token_bucket
make_bucket(double per_minute, std::chrono::duration<double> burst, token_bucket::time_point now) {
    if (per_minute <= 0)
        return {};
    const double rate = per_minute / 60.0;
    return {rate, std::max(1.0, rate * burst.count()), now};
}

} // namespace

rate_limiter::rate_limiter(const limit_options& opts, time_point now)
    : opts_(opts)
    , requests_(make_bucket(opts.rpm, opts.burst, now))
    , tokens_(make_bucket(opts.tpm, opts.burst, now)) {}

rate_limiter::duration rate_limiter::try_admit(time_point now, std::uint64_t tokens) {
    if (now < held_until_)
        return held_until_ - now;
    const auto cost = static_cast<double>(tokens);
    const duration wait = std::max(requests_.wait_for(now, 1), tokens_.wait_for(now, cost));
    if (wait > duration::zero())
        return wait;
    // take() may leave a debt: a request costing more than one burst goes out once the
    // bucket is full, and the debt holds back the ones after it.
    requests_.take(now, 1);
    tokens_.take(now, cost);
    return duration::zero();
}

bool rate_limiter::too_large(std::uint64_t tokens) const noexcept {
    return opts_.tpm > 0 && static_cast<double>(tokens) > opts_.tpm;
}

void rate_limiter::settle(time_point now, std::uint64_t estimated, std::uint64_t actual) {
    if (actual < estimated)
        tokens_.refund(static_cast<double>(estimated - actual));
    else if (actual > estimated)
        tokens_.take(now, static_cast<double>(actual - estimated));
}

void rate_limiter::hold_until(time_point until) {
    if (until <= held_until_)
        return;
    held_until_ = until;
    // Whatever was saved up before the 429 is not really there: start the hold's end empty.
    requests_.clamp(until, 0);
    tokens_.clamp(until, 0);
}

bool rate_limiter::reconcile(time_point now, const rate_limit_headers& h) {
    bool lowered = false;
    auto adopt =
        [&](token_bucket& bucket, double& configured, const std::optional<double>& server) {
            if (!server || !(*server > 0) || configured <= 0 || *server >= configured)
                return;
            configured = *server;
            const double rate = configured / 60.0;
            bucket.reconfigure(now, rate, std::max(1.0, rate * opts_.burst.count()));
            lowered = true;
        };
    adopt(requests_, opts_.rpm, h.limit_requests);
    adopt(tokens_, opts_.tpm, h.limit_tokens);
    // A negative "remaining" is not the server's view but garbage (the struct is public).
    if (h.remaining_requests && *h.remaining_requests >= 0 && !requests_.unlimited())
        requests_.clamp(now, *h.remaining_requests);
    if (h.remaining_tokens && *h.remaining_tokens >= 0 && !tokens_.unlimited())
        tokens_.clamp(now, *h.remaining_tokens);
    return lowered;
}

} // namespace sluice
