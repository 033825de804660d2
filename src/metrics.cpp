#include <sluice/metrics.hpp>

#include <algorithm>

namespace sluice {

void merge(stats_snapshot& into, const stats_snapshot& from) {
    into.submitted += from.submitted;
    into.succeeded += from.succeeded;
    into.failed += from.failed;
    into.attempts += from.attempts;
    into.retries += from.retries;
    into.rate_limited += from.rate_limited;
    into.in_flight += from.in_flight;
    into.admitted += from.admitted;
    into.prompt_tokens += from.prompt_tokens;
    into.completion_tokens += from.completion_tokens;
    into.connections_opened += from.connections_opened;
    into.replayed += from.replayed;
    into.untrusted_connections += from.untrusted_connections;
    for (const auto& [kind, n] : from.failures)
        into.failures[kind] += n;
    for (const auto& [kind, n] : from.retry_causes)
        into.retry_causes[kind] += n;
    for (const auto& [key, sc] : from.scopes) {
        scope_stats& to = into.scopes[key];
        to.rate_limited += sc.rate_limited;
        to.waiting += sc.waiting;
        to.rpm += sc.rpm;
        to.adaptive_rpm += sc.adaptive_rpm;
        to.tpm += sc.tpm;
        to.requests_available += sc.requests_available;
        to.tokens_available += sc.tokens_available;
        to.limits_learned = to.limits_learned || sc.limits_learned;
    }
    for (const auto& [name, e] : from.endpoints) {
        const bool fresh = into.endpoints.count(name) == 0;
        endpoint_stats& to = into.endpoints[name];
        to.sent += e.sent;
        to.ok += e.ok;
        to.errors += e.errors;
        to.rate_limited += e.rate_limited;
        to.opened += e.opened;
        // Several shards' breakers of one endpoint: the state of the first that is not closed.
        if (fresh || to.state == "closed")
            to.state = e.state;
    }
    for (const auto& [status, n] : from.statuses)
        into.statuses[status] += n;
    into.admission_wait.merge(from.admission_wait);
    into.latency.merge(from.latency);
    into.ttfb.merge(from.ttfb);
    into.ttft.merge(from.ttft);
    into.itl.merge(from.itl);
    shared_budget_stats& sb = into.shared_budget;
    const shared_budget_stats& fb = from.shared_budget;
    sb.enabled = sb.enabled || fb.enabled;
    sb.state = std::max(sb.state, fb.state);
    sb.members = std::max(sb.members, fb.members);
    sb.round_trips += fb.round_trips;
    sb.failures += fb.failures;
    sb.fallbacks += fb.fallbacks;
    sb.requests_held += fb.requests_held;
    sb.tokens_held += fb.tokens_held;
}

} // namespace sluice
