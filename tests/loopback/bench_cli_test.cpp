// `sluice bench` end to end, as a user runs it: the built binary against its embedded mock,
// its report files, and the HTML report rendered by headless Chromium (Debian `chromium`).
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <filesystem>
#include <string>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace bench_cli_test {

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

std::string sluice_cmd(const std::string& args) {
    return std::string(SLUICE_EXE) + " " + args;
}

// Where a test leaves what a person may want to look at: beside the binary, in the build tree.
fs::path artefacts_dir() {
    const fs::path dir = fs::path(SLUICE_EXE).parent_path() / "test-artefacts";
    fs::create_directories(dir);
    return dir;
}

// Whether Chromium is installed; when not, says that `page` was not rendered (the test then
// passes with that warning).
bool chromium_ready(const std::string& page) {
    if (run_shell("command -v chromium >/dev/null 2>&1") == 0)
        return true;
    WARN("chromium is not installed (.ci/install-deps installs it): " << page
                                                                      << " was not rendered");
    return false;
}

// A 2 s open-loop run whose report has every section: an unpaced start would not draw much of
// a course over time.
int bench_with_reports(const temp_dir& dir, const std::string& extra = "") {
    return run_shell(sluice_cmd("bench --mock --mock-latency-ms 20 --rate 150 -c 16 --requests "
                                "300 --arrivals poisson --seed 7 --input-tokens 32-64 "
                                "--output-tokens 16 --no-stream --slo e2e=25 -q --json " +
                                dir.file("report.json") + " --html " + dir.file("report.html") +
                                " " + extra + " >" + dir.file("stdout.txt") + " 2>" +
                                dir.file("stderr.txt")));
}

// Renders `html` (a file in `dir`) with headless Chromium into the artefact `name`.png, checks
// that the screenshot holds a page, and keeps the page beside it as `name`.html.
void check_chromium_renders(const temp_dir& dir, const std::string& html, const std::string& name) {
    const fs::path shot = artefacts_dir() / (name + ".png");
    fs::remove(shot);
    const std::string profile = dir.file("chromium-profile");
    const int status =
        run_shell("timeout 120 chromium --headless --no-sandbox --disable-gpu "
                  "--disable-background-networking --disable-component-update --disable-sync "
                  "--no-first-run --user-data-dir=" +
                  profile + " --screenshot=" + shot.string() + " --window-size=1200,1600 file://" +
                  html + " >" + dir.file("chromium.txt") + " 2>&1");
    INFO(read_file(dir.file("chromium.txt")));
    CHECK(status == 0);
    REQUIRE(fs::exists(shot));
    // A page of tables and charts; a blank 1200x1600 PNG compresses to a few KiB.
    CHECK(fs::file_size(shot) > 40 * 1024);
    const std::string png = read_file(shot.string());
    CHECK(png.rfind("\x89PNG\r\n\x1a\n", 0) == 0);
    fs::copy_file(html, artefacts_dir() / (name + ".html"), fs::copy_options::overwrite_existing);
}

// A closed-loop sweep of concurrency 1 and 4 against the mock's fixed 40 ms: throughput
// scales with the concurrency.
int bench_sweep(const temp_dir& dir) {
    return run_shell(sluice_cmd("bench --mock --mock-latency-ms 40 --no-stream --sweep "
                                "concurrency=1,4 --requests 40 --input-tokens 16 "
                                "--output-tokens 8 -q --json " +
                                dir.file("sweep.json") + " --html " + dir.file("sweep.html") +
                                " >" + dir.file("stdout.txt") + " 2>" + dir.file("stderr.txt")));
}

} // namespace

TEST_CASE("sluice bench --mock prints the table and writes the JSON and HTML reports") {
    temp_dir dir;
    REQUIRE(bench_with_reports(dir) == 0);
    const std::string text = read_file(dir.file("stdout.txt"));
    CHECK(text.find("Serving Benchmark Result") != std::string::npos);
    CHECK(text.find("Successful requests:                     300\n") != std::string::npos);
    CHECK(text.find("Request goodput (req/s):") != std::string::npos);

    simdjson::dom::parser parser;
    simdjson::dom::element root;
    REQUIRE(parser.load(dir.file("report.json")).get(root) == simdjson::SUCCESS);
    CHECK(std::uint64_t(root["completed"]) == 300);
    CHECK(std::uint64_t(root["failed"]) == 0);
    CHECK(std::uint64_t(root["num_prompts"]) == 300);
    CHECK(double(root["request_rate"]) == 150);
    CHECK(std::uint64_t(root["max_concurrency"]) == 16);
    CHECK(std::string_view(root["arrivals"]) == "poisson");
    CHECK(bool(root["stream"]) == false);
    CHECK(double(root["duration"]) >= 1.5); // 300 requests at 150/s take about 2 s, at least
    CHECK(root["request_goodput"].is_double());
    CHECK(root["timeline"]["completed"].is_array());

    const std::string html = read_file(dir.file("report.html"));
    CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(html.find("Requests per second") != std::string::npos);
    CHECK(html.find("<svg") != std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
}

TEST_CASE("sluice bench refuses bad setups with the documented statuses") {
    temp_dir dir;
    const std::string quiet = " -q >/dev/null 2>" + dir.file("err.txt");
    // Bad flags: status 2, nothing run.
    CHECK(run_shell(sluice_cmd("bench --mock --arrivals sometimes" + quiet)) == 2);
    CHECK(run_shell(sluice_cmd("bench --mock --arrivals constant --burstiness 0.5" + quiet)) == 2);
    CHECK(read_file(dir.file("err.txt")).find("--burstiness") != std::string::npos);
    CHECK(run_shell(sluice_cmd("bench --mock --slo latency=5" + quiet)) == 2);
    CHECK(run_shell(sluice_cmd("bench --mock --input-tokens 0" + quiet)) == 2);
    CHECK(run_shell(sluice_cmd("bench --mock --busy-wait-us -1" + quiet)) == 2);
    CHECK(run_shell(sluice_cmd("bench --mock --input x.jsonl --input-tokens 5" + quiet)) == 2);
    // Synthetic prompts without a model, against a real endpoint: status 2.
    CHECK(run_shell("env -u OPENAI_API_KEY " +
                    sluice_cmd("bench --base-url http://127.0.0.1:9/v1" + quiet)) == 2);
    CHECK(read_file(dir.file("err.txt")).find("--model") != std::string::npos);
    // A prompt file that cannot be read: status 4.
    CHECK(run_shell(sluice_cmd("bench --mock --input " + dir.file("missing.jsonl") + quiet)) == 4);
    // A report file that cannot be written: the run is done and printed, status 4.
    CHECK(run_shell(sluice_cmd("bench --mock -n 5 -c 1 --input-tokens 8 --output-tokens 4 "
                               "--json " +
                               dir.file("no/such/dir/r.json") + quiet)) == 4);
}

TEST_CASE("sluice bench reads prompts from a JSONL file, cycling its lines") {
    temp_dir dir;
    write_file(
        dir.file("prompts.jsonl"),
        R"({"prompt":"Say one"})"
        "\n"
        R"({"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"two"}]}})"
        "\n");
    const int status = run_shell(sluice_cmd(
        "bench --mock --model m --no-stream -n 9 -c 3 --input " + dir.file("prompts.jsonl") +
        " -q --json " + dir.file("r.json") + " >/dev/null 2>/dev/null"));
    REQUIRE(status == 0);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    REQUIRE(parser.load(dir.file("r.json")).get(root) == simdjson::SUCCESS);
    CHECK(std::uint64_t(root["completed"]) == 9);
    CHECK(std::string_view(root["input"]).find("2 prompts, in order") != std::string_view::npos);
}

TEST_CASE("headless Chromium renders the HTML report", "[chromium]") {
    if (!chromium_ready("the HTML report"))
        return;
    temp_dir dir;
    REQUIRE(bench_with_reports(dir) == 0);
    check_chromium_renders(dir, dir.file("report.html"), "bench-report");
}

TEST_CASE("sluice bench --sweep runs each level and reports one row and one object per level") {
    temp_dir dir;
    REQUIRE(bench_sweep(dir) == 0);
    const std::string text = read_file(dir.file("stdout.txt"));
    INFO(text << read_file(dir.file("stderr.txt")));
    CHECK(text.find("level 1/2  concurrency 1: 40 completed, 0 failed") != std::string::npos);
    CHECK(text.find("level 2/2  concurrency 4: 40 completed, 0 failed") != std::string::npos);
    CHECK(text.find("Sweep of concurrency, 2 levels") != std::string::npos);

    simdjson::dom::parser parser;
    simdjson::dom::array levels;
    REQUIRE(parser.load(dir.file("sweep.json")).get_array().get(levels) == simdjson::SUCCESS);
    REQUIRE(levels.size() == 2);
    const simdjson::dom::element one = levels.at(0).value(), four = levels.at(1).value();
    CHECK(std::uint64_t(one["max_concurrency"]) == 1);
    CHECK(std::uint64_t(four["max_concurrency"]) == 4);
    CHECK(double(four["sweep_level"]) == 4);
    CHECK(std::string_view(four["sweep_parameter"]) == "concurrency");
    for (const auto& level : {one, four}) {
        CHECK(std::uint64_t(level["completed"]) == 40);
        CHECK(std::uint64_t(level["failed"]) == 0);
    }
    // How many were in flight on average (Little's law: throughput times mean latency is the
    // sum of the latencies over the run's wall time): one, and close to four. Rates alone
    // would compare the two levels' luck: a 200 ms stall of a loaded machine during the
    // fourth level's 0.4 s halves its rate, but lengthens its latencies by as much.
    const auto in_flight = [](const simdjson::dom::element& level) {
        return double(level["request_throughput"]) * double(level["mean_e2el_ms"]) / 1000;
    };
    CHECK(in_flight(one) <= 1.05);
    CHECK(in_flight(four) >= 2.5);

    const std::string html = read_file(dir.file("sweep.html"));
    CHECK(html.find("Throughput against concurrency") != std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
}

TEST_CASE("headless Chromium renders the sweep page", "[chromium]") {
    if (!chromium_ready("the sweep page"))
        return;
    temp_dir dir;
    REQUIRE(bench_sweep(dir) == 0);
    check_chromium_renders(dir, dir.file("sweep.html"), "bench-sweep");
}

TEST_CASE("sluice bench --sweep refuses a bad list with status 2") {
    temp_dir dir;
    const std::string quiet = " -q >/dev/null 2>" + dir.file("err.txt");
    const auto refused = [&](const std::string& args, const std::string& said) {
        INFO(args);
        CHECK(run_shell(sluice_cmd("bench --mock -n 4 " + args + quiet)) == 2);
        const std::string err = read_file(dir.file("err.txt"));
        INFO(err);
        CHECK(err.find(said) != std::string::npos);
    };
    refused("--sweep rate=5", "at least two levels");
    refused("--sweep speed=1,2", "'speed=1,2' is not rate=");
    refused("--sweep concurrency=1,0", "'0' is not a positive number");
    refused("--sweep rate=1,-2", "'-2' is not a positive number");
    refused("--sweep rate=1,,2", "'' is not a positive number");
    refused("--sweep concurrency=1,2.5", "not a whole number");
    refused("--sweep rate=1,2 --rate 3", "--rate");
    refused("--sweep concurrency=1,2 -c 3", "--concurrency");
}

} // namespace bench_cli_test
