#include "cli/summary.hpp"

#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>
#include <string>

namespace sluice::cli {

namespace {

std::string format_ms(std::chrono::nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(d.count()) / 1e6);
    return buf;
}

// "  time to first token: p50 1.0 ms, p90 ..., p99 ..., max ...", or nothing when empty.
void print_percentiles(std::ostream& os, const char* what, const timing_histogram& h) {
    if (h.empty())
        return;
    os << "  " << what << ": p50 " << format_ms(h.percentile(50)) << ", p90 "
       << format_ms(h.percentile(90)) << ", p99 " << format_ms(h.percentile(99)) << ", max "
       << format_ms(h.max()) << '\n';
}

// `"name":{"p50":..,"p90":..,"p99":..,"max":..}` in milliseconds.
void write_percentiles(std::ostream& os, const char* name, const timing_histogram& h) {
    auto ms = [](std::chrono::nanoseconds d) {
        return static_cast<double>(d.count()) / 1e6;
    };
    char buf[160];
    std::snprintf(buf,
                  sizeof buf,
                  ",\"%s\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
                  name,
                  ms(h.percentile(50)),
                  ms(h.percentile(90)),
                  ms(h.percentile(99)),
                  ms(h.max()));
    os << buf;
}

double adaptive_rpm(const stats_snapshot& stats) {
    double rpm = 0;
    for (const auto& [key, scope] : stats.scopes)
        rpm += scope.adaptive_rpm;
    return rpm;
}

std::string format_kinds(const std::map<std::string, std::uint64_t>& kinds) {
    std::string s;
    for (const auto& [kind, n] : kinds) {
        s += s.empty() ? " (" : ", ";
        s += kind + " " + std::to_string(n);
    }
    return s.empty() ? s : s + ")";
}

} // namespace

void print_summary(std::ostream& os,
                   const stats_snapshot& stats,
                   const job_counts& job,
                   std::chrono::steady_clock::duration wall) {
    const double secs = std::chrono::duration<double>(wall).count();
    const std::uint64_t done = stats.succeeded + stats.failed;
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.1f", secs > 0 ? static_cast<double>(done) / secs : 0.0);
    char wall_s[32];
    std::snprintf(wall_s, sizeof wall_s, "%.2f s", secs);

    os << "sluice run: " << job.lines << " lines, " << done << " requests in " << wall_s << " ("
       << rate << " req/s)\n";
    if (job.skipped > 0)
        os << "  resumed: " << job.skipped << " lines already had their record, skipped\n";
    os << "  succeeded " << stats.succeeded << ", failed " << stats.failed
       << format_kinds(stats.failures) << ", bad input lines " << job.bad_lines << '\n';
    os << "  retried " << stats.retries << format_kinds(stats.retry_causes) << ", 429s "
       << stats.rate_limited;
    // Where no limit was known and the server said only 429: the rate found, for the next run
    // to configure (--rpm) or to compare.
    if (const double rpm = adaptive_rpm(stats); rpm > 0)
        os << ", adaptive rate " << std::llround(rpm)
           << " requests/min (found from 429s without limits or hints)";
    os << '\n';
    os << "  tokens: " << stats.prompt_tokens << " in, " << stats.completion_tokens << " out\n";
    print_percentiles(os, "latency", stats.latency);
    print_percentiles(os, "time to first byte", stats.ttfb);
    // Only when lines streamed: the answers' events were timed as they came.
    print_percentiles(os, "time to first token", stats.ttft);
    print_percentiles(os, "inter-token latency", stats.itl);
    os << "  connections: " << stats.connections_opened << " opened, " << stats.replayed
       << " replayed";
    if (stats.untrusted_connections > 0)
        os << ", " << stats.untrusted_connections << " closed for bytes no request asked for";
    os << '\n';
    // With several endpoints: what each did (attempts, so a request retried elsewhere counts
    // on both) and the state its circuit breaker ended in.
    for (const auto& [name, e] : stats.endpoints) {
        os << "  endpoint " << name << ": sent " << e.sent << ", ok " << e.ok << ", errors "
           << e.errors << ", 429s " << e.rate_limited << ", " << e.state;
        if (e.opened > 0)
            os << " (taken out " << e.opened << (e.opened == 1 ? " time)" : " times)");
        os << '\n';
    }
}

namespace {

// Kind names are sluice's own identifiers ([a-z_]): no escaping needed.
void write_kinds(std::ostream& os, const std::map<std::string, std::uint64_t>& kinds) {
    os << '{';
    const char* sep = "";
    for (const auto& [kind, n] : kinds) {
        os << sep << '"' << kind << "\":" << n;
        sep = ",";
    }
    os << '}';
}

} // namespace

void write_summary_json(std::ostream& os,
                        const stats_snapshot& stats,
                        const job_counts& job,
                        std::chrono::steady_clock::duration wall,
                        int exit_status) {
    const double secs = std::chrono::duration<double>(wall).count();
    const std::uint64_t done = stats.succeeded + stats.failed;
    char rates[96];
    std::snprintf(rates,
                  sizeof rates,
                  "\"wall_seconds\":%.3f,\"requests_per_second\":%.1f",
                  secs,
                  secs > 0 ? static_cast<double>(done) / secs : 0.0);
    os << "{\"lines\":" << job.lines << ",\"requests\":" << done
       << ",\"succeeded\":" << stats.succeeded << ",\"failed\":" << stats.failed
       << ",\"bad_lines\":" << job.bad_lines << ",\"skipped\":" << job.skipped << ",\"failures\":";
    write_kinds(os, stats.failures);
    os << ",\"retries\":" << stats.retries << ",\"retry_causes\":";
    write_kinds(os, stats.retry_causes);
    os << ",\"statuses\":{";
    const char* sep = "";
    for (const auto& [status, n] : stats.statuses) {
        os << sep << '"' << status << "\":" << n;
        sep = ",";
    }
    os << '}';
    os << ",\"rate_limited\":" << stats.rate_limited
       << ",\"adaptive_rpm\":" << std::llround(adaptive_rpm(stats))
       << ",\"prompt_tokens\":" << stats.prompt_tokens
       << ",\"completion_tokens\":" << stats.completion_tokens
       << ",\"connections\":{\"opened\":" << stats.connections_opened
       << ",\"replayed\":" << stats.replayed << ",\"untrusted\":" << stats.untrusted_connections
       << "}," << rates;
    write_percentiles(os, "latency_ms", stats.latency);
    write_percentiles(os, "ttfb_ms", stats.ttfb);
    if (!stats.ttft.empty()) {
        write_percentiles(os, "ttft_ms", stats.ttft);
        write_percentiles(os, "itl_ms", stats.itl);
    }
    // Endpoint names are letters, digits, '-', '_' and '.' (dispatcher_options::validate).
    if (!stats.endpoints.empty()) {
        os << ",\"endpoints\":{";
        const char* comma = "";
        for (const auto& [name, e] : stats.endpoints) {
            os << comma << '"' << name << "\":{\"sent\":" << e.sent << ",\"ok\":" << e.ok
               << ",\"errors\":" << e.errors << ",\"rate_limited\":" << e.rate_limited
               << ",\"state\":\"" << e.state << "\",\"opened\":" << e.opened << '}';
            comma = ",";
        }
        os << '}';
    }
    os << ",\"exit_status\":" << exit_status << "}\n";
}

} // namespace sluice::cli
