#include <sluice/admission/limit_headers.hpp>
#include <sluice/admission/retry_policy.hpp>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string_view>

namespace sluice {

void retry_options::validate() const {
    if (max_attempts == 0)
        throw std::invalid_argument("retry.max_attempts: must be at least 1");
    if (initial_backoff.count() < 0)
        throw std::invalid_argument("retry.initial_backoff: must not be negative");
    if (max_backoff < initial_backoff)
        throw std::invalid_argument("retry.max_backoff: must be at least initial_backoff");
    if (max_retry_after.count() < 0)
        throw std::invalid_argument("retry.max_retry_after: must not be negative");
    // Written so that NaN fails the check too.
    if (!(budget_ratio >= 0))
        throw std::invalid_argument("retry.budget_ratio: must not be negative");
    if (!(budget_min_per_second >= 0))
        throw std::invalid_argument("retry.budget_min_per_second: must not be negative");
    if (budget_window.count() < 1 || budget_window.count() > 60)
        throw std::invalid_argument("retry.budget_window: must be 1 to 60 seconds");
}

namespace {

// 429 codes that say the account, not the moment, is the problem: waiting cannot help.
constexpr std::array<std::string_view, 5> quota_codes{
    "insufficient_quota",
    "credit_balance_exhausted",
    "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded",
    "organization_usage_limit_exceeded",
};

} // namespace

error_code classify(const attempt_outcome& o) noexcept {
    if (o.transport_error)
        return o.transport_error;
    const unsigned s = o.status;
    if (s >= 200 && s < 300)
        return {};
    if (s == 429) {
        if (std::find(quota_codes.begin(), quota_codes.end(), o.provider_code) != quota_codes.end())
            return errc::quota_exhausted;
        // Comes as rate_limit_exceeded, but the request alone is over the limit: no wait helps.
        if (parse_too_large(o.provider_message))
            return errc::request_too_large;
        return errc::rate_limited;
    }
    if (s == 401)
        return errc::unauthorized;
    if (s == 408 || s == 409 || (s >= 500 && s < 600))
        return errc::server_error;
    return errc::client_error;
}

retry_policy::retry_policy(const retry_options& opts, std::uint64_t seed)
    : opts_(opts)
    , rng_(seed) {}

std::chrono::nanoseconds retry_policy::backoff(unsigned attempts) {
    using std::chrono::nanoseconds;
    const auto cap = std::chrono::duration_cast<nanoseconds>(opts_.max_backoff);
    auto ceiling = std::min(std::chrono::duration_cast<nanoseconds>(opts_.initial_backoff), cap);
    if (ceiling.count() <= 0)
        return nanoseconds{0};
    // Doubling stops at the cap, so this runs a few dozen times at most and never overflows.
    for (unsigned i = 1; i < attempts && ceiling < cap; ++i)
        ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
    // Full jitter: spreads a crowd of retries over the whole window.
    std::uniform_int_distribution<std::int64_t> dist(0, ceiling.count());
    return nanoseconds(dist(rng_));
}

retry_decision retry_policy::decide(const attempt_outcome& outcome, unsigned attempts) {
    const error_code ec = classify(outcome);
    if (!ec)
        return {retry_decision::action::done, {}, {}};

    bool retryable = is_retryable(ec);
    // The server's own word overrides the status rule, as in the official SDKs; an answer
    // that no retry can change (quota, a refused key, a request over the limit) stays final
    // whatever the header says: each retry would be paid for in vain.
    if (outcome.should_retry && ec != errc::quota_exhausted && ec != errc::unauthorized &&
        ec != errc::request_too_large)
        retryable = *outcome.should_retry;
    // A garbled answer (a body that is not a completion, a response that is not HTTP: a bad
    // status line, a bad chunk) is worth one more try (a proxy's hiccup), not five: a server
    // that always answers so is paid for each time.
    const bool garbled =
        ec == errc::malformed_response || std::string_view(error_kind(ec)) == "bad_http_response";
    if (garbled && attempts >= 2)
        retryable = false;
    if (!retryable || attempts >= opts_.max_attempts)
        return {retry_decision::action::give_up, {}, ec};

    using std::chrono::nanoseconds;
    nanoseconds delay;
    if (outcome.retry_after)
        delay = std::clamp(*outcome.retry_after,
                           nanoseconds{0},
                           std::chrono::duration_cast<nanoseconds>(opts_.max_retry_after));
    else
        delay = backoff(attempts);
    return {retry_decision::action::retry, delay, ec};
}

} // namespace sluice
