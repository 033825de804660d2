#include "support/manual_clock.hpp"

#include <sluice/harness/report.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <string>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// Four requests, one a second, each with TTFT 10 ms and E2EL 100 ms, except the third
// (TTFT 300 ms, E2EL 400 ms); goodput against ttft=50 ms counts three.
struct sample {
    test::manual_clock clock;
    recorder rec;
    goodput_counter good{parse_slo("ttft=50")};
    timeline over_time{clock.now(), 1s};

    sample() {
        const auto t0 = clock.now();
        for (int i = 0; i < 4; ++i) {
            const auto sent = t0 + i * 1s;
            const auto ttft = i == 2 ? 300ms : 10ms;
            auto r = rec.on_sent(sent, sent);
            over_time.on_sent(sent);
            rec.on_content(r, sent + ttft);
            rec.on_content(r, sent + ttft + 90ms);
            const auto end = sent + ttft + 90ms;
            rec.on_success(r, end, 10, 2);
            good.on_success(r, end, 2);
            over_time.on_success(r, end, 2);
        }
    }

    report_context context() const {
        report_context ctx;
        ctx.extras.goodput = &good;
        ctx.extras.over_time = &over_time;
        ctx.extras.stream = true;
        ctx.extras.input = "<prompts>.jsonl";
        ctx.extras.warmup = 2s;
        ctx.extras.warmup_requests = 7;
        ctx.extras.cancelled = 1;
        return ctx;
    }
};

} // namespace

TEST_CASE("the JSON report has request_goodput, null without objectives as vLLM writes it") {
    sample s;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    REQUIRE(parser.parse(report_json(s.rec, s.context())).get(root) == simdjson::SUCCESS);
    const double wall = 3.1; // first send t0 to the last end 3 s + 100 ms
    CHECK(double(root["request_goodput"]) == Approx(3 / wall));
    CHECK(std::uint64_t(root["good_requests"]) == 3);
    CHECK(double(root["goodput_slo_ms"]["ttft"]) == 50);
    CHECK(root["goodput_slo_ms"]["e2el"].error() == simdjson::NO_SUCH_FIELD);
    CHECK(bool(root["stream"]) == true);
    CHECK(std::string_view(root["input"]) == "<prompts>.jsonl");
    CHECK(double(root["warmup_s"]) == 2);
    CHECK(std::uint64_t(root["warmup_requests"]) == 7);
    CHECK(std::uint64_t(root["cancelled"]) == 1);
    CHECK(double(root["timeline"]["bucket_s"]) == 1);
    simdjson::dom::array completed = root["timeline"]["completed"];
    CHECK(completed.size() == 4);
    simdjson::dom::array ttft = root["timeline"]["mean_ttft_ms"];
    REQUIRE(ttft.size() == 4);
    CHECK(double(ttft.at(2)) == Approx(300));

    recorder empty;
    REQUIRE(parser.parse(report_json(empty, report_context{})).get(root) == simdjson::SUCCESS);
    CHECK(root["request_goodput"].is_null());
    CHECK(root["timeline"].error() == simdjson::NO_SUCH_FIELD);
}

TEST_CASE("the text report adds goodput and how the requests were made") {
    sample s;
    const std::string text = report_text(s.rec, s.context());
    const auto has_line = [&](const std::string& label, const std::string& value) {
        std::string line = label;
        line.append(41 - label.size(), ' ');
        line += value + "\n";
        INFO(line);
        CHECK(text.find(line) != std::string::npos);
    };
    has_line("Request goodput (req/s):", "0.97");
    has_line("Streaming:", "yes");
    has_line("Input:", "<prompts>.jsonl");
    has_line("Warm-up (s, requests excluded):", "2.00, 7");
    has_line("Cancelled (not recorded):", "1");
    CHECK(report_text(s.rec, report_context{}).find("goodput") == std::string::npos);
}

TEST_CASE("the HTML report charts the run over time, still without scripts") {
    sample s;
    const std::string html = report_html(s.rec, s.context());
    std::size_t charts = 0;
    for (auto at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
        ++charts;
    CHECK(charts == 3 + 5); // requests/s, tokens/s and latency over time; the five metrics
    CHECK(html.find("Requests per second") != std::string::npos);
    CHECK(html.find("mean TTFT (ms)") != std::string::npos);
    CHECK(html.find("&lt;prompts&gt;.jsonl") != std::string::npos);
    CHECK(html.find("Request goodput (req/s, ttft=50 ms)") != std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("href=") == std::string::npos);
}
