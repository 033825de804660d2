#include <sluice/admission/scope.hpp>

#include <algorithm>
#include <cmath>

namespace sluice {

const std::string& scope_key(const std::string& model,
                             const std::map<std::string, limit_options>& model_limits,
                             bool per_model_limits) {
    static const std::string endpoint;
    // A request that names no model has nothing to be limited by but the endpoint.
    if (model.empty())
        return endpoint;
    if (per_model_limits || model_limits.count(model) > 0)
        return model;
    return endpoint;
}

const limit_options& scope_limits(const std::string& key,
                                  const limit_options& endpoint,
                                  const std::map<std::string, limit_options>& model_limits) {
    if (key.empty())
        return endpoint;
    const auto it = model_limits.find(key);
    return it != model_limits.end() ? it->second : endpoint;
}

scope_rules::scope_rules(std::string name,
                         const retry_options& retry,
                         time_point now,
                         std::uint64_t seed)
    : name_(std::move(name))
    , retry_(retry, seed)
    , budget_(retry.budget_ratio, retry.budget_min_per_second, retry.budget_window, now) {}

void scope_rules::on_attempt(time_point now, unsigned attempts) {
    if (attempts == 1)
        budget_.on_request(now);
}

std::string scope_rules::refusal(const rate_limiter& limiter, std::uint64_t cost) {
    if (!limiter.too_large(cost))
        return {};
    const limit_options& l = limiter.limits();
    const double tpm = l.tpm / l.share;
    const double cap = limiter.request_cap();
    const std::string estimate = "estimated cost of " + std::to_string(cost) + " tokens";
    if (cap > 0 && (tpm <= 0 || cap < tpm))
        return estimate + " exceeds the largest request the server accepts (about " +
               std::to_string(std::llround(cap)) +
               " estimated tokens, learned from an earlier refusal)";
    return estimate + " exceeds the limit of " + std::to_string(std::llround(tpm)) +
           " tokens per minute";
}

response_action
scope_rules::on_response(time_point now, const response_event& event, rate_limiter& limiter) {
    attempt_outcome outcome = event.outcome;
    // Capped before any use: the hold of the whole scope as much as this request's delay. A
    // raw hint of years would stop every line of the scope.
    if (outcome.retry_after)
        outcome.retry_after = std::min<std::chrono::nanoseconds>(*outcome.retry_after,
                                                                 retry_.options().max_retry_after);
    const error_code cls = classify(outcome);

    // The server's view wins: when it says how many tokens remain, that is the truth (a server
    // that charges the whole completion budget does not refund it when the answer is short);
    // only without that header are the books corrected from usage.
    if (!event.headers.remaining_tokens && !cls && event.usage_tokens)
        limiter.settle(now, event.cost, *event.usage_tokens);
    // A 429 that paces the client was not counted by the server; its retry pays again. Given
    // back before the headers cap the level at what the server says remains.
    if (cls == errc::rate_limited)
        limiter.refused(event.ticket);
    response_action action;
    if (!event.headers.empty() && limiter.reconcile(now, event.headers, event.sent, event.ticket) &&
        !reported_limits_) {
        reported_limits_ = true;
        action.limits_learned = true;
    }
    limiter.complete(event.ticket);

    const retry_decision decision = retry_.decide(outcome, event.attempts);
    action.rate_limited = decision.ec == errc::rate_limited;
    if (action.rate_limited && outcome.retry_after)
        limiter.hold_until(now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     *outcome.retry_after));
    // A 429 with neither a hint nor a limit in its headers (the reconcile above learned none)
    // leaves the scope to find the server's rate itself; with a hint it is only counted. The
    // limiter ignores both once it knows a limit.
    if (action.rate_limited)
        action.adaptive_started =
            limiter.throttled(now, event.ticket, outcome.retry_after.has_value());
    // The server's count of a request too large for it, against its limit, teaches the scope
    // to refuse the like of it before sending (see scope::next).
    if (decision.ec == errc::request_too_large)
        if (auto hint = parse_too_large(outcome.provider_message))
            limiter.learn_too_large(event.cost, *hint);

    action.ec = decision.ec;
    switch (decision.what) {
    case retry_decision::action::done:
        action.what = response_action::kind::deliver;
        return action;
    case retry_decision::action::retry:
        if (event.stopping) {
            action.what = response_action::kind::stopped;
            return action;
        }
        // A 429 is the server pacing the client (admission holds for its hint), not an outage:
        // it does not spend the budget, and a batch waits rather than gives up.
        if (!action.rate_limited && !budget_.try_retry(now)) {
            action.what = response_action::kind::give_up;
            action.cause = decision.ec;
            action.ec = errc::retry_budget_exhausted;
            return action;
        }
        action.what = response_action::kind::retry;
        action.delay = decision.delay;
        return action;
    case retry_decision::action::give_up:
        action.what = is_fatal(decision.ec) ? response_action::kind::stop_run
                                            : response_action::kind::give_up;
        return action;
    }
    return action;
}

} // namespace sluice
