#include <sluice/prometheus.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <string_view>

namespace sluice {

namespace {

// The `le` bounds of every latency histogram, in seconds: from a fast local server's time to
// first byte to a long generation. One set for all, so that a user can aggregate across them.
constexpr std::array<double, 17> latency_bounds = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

constexpr std::string_view endpoint_scope = "(endpoint)";

void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v); // shortest round-trip form
    out.append(buf, r.ptr);
}

void append_number(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// A label value may hold anything a model name holds: backslash, quote and line feed are the
// three characters the format escapes.
void append_label_value(std::string& out, std::string_view v) {
    for (const char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

class writer {
public:
    explicit writer(std::string& out)
        : out_(out) {}

    // `# HELP` and `# TYPE`; the help texts are ours and hold no backslash or line feed.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP sluice_";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE sluice_";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    template <class Number>
    void sample(std::string_view name,
                Number v,
                std::string_view label = {},
                std::string_view value = {}) {
        out_ += "sluice_";
        out_ += name;
        if (!label.empty()) {
            out_ += '{';
            out_ += label;
            out_ += "=\"";
            append_label_value(out_, value);
            out_ += "\"}";
        }
        out_ += ' ';
        append_number(out_, v);
        out_ += '\n';
    }

    void counter(std::string_view name, std::string_view help, std::uint64_t v) {
        family(name, "counter", help);
        sample(name, v);
    }

    void gauge(std::string_view name, std::string_view help, std::uint64_t v) {
        family(name, "gauge", help);
        sample(name, v);
    }

    template <class Map, class Key>
    void labelled(std::string_view name,
                  std::string_view type,
                  std::string_view help,
                  std::string_view label,
                  const Map& values,
                  Key key) {
        family(name, type, help);
        for (const auto& [k, v] : values)
            sample(name, v, label, key(k));
    }

    // Per scope, one value each.
    template <class Get>
    void per_scope(std::string_view name,
                   std::string_view type,
                   std::string_view help,
                   const std::map<std::string, scope_stats>& scopes,
                   Get get) {
        family(name, type, help);
        for (const auto& [key, sc] : scopes)
            sample(name, get(sc), "scope", key.empty() ? endpoint_scope : std::string_view(key));
    }

    // Per endpoint (several endpoints only), one value each.
    template <class Get>
    void per_endpoint(std::string_view name,
                      std::string_view type,
                      std::string_view help,
                      const std::map<std::string, endpoint_stats>& endpoints,
                      Get get) {
        family(name, type, help);
        for (const auto& [key, e] : endpoints)
            sample(name, get(e), "endpoint", key);
    }

    void histogram(std::string_view name, std::string_view help, const timing_histogram& h) {
        family(name, "histogram", help);
        std::string bucket(name);
        bucket += "_bucket";
        for (const double le : latency_bounds) {
            const auto bound = std::chrono::duration_cast<timing_histogram::duration>(
                std::chrono::duration<double>(le));
            out_ += "sluice_";
            out_ += bucket;
            out_ += "{le=\"";
            append_number(out_, le);
            out_ += "\"} ";
            append_number(out_, h.count_at_most(bound));
            out_ += '\n';
        }
        out_ += "sluice_";
        out_ += bucket;
        out_ += "{le=\"+Inf\"} ";
        append_number(out_, h.count());
        out_ += '\n';
        sample(std::string(name) + "_sum", std::chrono::duration<double>(h.sum()).count());
        sample(std::string(name) + "_count", h.count());
    }

private:
    std::string& out_;
};

// The Redis lease state of a budget shared with other processes: only with one configured.
void render_shared_budget(writer& w, const shared_budget_stats& sb) {
    w.gauge("shared_budget_state",
            "Shared budget through Redis: 0 joining, 1 sharing, 2 Redis lost (1/N of the limits).",
            static_cast<std::uint64_t>(sb.state));
    w.gauge("shared_budget_members",
            "Members sharing the budget, as Redis last counted them.",
            sb.members);
    w.counter("shared_budget_redis_calls_total",
              "Calls (round trips) to Redis for leases and heartbeats.",
              sb.round_trips);
    w.counter("shared_budget_redis_failures_total",
              "Redis calls and connections that failed.",
              sb.failures);
    w.counter("shared_budget_fallbacks_total",
              "Times Redis was lost and the limits fell back to 1/N locally.",
              sb.fallbacks);
    w.family("shared_budget_leased_requests",
             "gauge",
             "Requests leased from the shared budget and not yet used (reservations included).");
    w.sample("shared_budget_leased_requests", sb.requests_held);
    w.family("shared_budget_leased_tokens",
             "gauge",
             "Tokens leased from the shared budget and not yet used (reservations included).");
    w.sample("shared_budget_leased_tokens", sb.tokens_held);
}

} // namespace

void render_prometheus(const stats_snapshot& s, std::string& out) {
    writer w(out);
    w.counter("requests_submitted_total", "Requests accepted by the engine.", s.submitted);
    w.counter("requests_succeeded_total", "Results delivered without error.", s.succeeded);
    w.labelled("requests_failed_total",
               "counter",
               "Results delivered with an error, by kind (the error code of the output record).",
               "kind",
               s.failures,
               [](const std::string& k) { return std::string_view(k); });
    w.labelled("results_total",
               "counter",
               "Results delivered, by the HTTP status of their last attempt (0: no response).",
               "status",
               s.statuses,
               [](unsigned status) { return std::to_string(status); });
    w.counter("attempts_total", "HTTP attempts made, first attempts and retries.", s.attempts);
    w.counter("attempts_admitted_total", "Attempts let through by the rate limiter.", s.admitted);
    w.labelled("retries_total",
               "counter",
               "Attempts beyond each request's first, by the kind of failure that caused them.",
               "cause",
               s.retry_causes,
               [](const std::string& k) { return std::string_view(k); });
    w.per_scope("rate_limited_total",
                "counter",
                "429 rate_limit_exceeded answers, by rate-limit scope.",
                s.scopes,
                [](const scope_stats& sc) { return sc.rate_limited; });
    w.gauge("requests_in_flight",
            "Requests accepted and not yet delivered: waiting, on the wire or waiting to retry.",
            s.in_flight);
    w.per_scope("scope_waiting_requests",
                "gauge",
                "Requests waiting for admission, by scope (as of its last event).",
                s.scopes,
                [](const scope_stats& sc) { return sc.waiting; });
    w.per_scope("scope_limit_requests_per_minute",
                "gauge",
                "Request limit in use, configured or learned from the server; 0: none.",
                s.scopes,
                [](const scope_stats& sc) { return sc.rpm; });
    w.per_scope("scope_limit_tokens_per_minute",
                "gauge",
                "Token limit in use, configured or learned from the server; 0: none.",
                s.scopes,
                [](const scope_stats& sc) { return sc.tpm; });
    w.per_scope("scope_limits_learned",
                "gauge",
                "1 when the server's x-ratelimit-limit headers set or lowered the scope's limits.",
                s.scopes,
                [](const scope_stats& sc) { return std::uint64_t{sc.limits_learned}; });
    w.per_scope("scope_adaptive_requests_per_minute",
                "gauge",
                "Request rate the scope found itself from 429s without hints; 0: not adapting.",
                s.scopes,
                [](const scope_stats& sc) { return sc.adaptive_rpm; });
    w.per_scope("scope_available_requests",
                "gauge",
                "Requests the scope's bucket held at its last event (negative: a debt).",
                s.scopes,
                [](const scope_stats& sc) { return sc.requests_available; });
    w.per_scope("scope_available_tokens",
                "gauge",
                "Tokens the scope's bucket held at its last event (negative: a debt).",
                s.scopes,
                [](const scope_stats& sc) { return sc.tokens_available; });
    if (!s.endpoints.empty()) {
        using E = const endpoint_stats&;
        w.per_endpoint("endpoint_attempts_total",
                       "counter",
                       "Attempts sent to each of several endpoints.",
                       s.endpoints,
                       [](E e) { return e.sent; });
        w.per_endpoint("endpoint_ok_total",
                       "counter",
                       "Attempts answered 2xx, by endpoint.",
                       s.endpoints,
                       [](E e) { return e.ok; });
        w.per_endpoint("endpoint_errors_total",
                       "counter",
                       "Failed attempts other than 429s, by endpoint.",
                       s.endpoints,
                       [](E e) { return e.errors; });
        w.per_endpoint("endpoint_rate_limited_total",
                       "counter",
                       "429 answers (rate limit or quota), by endpoint.",
                       s.endpoints,
                       [](E e) { return e.rate_limited; });
        w.per_endpoint("endpoint_breaker_opened_total",
                       "counter",
                       "Times the endpoint's circuit breaker opened.",
                       s.endpoints,
                       [](E e) { return e.opened; });
        w.per_endpoint("endpoint_up",
                       "gauge",
                       "1 while the endpoint's circuit breaker is closed (in service); 0 when "
                       "open, half-open or retired.",
                       s.endpoints,
                       [](E e) { return std::uint64_t{e.state == "closed"}; });
    }
    w.counter("prompt_tokens_total",
              "Prompt tokens, from usage of successful responses.",
              s.prompt_tokens);
    w.counter("completion_tokens_total",
              "Completion tokens, from usage of successful responses.",
              s.completion_tokens);
    w.counter("connections_opened_total", "Connections the pool opened.", s.connections_opened);
    w.counter("attempts_replayed_total",
              "Attempts replayed on a fresh connection after a reused one closed under them.",
              s.replayed);
    w.counter("connections_untrusted_total",
              "Connections closed because the server sent bytes no request asked for.",
              s.untrusted_connections);
    w.histogram("admission_wait_seconds",
                "Time from submission to first admission (rate limits, connection count).",
                s.admission_wait);
    w.histogram("request_duration_seconds",
                "End-to-end latency of delivered results, retries included.",
                s.latency);
    w.histogram("time_to_first_byte_seconds",
                "Time from sending an attempt to its response's first byte.",
                s.ttfb);
    w.histogram("time_to_first_token_seconds",
                "Streamed answers: time from the send to the first content event.",
                s.ttft);
    w.histogram(
        "inter_token_latency_seconds", "Streamed answers: gaps between two content events.", s.itl);
    if (s.shared_budget.enabled)
        render_shared_budget(w, s.shared_budget);
}

} // namespace sluice
