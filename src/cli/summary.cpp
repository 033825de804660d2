#include "cli/summary.hpp"

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
       << stats.rate_limited << '\n';
    os << "  tokens: " << stats.prompt_tokens << " in, " << stats.completion_tokens << " out\n";
    os << "  latency: p50 " << format_ms(stats.latency.percentile(0.50)) << ", p90 "
       << format_ms(stats.latency.percentile(0.90)) << ", p99 "
       << format_ms(stats.latency.percentile(0.99)) << ", max " << format_ms(stats.latency.max())
       << '\n';
    if (stats.ttfb.count() > 0)
        os << "  time to first byte: p50 " << format_ms(stats.ttfb.percentile(0.50)) << ", p90 "
           << format_ms(stats.ttfb.percentile(0.90)) << ", p99 "
           << format_ms(stats.ttfb.percentile(0.99)) << '\n';
    os << "  connections: " << stats.connections_opened << " opened, " << stats.replayed
       << " replayed";
    if (stats.untrusted_connections > 0)
        os << ", " << stats.untrusted_connections << " closed for bytes no request asked for";
    os << '\n';
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
    auto ms = [](std::chrono::nanoseconds d) {
        return static_cast<double>(d.count()) / 1e6;
    };
    char numbers[512];
    std::snprintf(numbers,
                  sizeof numbers,
                  "\"wall_seconds\":%.3f,\"requests_per_second\":%.1f,"
                  "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
                  "\"ttfb_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
                  secs,
                  secs > 0 ? static_cast<double>(done) / secs : 0.0,
                  ms(stats.latency.percentile(0.5)),
                  ms(stats.latency.percentile(0.9)),
                  ms(stats.latency.percentile(0.99)),
                  ms(stats.latency.max()),
                  ms(stats.ttfb.percentile(0.5)),
                  ms(stats.ttfb.percentile(0.9)),
                  ms(stats.ttfb.percentile(0.99)),
                  ms(stats.ttfb.max()));
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
    os << ",\"rate_limited\":" << stats.rate_limited << ",\"prompt_tokens\":" << stats.prompt_tokens
       << ",\"completion_tokens\":" << stats.completion_tokens
       << ",\"connections\":{\"opened\":" << stats.connections_opened
       << ",\"replayed\":" << stats.replayed << ",\"untrusted\":" << stats.untrusted_connections
       << "}," << numbers << ",\"exit_status\":" << exit_status << "}\n";
}

} // namespace sluice::cli
