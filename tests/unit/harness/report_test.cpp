#include "support/manual_clock.hpp"

#include <sluice/harness/report.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <string>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// Ten streamed requests sent 100 ms apart: TTFT 50 ms, two gaps of 10 ms, E2EL 70 ms,
// 20 input and 3 output tokens each; and two failures.
recorder sample_run(const test::manual_clock& clock) {
    recorder rec;
    const auto t0 = clock.now();
    for (int i = 0; i < 10; ++i) {
        const auto due = t0 + i * 100ms;
        auto r = rec.on_sent(due, due + 1ms);
        rec.on_content(r, r.sent + 50ms);
        rec.on_content(r, r.sent + 60ms);
        rec.on_content(r, r.sent + 70ms);
        rec.on_success(r, r.sent + 70ms, 20, 3);
    }
    auto f = rec.on_sent(t0, t0);
    rec.on_failure(f, t0 + 5ms, "http_503");
    auto g = rec.on_sent(t0, t0);
    rec.on_failure(g, t0 + 5ms, "http_503");
    return rec;
}

struct parsed {
    simdjson::dom::parser parser;
    simdjson::dom::element root;

    explicit parsed(const std::string& json) {
        REQUIRE(parser.parse(json).get(root) == simdjson::SUCCESS);
        REQUIRE(root.is_object());
    }
    double number(const char* key) {
        double v = -1;
        INFO(key);
        REQUIRE(root[key].get_double().get(v) == simdjson::SUCCESS);
        return v;
    }
    std::uint64_t integer(const char* key) {
        std::uint64_t v = 0;
        INFO(key);
        REQUIRE(root[key].get_uint64().get(v) == simdjson::SUCCESS);
        return v;
    }
    std::string string(const char* key) {
        std::string_view v;
        INFO(key);
        REQUIRE(root[key].get_string().get(v) == simdjson::SUCCESS);
        return std::string(v);
    }
    bool is_null(const char* key) { return root[key].is_null(); }
};

} // namespace

TEST_CASE("the JSON report carries vLLM's field names with the recorded numbers") {
    test::manual_clock clock;
    const recorder rec = sample_run(clock);
    report_context ctx;
    ctx.backend = "vllm";
    ctx.model_id = "meta-llama/Llama-3.1-8B";
    ctx.date = "20250101-120000";
    ctx.load.rate = 10;
    ctx.load.concurrency = 0;
    ctx.load.max_requests = 12;
    parsed j(report_json(rec, ctx));

    CHECK(j.string("backend") == "vllm");
    CHECK(j.string("model_id") == "meta-llama/Llama-3.1-8B");
    CHECK(j.string("date") == "20250101-120000");
    CHECK(j.number("request_rate") == 10);
    CHECK(j.integer("num_prompts") == 12);
    CHECK(j.is_null("max_concurrency"));
    CHECK(j.number("duration") == Approx(0.971)); // first send t0 to last end 901 + 70 ms
    CHECK(j.integer("completed") == 10);
    CHECK(j.integer("failed") == 2);
    std::uint64_t failures_503 = 0;
    CHECK(j.root["failures"]["http_503"].get_uint64().get(failures_503) == simdjson::SUCCESS);
    CHECK(failures_503 == 2);
    CHECK(j.integer("total_input_tokens") == 200);
    CHECK(j.integer("total_output_tokens") == 30);
    CHECK(j.number("request_throughput") == Approx(10 / 0.971));
    CHECK(j.number("output_throughput") == Approx(30 / 0.971));
    CHECK(j.number("total_token_throughput") == Approx(230 / 0.971));
    const double tolerance = timing_histogram::relative_error;
    CHECK(j.number("mean_ttft_ms") == Approx(50));
    CHECK(j.number("median_ttft_ms") == Approx(50).epsilon(tolerance));
    CHECK(j.number("p99_ttft_ms") == Approx(50).epsilon(tolerance));
    CHECK(j.number("std_ttft_ms") == Approx(0).margin(1e-9));
    CHECK(j.integer("count_itl") == 20);
    CHECK(j.number("mean_itl_ms") == Approx(10));
    CHECK(j.number("p99.9_itl_ms") == Approx(10).epsilon(tolerance));
    CHECK(j.number("mean_tpot_ms") == Approx(10)); // (70 - 50) / (3 - 1)
    CHECK(j.number("mean_e2el_ms") == Approx(70));
    CHECK(j.number("max_e2el_ms") == Approx(70));
    CHECK(j.number("p90_e2el_ms") == Approx(70).epsilon(tolerance));
    CHECK(j.integer("count_send_lag") == 12);
    CHECK(j.number("max_send_lag_ms") == Approx(1));
}

TEST_CASE("the JSON report of an unpaced, capped run says so as vLLM does") {
    recorder rec;
    report_context ctx;
    ctx.load.rate = 0;
    ctx.load.concurrency = 8;
    ctx.load.max_requests = 0;
    parsed j(report_json(rec, ctx));
    CHECK(j.string("request_rate") == "inf");
    CHECK(j.integer("max_concurrency") == 8);
    CHECK(j.is_null("num_prompts"));
    // Nothing recorded: zeros, not NaN, and a count that says why.
    CHECK(j.integer("completed") == 0);
    CHECK(j.number("duration") == 0);
    CHECK(j.number("request_throughput") == 0);
    CHECK(j.number("mean_ttft_ms") == 0);
    CHECK(j.integer("count_ttft") == 0);
    CHECK(j.root["backend"].error() == simdjson::NO_SUCH_FIELD); // empty context fields left out
}

TEST_CASE("strings in the JSON report are escaped") {
    recorder rec;
    auto r = rec.on_sent({}, {});
    rec.on_failure(r, recorder::time_point{} + 1ms, "weird \"kind\"\n\x01");
    report_context ctx;
    ctx.model_id = "a \"quoted\" \\ model\twith\ncontrols";
    parsed j(report_json(rec, ctx));
    CHECK(j.string("model_id") == ctx.model_id);
    std::uint64_t n = 0;
    CHECK(j.root["failures"]["weird \"kind\"\n\x01"].get_uint64().get(n) == simdjson::SUCCESS);
    CHECK(n == 1);
}

TEST_CASE("the text report reads like vLLM's, leaving out metrics with no values") {
    test::manual_clock clock;
    const recorder rec = sample_run(clock);
    report_context ctx;
    ctx.load.rate = 10;
    const std::string text = report_text(rec, ctx);
    const auto has_line = [&](const std::string& label, const std::string& value) {
        std::string line = label;
        line.append(41 - label.size(), ' ');
        line += value + "\n";
        INFO(line);
        CHECK(text.find(line) != std::string::npos);
    };
    CHECK(text.rfind("============ Serving Benchmark Result ============\n", 0) == 0);
    has_line("Successful requests:", "10");
    has_line("Failed requests:", "2");
    has_line("Total input tokens:", "200");
    has_line("Total generated tokens:", "30");
    has_line("Mean TTFT (ms):", "50.00");
    has_line("Mean E2EL (ms):", "70.00");
    has_line("http_503:", "2");
    has_line("Traffic request rate:", "10.00");

    recorder plain; // no streaming: no TTFT section at all
    auto r = plain.on_sent({}, {});
    plain.on_success(r, recorder::time_point{} + 5ms, 1, 1);
    const std::string unstreamed = report_text(plain, ctx);
    CHECK(unstreamed.find("TTFT") == std::string::npos);
    CHECK(unstreamed.find("Mean E2EL (ms):") != std::string::npos);
}

TEST_CASE("the HTML report is one self-contained page with the numbers, escaped") {
    test::manual_clock clock;
    const recorder rec = sample_run(clock);
    report_context ctx;
    ctx.model_id = "<script>alert(1)</script>";
    const std::string html = report_html(rec, ctx);
    CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(html.find("</html>") != std::string::npos);
    CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
    // Nothing to fetch: no scripts, stylesheets, images or links.
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("<link") == std::string::npos);
    CHECK(html.find("src=") == std::string::npos);
    CHECK(html.find("href=") == std::string::npos);
    // One chart per metric with values: TTFT, TPOT, ITL, E2EL and send lag.
    std::size_t charts = 0;
    for (auto at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
        ++charts;
    CHECK(charts == 5);
    CHECK(html.find("<td>50.000</td>") != std::string::npos); // the mean TTFT
}
