#include <sluice/admission/rate_limiter.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
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
    if (!(share > 0 && share <= 1))
        throw std::invalid_argument("limits.share: must be more than 0 and at most 1");
    adaptive.validate();
}

namespace {

// A per-minute limit refills continuously at limit/60 per second; the bucket holds `burst`
// seconds of refill, and at least one unit so that a limit below 60/min still admits.
struct bucket_shape {
    double rate = 0;     // units a second
    double capacity = 0; // units
};

bucket_shape shape_of(double per_minute, std::chrono::duration<double> burst) noexcept {
    const double rate = per_minute / 60.0;
    return {rate, std::max(1.0, rate * burst.count())};
}

token_bucket
make_bucket(double per_minute, std::chrono::duration<double> burst, token_bucket::time_point now) {
    if (per_minute <= 0)
        return {};
    const bucket_shape b = shape_of(per_minute, burst);
    return {b.rate, b.capacity, now};
}

} // namespace

rate_limiter::rate_limiter(const limit_options& opts, time_point now)
    : opts_(opts)
    , requests_(make_bucket(opts.rpm, opts.burst, now))
    , tokens_(make_bucket(opts.tpm, opts.burst, now))
    , adaptive_(opts.adaptive, now)
    , base_share_(opts.share) {}

// A shared budget out of reach: the buckets go to 1/N of the account, and back when it
// returns. The limits and the share scale together, so the server's headers keep their sense.
void rate_limiter::follow_shared(time_point now) {
    const double share = shared_->local_share();
    const double target = share >= 1 ? 1.0 : std::min(1.0, share / base_share_);
    if (target == scale_ || !(target > 0))
        return;
    const double f = target / scale_;
    scale_ = target;
    opts_.rpm *= f;
    opts_.tpm *= f;
    opts_.share *= f;
    if (!requests_.unlimited()) {
        const bucket_shape b = shape_of(opts_.rpm, opts_.burst);
        requests_.reconfigure(now, b.rate, b.capacity);
    }
    if (!tokens_.unlimited()) {
        const bucket_shape b = shape_of(opts_.tpm, opts_.burst);
        tokens_.reconfigure(now, b.rate, b.capacity);
    }
    // Going local, the buckets start empty: the account's bucket was being drawn on by every
    // member up to now, and N full local buckets at once would be N bursts on top.
    if (target < 1) {
        requests_.clamp(now, 0);
        tokens_.clamp(now, 0);
    }
}

rate_limiter::duration rate_limiter::try_admit(time_point now, std::uint64_t tokens) {
    if (now < held_until_)
        return held_until_ - now;
    if (shared_)
        follow_shared(now);
    const auto cost = static_cast<double>(tokens);
    duration wait = std::max(requests_.wait_for(now, 1), tokens_.wait_for(now, cost));
    const bool pacing = adaptive_.active() && !knows_limits();
    if (pacing) {
        // The rate moves with time: the bucket refills at the rate of the last admission up
        // to now, then takes the rate of now. A wait it answers is asked again at its end.
        const double rate = adaptive_.rate(now);
        paced_.reconfigure(now, rate, std::max(1.0, rate * opts_.adaptive.burst.count()));
        wait = std::max(wait, paced_.wait_for(now, 1));
    }
    if (wait > duration::zero())
        return wait;
    if (shared_) {
        shared_->set_limits(opts_.rpm / opts_.share, opts_.tpm / opts_.share, opts_.burst);
        if (const duration lease_wait = shared_->try_take(now, cost); lease_wait > duration::zero())
            return lease_wait;
    }
    // take() may leave a debt: a request costing more than one burst goes out once the
    // bucket is full, and the debt holds back the ones after it.
    requests_.take(now, 1);
    tokens_.take(now, cost);
    if (pacing)
        paced_.take(now, 1);
    if (opts_.adaptive.enabled && !knows_limits())
        adaptive_.on_sent(now);
    in_flight_.emplace_back(++tickets_, cost);
    return duration::zero();
}

namespace {

template <class Deque>
auto find_ticket(Deque& in_flight, std::uint64_t ticket) {
    const auto it = std::lower_bound(
        in_flight.begin(), in_flight.end(), ticket, [](const auto& entry, std::uint64_t t) {
            return entry.first < t;
        });
    return it != in_flight.end() && it->first == ticket ? it : in_flight.end();
}

} // namespace

void rate_limiter::complete(std::uint64_t ticket) {
    // Answers mostly come in the order the requests went: the oldest ticket is the usual one,
    // and leaves without a search or a shift.
    if (!in_flight_.empty() && in_flight_.front().first == ticket) {
        in_flight_.pop_front();
        return;
    }
    if (const auto it = find_ticket(in_flight_, ticket); it != in_flight_.end())
        in_flight_.erase(it);
}

void rate_limiter::refused(std::uint64_t ticket) {
    const auto it = find_ticket(in_flight_, ticket);
    if (it == in_flight_.end())
        return;
    requests_.refund(1);
    tokens_.refund(it->second);
    if (shared_)
        shared_->give_back(1, it->second);
    in_flight_.erase(it);
}

bool rate_limiter::too_large(std::uint64_t tokens) const noexcept {
    // The bucket is this limiter's share; the server measures the request against the whole.
    const auto cost = static_cast<double>(tokens);
    return (opts_.tpm > 0 && cost > opts_.tpm / opts_.share) ||
           (request_cap_ > 0 && cost > request_cap_);
}

void rate_limiter::learn_too_large(std::uint64_t estimated, const too_large_hint& hint) noexcept {
    if (estimated == 0 || !(hint.limit > 0) || !(hint.requested > hint.limit))
        return;
    // Below the refused estimate by construction (limit < requested), so the request that
    // taught it is itself refused by it.
    const double cap = hint.limit * static_cast<double>(estimated) / hint.requested;
    if (request_cap_ == 0 || cap < request_cap_)
        request_cap_ = cap;
}

bool rate_limiter::throttled(time_point now, std::uint64_t ticket, bool hinted) {
    if (!opts_.adaptive.enabled || knows_limits())
        return false;
    adaptive_.on_refused(now);
    const bool first = !adaptive_.active();
    if (hinted || !adaptive_.on_throttled(now, ticket, tickets_))
        return false;
    // Start the new rate empty: the server's bucket is, and the requests on the wire, sent at
    // the old rate, are still to be answered.
    const double rate = adaptive_.rate(now);
    paced_ = token_bucket(rate, std::max(1.0, rate * opts_.adaptive.burst.count()), now);
    paced_.clamp(now, 0);
    return first;
}

double rate_limiter::adaptive_rpm(time_point now) const noexcept {
    return knows_limits() ? 0.0 : adaptive_.rate(now) * 60.0;
}

void rate_limiter::settle(time_point now, std::uint64_t estimated, std::uint64_t actual) {
    if (shared_)
        shared_->give_back(0, static_cast<double>(estimated) - static_cast<double>(actual));
    if (actual < estimated)
        tokens_.refund(static_cast<double>(estimated - actual));
    else if (actual > estimated)
        tokens_.take(now, static_cast<double>(actual - estimated));
}

void rate_limiter::hold_until(time_point until) {
    if (until <= held_until_)
        return;
    held_until_ = until;
    if (shared_)
        shared_->hold_until(until);
    // Whatever was saved up before the 429 is not really there: start the hold's end empty.
    requests_.clamp(until, 0);
    tokens_.clamp(until, 0);
}

bool rate_limiter::reconcile(time_point now,
                             const rate_limit_headers& h,
                             time_point seen,
                             std::uint64_t ticket) {
    // The server counts the whole account; this limiter has `share` of it. Values no server
    // means (negative, NaN, infinite: the struct is public) are dropped here.
    auto ours = [&](const std::optional<double>& v, bool positive) -> std::optional<double> {
        if (!v || !std::isfinite(*v) || !(positive ? *v > 0 : *v >= 0))
            return std::nullopt;
        return *v * opts_.share;
    };
    const auto limit_requests = ours(h.limit_requests, true);
    const auto limit_tokens = ours(h.limit_tokens, true);
    const auto remaining_requests = ours(h.remaining_requests, false);
    const auto remaining_tokens = ours(h.remaining_tokens, false);

    bool changed = false;
    bool learned_requests = false;
    bool learned_tokens = false;
    auto adopt = [&](token_bucket& bucket,
                     double& configured,
                     const std::optional<double>& server,
                     bool& learned) {
        if (!server)
            return;
        const bool unset = configured <= 0;
        if (unset ? !opts_.learn_from_headers : *server >= configured)
            return;
        configured = *server;
        if (unset) {
            // From unlimited: full, then clamped below like a configured bucket.
            bucket = make_bucket(configured, opts_.burst, now);
            learned = true;
        } else {
            const bucket_shape b = shape_of(configured, opts_.burst);
            bucket.reconfigure(now, b.rate, b.capacity);
        }
        changed = true;
    };
    adopt(requests_, opts_.rpm, limit_requests, learned_requests);
    adopt(tokens_, opts_.tpm, limit_tokens, learned_tokens);

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
    // A bucket just learned without a remaining header: the requests sent while it was
    // unlimited and not yet counted by the server are still owed.
    auto clamp = [&](token_bucket& bucket,
                     const std::optional<double>& remaining,
                     double later,
                     bool learned) {
        if (bucket.unlimited())
            return;
        if (remaining)
            bucket.clamp(now, server_level(bucket, *remaining, later));
        else if (learned)
            bucket.clamp(now, bucket.capacity() - later);
    };
    clamp(requests_, remaining_requests, later_requests, learned_requests);
    clamp(tokens_, remaining_tokens, later_tokens, learned_tokens);
    if (shared_) // the account's view, unscaled, less what this member has on the wire
        shared_->observe_server(
            now, h.remaining_requests, h.remaining_tokens, seen, later_requests, later_tokens);
    return changed;
}

} // namespace sluice
