#include "support/manual_clock.hpp"

#include <sluice/harness/sweep_report.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <deque>
#include <string>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// A made-up sweep: level k (concurrency 1, 4, 16) has 10 * (k + 1) streamed successes whose
// TTFT and E2EL grow with the load, and k failures; the levels ran 1 s each.
struct made_up_sweep {
    test::manual_clock clock;
    std::deque<recorder> recs;
    std::vector<sweep_level> levels;
    std::vector<double> values{1, 4, 16};

    explicit made_up_sweep(std::string_view backend = "vllm") {
        for (std::size_t k = 0; k < values.size(); ++k) {
            recorder& rec = recs.emplace_back();
            const auto t0 = clock.now() + k * 10s;
            const int n = 10 * static_cast<int>(k + 1);
            for (int i = 0; i < n; ++i) {
                const auto sent = t0 + i * (1000ms / n);
                auto r = rec.on_sent(sent, sent);
                const auto ttft = 20ms * (k + 1) + i * 1ms;
                rec.on_content(r, sent + ttft);
                rec.on_content(r, sent + ttft + 5ms);
                rec.on_success(r, sent + ttft + 5ms, 100, 2);
            }
            for (std::size_t f = 0; f < k; ++f) {
                auto r = rec.on_sent(t0, t0);
                rec.on_failure(r, t0 + 1ms, "http_503");
            }
            sweep_level level{values[k], &rec, {}};
            level.context.backend = std::string(backend);
            level.context.model_id =
                std::string("m"); // operator=(const char*) trips GCC 12 -Wrestrict
            level.context.load.concurrency = static_cast<std::size_t>(values[k]);
            level.context.load.max_requests = static_cast<std::uint64_t>(n + k);
            levels.push_back(level);
        }
    }
};

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

// The part of `html` inside the element with id `id` (up to its </figure>).
std::string figure(const std::string& html, const std::string& id) {
    const auto from = html.find("<figure id=\"" + id + "\"");
    REQUIRE(from != std::string::npos);
    const auto to = html.find("</figure>", from);
    REQUIRE(to != std::string::npos);
    return html.substr(from, to - from);
}

double number(simdjson::dom::element e, const char* key) {
    double v = -1;
    INFO(key);
    REQUIRE(e[key].get_double().get(v) == simdjson::SUCCESS);
    return v;
}

std::uint64_t integer(simdjson::dom::element e, const char* key) {
    std::uint64_t v = 0;
    INFO(key);
    REQUIRE(e[key].get_uint64().get(v) == simdjson::SUCCESS);
    return v;
}

} // namespace

TEST_CASE("the sweep JSON is an array of single-run objects in level order") {
    made_up_sweep s;
    const std::string json = report_sweep_json(sweep_parameter::concurrency, s.levels);
    simdjson::dom::parser parser;
    simdjson::dom::array levels;
    REQUIRE(parser.parse(json).get_array().get(levels) == simdjson::SUCCESS);
    REQUIRE(levels.size() == 3);
    std::size_t k = 0;
    for (simdjson::dom::element e : levels) {
        INFO("level " << k);
        std::string_view parameter;
        REQUIRE(e["sweep_parameter"].get_string().get(parameter) == simdjson::SUCCESS);
        CHECK(parameter == "concurrency");
        CHECK(number(e, "sweep_level") == s.values[k]);
        CHECK(integer(e, "max_concurrency") == s.values[k]);
        // Counts add up: every recorded request is completed or failed.
        CHECK(integer(e, "completed") == 10 * (k + 1));
        CHECK(integer(e, "failed") == k);
        CHECK(integer(e, "completed") + integer(e, "failed") == integer(e, "num_prompts"));
        // vLLM's keys, percentiles in order.
        for (const char* m : {"ttft", "tpot", "itl", "e2el"}) {
            const std::string stem = std::string("_") + m + "_ms";
            const double p50 = number(e, ("p50" + stem).c_str());
            const double p90 = number(e, ("p90" + stem).c_str());
            const double p99 = number(e, ("p99" + stem).c_str());
            CHECK(number(e, ("median" + stem).c_str()) == p50);
            CHECK(number(e, ("mean" + stem).c_str()) >= 0);
            CHECK(number(e, ("std" + stem).c_str()) >= 0);
            CHECK(p50 <= p90);
            CHECK(p90 <= p99);
            CHECK(p99 <= number(e, ("p99.9" + stem).c_str()));
        }
        CHECK(number(e, "request_throughput") > 0);
        CHECK(number(e, "output_throughput") > 0);
        ++k;
    }
    // Level order, not sorted: the TTFT grows with the level as made up.
    CHECK(number(levels.at(0).value(), "median_ttft_ms") <
          number(levels.at(2).value(), "median_ttft_ms"));
}

TEST_CASE("a rate sweep's JSON names the rate as its parameter") {
    made_up_sweep s;
    for (sweep_level& l : s.levels)
        l.context.load.rate = l.value;
    const std::string json = report_sweep_json(sweep_parameter::rate, s.levels);
    simdjson::dom::parser parser;
    simdjson::dom::array levels;
    REQUIRE(parser.parse(json).get_array().get(levels) == simdjson::SUCCESS);
    REQUIRE(levels.size() == 3);
    CHECK(std::string_view(levels.at(1).value()["sweep_parameter"]) == "rate");
    CHECK(number(levels.at(1).value(), "request_rate") == 4);
}

TEST_CASE("the sweep text table has a header and one row per level") {
    made_up_sweep s;
    const std::string text = report_sweep_text(sweep_parameter::concurrency, s.levels);
    CHECK(text.find("Sweep of concurrency, 3 levels, backend vllm, model m") == 0);
    // The title, the header, a row per level.
    CHECK(count_of(text, "\n") == 1 + 1 + 3);
    CHECK(text.find("TTFT p50 (ms)") != std::string::npos);
    CHECK(text.find("send lag p99 (ms)") != std::string::npos);
    CHECK(text.find("goodput") == std::string::npos); // no level measured it
    // The row of concurrency 16: 30 completed, 2 failed.
    CHECK(text.find("\n         16         30       2") != std::string::npos);
    const std::string line = report_sweep_line(sweep_parameter::concurrency, s.levels[1], 1, 3);
    CHECK(line.find("level 2/3  concurrency 4: 20 completed, 1 failed") == 0);
}

TEST_CASE("the sweep HTML page draws a point per level and escapes what it is told") {
    made_up_sweep s("<script>alert('x')</script> & co");
    const std::string html = report_sweep_html(sweep_parameter::rate, s.levels);
    CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(html.find("</html>") != std::string::npos);
    // One point per level in the load chart; two series (p50, p99) of TTFT and E2EL; one of
    // TPOT.
    CHECK(count_of(figure(html, "sweep-load"), "<circle") == 3);
    CHECK(count_of(figure(html, "sweep-ttft"), "<circle") == 2 * 3);
    CHECK(count_of(figure(html, "sweep-e2el"), "<circle") == 2 * 3);
    CHECK(count_of(figure(html, "sweep-tpot"), "<circle") == 3);
    CHECK(figure(html, "sweep-load").find(">16/s</text>") != std::string::npos);
    CHECK(html.find("achieved request throughput (req/s)") != std::string::npos);
    CHECK(html.find("offered request rate (req/s)") != std::string::npos);
    // Each level's own report, folded.
    CHECK(count_of(html, "<details>") == 3);
    CHECK(html.find("Level 3/3: rate 16/s") != std::string::npos);
    // The hostile backend name only ever escaped, and nothing that runs or is fetched.
    CHECK(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co") !=
          std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("https://") == std::string::npos);
    // The SVG namespace is the only URL, and it is never fetched.
    CHECK(count_of(html, "http://") == count_of(html, "xmlns=\"http://www.w3.org/2000/svg\""));
}

TEST_CASE("a sweep without streamed answers draws no TTFT or TPOT chart") {
    test::manual_clock clock;
    std::deque<recorder> recs;
    std::vector<sweep_level> levels;
    for (double c : {1.0, 2.0}) {
        recorder& rec = recs.emplace_back();
        auto r = rec.on_sent(clock.now(), clock.now());
        rec.on_success(r, clock.now() + 40ms, 10, 0);
        levels.push_back({c, &rec, {}});
    }
    const std::string html = report_sweep_html(sweep_parameter::concurrency, levels);
    CHECK(html.find("id=\"sweep-ttft\"") == std::string::npos);
    CHECK(html.find("id=\"sweep-tpot\"") == std::string::npos);
    CHECK(count_of(figure(html, "sweep-e2el"), "<circle") == 2 * 2);
    CHECK(html.find("Throughput against concurrency") != std::string::npos);
    const std::string text = report_sweep_text(sweep_parameter::concurrency, levels);
    CHECK(text.find("  -  ") != std::string::npos); // no TTFT: "-"
}
