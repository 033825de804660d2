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
    in_flight_.emplace_back(++tickets_, cost);
    return duration::zero();
}

void rate_limiter::complete(std::uint64_t ticket) {
    const auto it = std::lower_bound(
        in_flight_.begin(), in_flight_.end(), ticket, [](const auto& entry, std::uint64_t t) {
            return entry.first < t;
        });
    if (it != in_flight_.end() && it->first == ticket)
        in_flight_.erase(it);
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

bool rate_limiter::reconcile(time_point now,
                             const rate_limit_headers& h,
                             time_point seen,
                             std::uint64_t ticket) {
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
    // Requests admitted after this one and still out: the server's count may not hold them.
    double later_requests = 0;
    double later_tokens = 0;
    for (auto it = in_flight_.rbegin(); it != in_flight_.rend() && it->first > ticket; ++it) {
        later_requests += 1;
        later_tokens += it->second;
    }
    const double elapsed = seen < now ? std::chrono::duration<double>(now - seen).count() : 0.0;
    auto server_level = [&](const token_bucket& bucket, double remaining, double later) {
        return std::min(bucket.capacity(), remaining + bucket.rate() * elapsed) - later;
    };
    // A negative "remaining" is not the server's view but garbage (the struct is public).
    if (h.remaining_requests && *h.remaining_requests >= 0 && !requests_.unlimited())
        requests_.clamp(now, server_level(requests_, *h.remaining_requests, later_requests));
    if (h.remaining_tokens && *h.remaining_tokens >= 0 && !tokens_.unlimited())
        tokens_.clamp(now, server_level(tokens_, *h.remaining_tokens, later_tokens));
    return lowered;
}

} // namespace sluice
