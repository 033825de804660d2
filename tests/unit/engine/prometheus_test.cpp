// The Prometheus rendering of the engine's counters: exact lines for known stats, escaped
// label values, cumulative histogram buckets, and the text accepted by Prometheus' own
// checker (`promtool check metrics`, Debian's prometheus package).
#include "support/temp_dir.hpp"

#include <sluice/prometheus.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

bool has_line(const std::string& text, const std::string& line) {
    for (const auto& l : lines_of(text))
        if (l == line)
            return true;
    return false;
}

stats_snapshot known_stats() {
    stats_snapshot s;
    s.submitted = 7;
    s.succeeded = 5;
    s.failed = 2;
    s.attempts = 9;
    s.admitted = 9;
    s.retries = 2;
    s.rate_limited = 3;
    s.in_flight = 4;
    s.prompt_tokens = 120;
    s.completion_tokens = 80;
    s.connections_opened = 2;
    s.failures["server_error"] = 1;
    s.failures["rate_limited"] = 1;
    s.retry_causes["rate_limited"] = 2;
    s.statuses[200] = 5;
    s.statuses[0] = 1;
    s.statuses[429] = 1;
    scope_stats endpoint;
    endpoint.rate_limited = 1;
    endpoint.rpm = 60;
    endpoint.tpm = 0;
    endpoint.requests_available = 0.5;
    endpoint.waiting = 3;
    endpoint.limits_learned = true;
    s.scopes[""] = endpoint;
    scope_stats odd;
    odd.rate_limited = 2;
    odd.tpm = 90000;
    odd.tokens_available = -1250.25;
    odd.adaptive_rpm = 2700.5;
    s.scopes["we\"ird\\model\nx"] = odd;
    s.latency.record(3ms);
    s.latency.record(20ms);
    s.latency.record(2s);
    // Several endpoints: their families are checked by promtool below too.
    s.endpoints["primary"].sent = 3;
    s.endpoints["primary"].ok = 3;
    s.endpoints["backup"].state = "retired";
    return s;
}

} // namespace

TEST_CASE("render_prometheus writes the known stats as exact lines") {
    std::string text;
    render_prometheus(known_stats(), text);
    INFO(text);
    for (const char* line : {
             "# HELP sluice_requests_submitted_total Requests accepted by the engine.",
             "# TYPE sluice_requests_submitted_total counter",
             "sluice_requests_submitted_total 7",
             "sluice_requests_succeeded_total 5",
             "# TYPE sluice_requests_failed_total counter",
             "sluice_requests_failed_total{kind=\"rate_limited\"} 1",
             "sluice_requests_failed_total{kind=\"server_error\"} 1",
             "sluice_results_total{status=\"0\"} 1",
             "sluice_results_total{status=\"200\"} 5",
             "sluice_results_total{status=\"429\"} 1",
             "sluice_attempts_total 9",
             "sluice_retries_total{cause=\"rate_limited\"} 2",
             "# TYPE sluice_requests_in_flight gauge",
             "sluice_requests_in_flight 4",
             "sluice_rate_limited_total{scope=\"(endpoint)\"} 1",
             // Backslash, quote and line feed escaped, as the exposition format says.
             "sluice_rate_limited_total{scope=\"we\\\"ird\\\\model\\nx\"} 2",
             "sluice_scope_limit_requests_per_minute{scope=\"(endpoint)\"} 60",
             "sluice_scope_limit_tokens_per_minute{scope=\"we\\\"ird\\\\model\\nx\"} 90000",
             "sluice_scope_limits_learned{scope=\"(endpoint)\"} 1",
             "sluice_scope_adaptive_requests_per_minute{scope=\"(endpoint)\"} 0",
             "sluice_scope_adaptive_requests_per_minute{scope=\"we\\\"ird\\\\model\\nx\"} 2700.5",
             "sluice_scope_available_requests{scope=\"(endpoint)\"} 0.5",
             "sluice_scope_available_tokens{scope=\"we\\\"ird\\\\model\\nx\"} -1250.25",
             "sluice_scope_waiting_requests{scope=\"(endpoint)\"} 3",
             "sluice_prompt_tokens_total 120",
             "sluice_completion_tokens_total 80",
             "sluice_connections_opened_total 2",
             "# TYPE sluice_request_duration_seconds histogram",
             // 3 ms, 20 ms and 2 s: cumulative counts at each bound.
             "sluice_request_duration_seconds_bucket{le=\"0.001\"} 0",
             "sluice_request_duration_seconds_bucket{le=\"0.0025\"} 0",
             "sluice_request_duration_seconds_bucket{le=\"0.005\"} 1",
             "sluice_request_duration_seconds_bucket{le=\"0.01\"} 1",
             "sluice_request_duration_seconds_bucket{le=\"0.025\"} 2",
             "sluice_request_duration_seconds_bucket{le=\"1\"} 2",
             "sluice_request_duration_seconds_bucket{le=\"2.5\"} 3",
             "sluice_request_duration_seconds_bucket{le=\"300\"} 3",
             "sluice_request_duration_seconds_bucket{le=\"+Inf\"} 3",
             "sluice_request_duration_seconds_sum 2.023",
             "sluice_request_duration_seconds_count 3",
             "sluice_time_to_first_token_seconds_bucket{le=\"+Inf\"} 0",
             "sluice_time_to_first_token_seconds_count 0",
         }) {
        INFO(line);
        CHECK(has_line(text, line));
    }
    // No line breaks inside a label: every line is a comment or a sample.
    for (const auto& l : lines_of(text))
        CHECK((l.rfind("# HELP sluice_", 0) == 0 || l.rfind("# TYPE sluice_", 0) == 0 ||
               l.rfind("sluice_", 0) == 0));
}

TEST_CASE("several endpoints each have their counters and an up gauge, one has none") {
    stats_snapshot st;
    st.endpoints["primary"].sent = 12;
    st.endpoints["primary"].ok = 9;
    st.endpoints["primary"].errors = 3;
    st.endpoints["primary"].opened = 1;
    st.endpoints["primary"].state = "open";
    st.endpoints["backup"].sent = 4;
    st.endpoints["backup"].rate_limited = 1;
    std::string text;
    render_prometheus(st, text);
    INFO(text);
    for (const char* line : {
             "# TYPE sluice_endpoint_attempts_total counter",
             "sluice_endpoint_attempts_total{endpoint=\"primary\"} 12",
             "sluice_endpoint_attempts_total{endpoint=\"backup\"} 4",
             "sluice_endpoint_ok_total{endpoint=\"primary\"} 9",
             "sluice_endpoint_errors_total{endpoint=\"primary\"} 3",
             "sluice_endpoint_rate_limited_total{endpoint=\"backup\"} 1",
             "sluice_endpoint_breaker_opened_total{endpoint=\"primary\"} 1",
             "# TYPE sluice_endpoint_up gauge",
             "sluice_endpoint_up{endpoint=\"primary\"} 0",
             "sluice_endpoint_up{endpoint=\"backup\"} 1",
         }) {
        INFO(line);
        CHECK(has_line(text, line));
    }
    std::string one;
    render_prometheus(stats_snapshot{}, one);
    CHECK(one.find("sluice_endpoint_") == std::string::npos);
}

TEST_CASE("every histogram's buckets are cumulative and end in +Inf equal to the count") {
    stats_snapshot s;
    for (int i = 0; i < 1000; ++i)
        s.ttfb.record(std::chrono::microseconds(i * 997 % 400'000));
    std::string text;
    render_prometheus(s, text);
    std::uint64_t last = 0;
    int buckets = 0;
    for (const auto& l : lines_of(text)) {
        if (l.rfind("sluice_time_to_first_byte_seconds_bucket", 0) != 0)
            continue;
        const std::uint64_t v = std::stoull(l.substr(l.rfind(' ') + 1));
        CHECK(v >= last);
        last = v;
        ++buckets;
    }
    CHECK(buckets == 18);
    CHECK(last == 1000);
    CHECK(has_line(text, "sluice_time_to_first_byte_seconds_count 1000"));
}

TEST_CASE("promtool check metrics accepts the rendering") {
    if (test::run_shell("command -v promtool >/dev/null 2>&1") != 0) {
        if (std::getenv("CI"))
            FAIL("promtool not found: install Debian's prometheus package (.ci/install-deps)");
        WARN("promtool not found (Debian package prometheus): the check is skipped");
        return;
    }
    test::temp_dir dir;
    for (const bool empty : {true, false}) {
        INFO((empty ? "empty stats" : "known stats"));
        std::string text;
        render_prometheus(empty ? stats_snapshot{} : known_stats(), text);
        test::write_file(dir.file("metrics.txt"), text);
        const int status = test::run_shell("promtool check metrics < " + dir.file("metrics.txt") +
                                           " > " + dir.file("out.txt") + " 2>&1");
        const std::string said = test::read_file(dir.file("out.txt"));
        INFO(said);
        CHECK(status == 0);
        CHECK(said.empty()); // no lint warning either
    }
}

TEST_CASE("the Redis lease state of a shared budget is rendered when one is configured") {
    std::string text;
    render_prometheus(known_stats(), text);
    CHECK(text.find("shared_budget") == std::string::npos);

    stats_snapshot s = known_stats();
    s.shared_budget.enabled = true;
    s.shared_budget.state = 2;
    s.shared_budget.members = 4;
    s.shared_budget.round_trips = 120;
    s.shared_budget.failures = 3;
    s.shared_budget.fallbacks = 1;
    s.shared_budget.requests_held = 2.5;
    s.shared_budget.tokens_held = 250;
    text.clear();
    render_prometheus(s, text);
    CHECK(has_line(text, "sluice_shared_budget_state 2"));
    CHECK(has_line(text, "sluice_shared_budget_members 4"));
    CHECK(has_line(text, "sluice_shared_budget_redis_calls_total 120"));
    CHECK(has_line(text, "sluice_shared_budget_redis_failures_total 3"));
    CHECK(has_line(text, "sluice_shared_budget_fallbacks_total 1"));
    CHECK(has_line(text, "sluice_shared_budget_leased_requests 2.5"));
    CHECK(has_line(text, "sluice_shared_budget_leased_tokens 250"));
    if (test::run_shell("command -v promtool >/dev/null 2>&1") != 0)
        return; // the test above says why
    test::temp_dir dir;
    test::write_file(dir.file("metrics.txt"), text);
    const int status = test::run_shell("promtool check metrics < " + dir.file("metrics.txt") +
                                       " > " + dir.file("out.txt") + " 2>&1");
    INFO(test::read_file(dir.file("out.txt")));
    CHECK(status == 0);
    CHECK(test::read_file(dir.file("out.txt")).empty());
}
