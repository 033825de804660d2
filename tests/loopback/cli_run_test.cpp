// `sluice run` end to end, as a user runs it: the built binary against its embedded mock.
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <set>
#include <string>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace cli_run_test {

using namespace sluice::test;

namespace {

struct output_record {
    std::string custom_id;
    std::int64_t status = 0; // 0: response null
    std::string error_code;
    std::string error_message;
};

output_record parse_record(const std::string& line) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.parse(line);
    output_record rec;
    rec.custom_id = std::string(std::string_view(doc["custom_id"]));
    simdjson::dom::element response = doc["response"];
    if (!response.is_null())
        rec.status = std::int64_t(response["status_code"]);
    simdjson::dom::element error = doc["error"];
    if (!error.is_null()) {
        rec.error_code = std::string(std::string_view(error["code"]));
        rec.error_message = std::string(std::string_view(error["message"]));
    }
    return rec;
}

std::string sluice_cmd(const std::string& args) {
    return std::string(SLUICE_EXE) + " " + args;
}

} // namespace

TEST_CASE("sluice run --mock answers every line of the sample batch") {
    temp_dir dir;
    const std::string input = std::string(SLUICE_SOURCE_DIR) + "/docs/examples/sample-batch.jsonl";
    const std::string output = dir.file("out.jsonl");
    const std::string err = dir.file("stderr.txt");
    const int status = run_shell(sluice_cmd("run " + input + " -o " + output + " --mock 2>" + err));
    CHECK(status == 0);
    const auto in_lines = read_lines(input);
    const auto out_lines = read_lines(output);
    REQUIRE(out_lines.size() == in_lines.size());
    std::set<std::string> ids;
    for (const auto& line : out_lines) {
        const auto rec = parse_record(line);
        CHECK(rec.status == 200);
        CHECK(rec.error_code.empty());
        ids.insert(rec.custom_id);
    }
    CHECK(ids.size() == in_lines.size());
    CHECK(ids.count("request-1") == 1);
    const std::string summary = read_file(err);
    CHECK(summary.find("succeeded " + std::to_string(in_lines.size())) != std::string::npos);
    CHECK(summary.find("p99") != std::string::npos);
}

TEST_CASE("sluice run turns a bad line into an error record naming its line") {
    temp_dir dir;
    const std::string input = dir.file("in.jsonl");
    write_file(
        input,
        R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}})"
        "\n"
        "this is not json\n"
        R"({"custom_id":"c","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"yo"}]}})"
        "\n");
    const std::string output = dir.file("out.jsonl");
    const int status =
        run_shell(sluice_cmd("run " + input + " -o " + output + " --mock -q 2>/dev/null"));
    CHECK(status == 1); // finished, with a failed line
    const auto out_lines = read_lines(output);
    REQUIRE(out_lines.size() == 3);
    int good = 0, bad = 0;
    for (const auto& line : out_lines) {
        const auto rec = parse_record(line);
        if (rec.status == 200) {
            ++good;
        } else {
            ++bad;
            CHECK(rec.custom_id == "line-2");
            CHECK(rec.error_code == "invalid_input");
            CHECK(rec.error_message.find("line 2") != std::string::npos);
        }
    }
    CHECK(good == 2);
    CHECK(bad == 1);
}

TEST_CASE("sluice run refuses an unknown tier before sending anything") {
    temp_dir dir;
    const std::string input = std::string(SLUICE_SOURCE_DIR) + "/docs/examples/sample-batch.jsonl";
    const std::string err = dir.file("stderr.txt");
    const int status = run_shell(sluice_cmd("run " + input + " -o " + dir.file("o.jsonl") +
                                            " --mock --tier platinum 2>" + err));
    CHECK(status == 2);
    CHECK(read_file(err).find("platinum") != std::string::npos);
}

TEST_CASE("a bad --base-url exits 2 and leaves no output file behind") {
    temp_dir dir;
    const std::string input = std::string(SLUICE_SOURCE_DIR) + "/docs/examples/sample-batch.jsonl";
    const std::string out = dir.file("o.jsonl"), err = dir.file("stderr.txt");
    CHECK(run_shell(
              sluice_cmd("run " + input + " -o " + out + " --base-url ftp://x/v1 2>" + err)) == 2);
    CHECK(read_file(err).find("ftp://x/v1") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out)); // nothing was sent, and nothing written
}

TEST_CASE("sluice run --help names the command, the environment and the exit statuses") {
    temp_dir dir;
    const std::string out = dir.file("help.txt");
    CHECK(run_shell(sluice_cmd("run --help >" + out)) == 0);
    const std::string help = read_file(out);
    CHECK(help.find("Usage: sluice run [OPTIONS] input") != std::string::npos);
    for (const char* word : {"OPENAI_API_KEY",
                             "OPENAI_BASE_URL",
                             "OPENAI_ORG_ID",
                             "OPENAI_PROJECT_ID",
                             "Exit status",
                             "130",
                             "Required, except with --dry-run",
                             "learned from the server"}) {
        INFO(word);
        CHECK(help.find(word) != std::string::npos);
    }
    CHECK(help.find("UINT:UINT") == std::string::npos); // no validator noise
}

TEST_CASE("a dry run of a half-finished job plans what is left and changes nothing") {
    temp_dir dir;
    const std::string input = std::string(SLUICE_SOURCE_DIR) + "/docs/examples/sample-batch.jsonl";
    const std::string out = dir.file("o.jsonl"), plan = dir.file("plan.json");
    REQUIRE(run_shell(sluice_cmd("run " + input + " -o " + out + " --mock -q")) == 0);
    // Keep 15 of the 20 records, the last one torn, as a killed job leaves them.
    auto lines = read_lines(out);
    REQUIRE(lines.size() == 20);
    std::string kept;
    for (std::size_t i = 0; i < 15; ++i)
        kept += lines[i] + "\n";
    kept += lines[15].substr(0, 30);
    write_file(out, kept);
    CHECK(run_shell(sluice_cmd("run " + input + " -o " + out + " --dry-run --summary " + plan +
                               " >" + dir.file("stdout.txt"))) == 0);
    simdjson::dom::parser p;
    simdjson::dom::element doc = p.parse(read_file(plan));
    CHECK(std::int64_t(doc["requests"]) == 5);
    CHECK(std::int64_t(doc["skipped"]) == 15);
    CHECK(read_file(dir.file("stdout.txt")).find("15 more lines already have their record") !=
          std::string::npos);
    CHECK(read_file(out) == kept); // the torn tail is still there: nothing was changed
}

TEST_CASE("sluice run reports an unreadable input file") {
    temp_dir dir;
    const int status = run_shell(sluice_cmd("run " + dir.file("missing.jsonl") + " -o " +
                                            dir.file("o.jsonl") + " --mock -q 2>/dev/null"));
    CHECK(status == 4);
}

TEST_CASE("sluice run --insecure warns on stderr") {
    temp_dir dir;
    const std::string input = std::string(SLUICE_SOURCE_DIR) + "/docs/examples/sample-batch.jsonl";
    const std::string err = dir.file("stderr.txt");
    const int status = run_shell(sluice_cmd("run " + input + " -o " + dir.file("o.jsonl") +
                                            " --mock --insecure -q 2>" + err));
    CHECK(status == 0);
    CHECK(read_file(err).find("WARNING: --insecure") != std::string::npos);
}

TEST_CASE("SIGINT stops sluice run gracefully: every record written is whole") {
    temp_dir dir;
    std::string text;
    for (int i = 0; i < 3000; ++i)
        text += R"({"custom_id":"s)" + std::to_string(i) +
                R"(","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}})" + "\n";
    const std::string input = dir.file("in.jsonl"), output = dir.file("out.jsonl");
    write_file(input, text);
    // 100 ms per answer and 4 connections: about 3 s of work, interrupted once the first
    // records are written (waiting for them, not for a moment: a slow build may not be there
    // yet), and at most 60 s.
    const std::string cmd =
        std::string(SLUICE_EXE) + " run " + input + " -o " + output +
        " --mock --mock-latency-ms 100 --concurrency 4 2>" + dir.file("err.txt") +
        " & pid=$!; n=0; while [ ! -s " + output +
        " ] && [ $n -lt 6000 ]; do sleep 0.01; n=$((n+1)); done; kill -INT $pid; wait $pid; "
        "echo $? > " +
        dir.file("status");
    run_shell("sh -c '" + cmd + "'");
    CHECK(read_file(dir.file("status")) == "130\n");
    const auto lines = read_lines(output);
    CHECK(lines.size() > 0);
    CHECK(lines.size() < 3000);
    int done = 0, not_attempted = 0;
    for (const auto& line : lines) {
        const auto rec = parse_record(line); // throws on a torn line
        if (rec.status == 200)
            ++done;
        else if (rec.error_code == "not_attempted")
            ++not_attempted;
    }
    CHECK(done + not_attempted == static_cast<int>(lines.size()));
    CHECK(done >= 4);
    const std::string err = read_file(dir.file("err.txt"));
    CHECK(err.find("stopping") != std::string::npos);
    CHECK(err.find("succeeded") != std::string::npos); // the summary is printed
}

TEST_CASE("sluice run --summary writes the summary as JSON") {
    temp_dir dir;
    const std::string input = std::string(SLUICE_SOURCE_DIR) + "/docs/examples/sample-batch.jsonl";
    const std::string summary = dir.file("summary.json");
    CHECK(run_shell(sluice_cmd("run " + input + " -o " + dir.file("o.jsonl") +
                               " --mock -q --summary " + summary)) == 0);
    simdjson::dom::parser p;
    simdjson::dom::element doc = p.parse(read_file(summary));
    const auto lines = static_cast<std::int64_t>(read_lines(input).size());
    CHECK(std::int64_t(doc["lines"]) == lines);
    CHECK(std::int64_t(doc["succeeded"]) == lines);
    CHECK(std::int64_t(doc["failed"]) == 0);
    CHECK(std::int64_t(doc["prompt_tokens"]) > 0);
    CHECK(double(doc["latency_ms"]["p99"]) > 0);
    // Time to first byte is part of the latency, and reported beside it.
    CHECK(double(doc["ttfb_ms"]["p50"]) > 0);
    CHECK(double(doc["ttfb_ms"]["max"]) <= double(doc["latency_ms"]["max"]));
    // The embedded mock keeps its connections: none replayed, none distrusted.
    CHECK(std::int64_t(doc["connections"]["opened"]) >= 1);
    CHECK(std::int64_t(doc["connections"]["opened"]) <= 64);
    CHECK(std::int64_t(doc["connections"]["replayed"]) == 0);
    CHECK(std::int64_t(doc["connections"]["untrusted"]) == 0);
    CHECK(std::int64_t(doc["exit_status"]) == 0);
    CHECK(simdjson::dom::object(doc["failures"]).size() == 0);
    CHECK(std::int64_t(doc["statuses"]["200"]) == lines);
    CHECK(std::int64_t(doc["skipped"]) == 0);
}

TEST_CASE("sluice run streams the lines that ask for it and records the same answer") {
    temp_dir dir;
    const std::string input = dir.file("in.jsonl");
    std::string lines;
    for (int i = 0; i < 20; ++i) {
        const std::string stream = i % 2 ? R"(,"stream":true)" : "";
        lines +=
            R"({"custom_id":"r)" + std::to_string(i) +
            R"(","body":{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"same"}])" +
            stream + "}}\n";
    }
    write_file(input, lines);
    const std::string summary = dir.file("summary.json");
    REQUIRE(run_shell(sluice_cmd("run " + input + " -o " + dir.file("out.jsonl") +
                                 " --mock -q --summary " + summary)) == 0);
    simdjson::dom::parser p;
    std::set<std::string> contents;
    int streamed = 0;
    for (const auto& line : read_lines(dir.file("out.jsonl"))) {
        simdjson::dom::element rec = p.parse(line);
        INFO(line);
        REQUIRE(rec["error"].is_null());
        simdjson::dom::element body = rec["response"]["body"];
        CHECK(std::string_view(body["object"]) == "chat.completion");
        contents.insert(std::string(std::string_view(body["choices"].at(0)["message"]["content"])));
        CHECK(std::int64_t(body["usage"]["completion_tokens"]) == 8);
        simdjson::dom::element timings;
        if (rec["timings"].get(timings) == simdjson::SUCCESS) {
            ++streamed;
            CHECK(std::int64_t(timings["content_events"]) == 8);
            CHECK(double(timings["ttft_ms"]) >= double(timings["ttfb_ms"]));
        }
    }
    CHECK(streamed == 10);
    // Streamed or not, every line got the same answer text.
    CHECK(contents.size() == 1);
    simdjson::dom::element doc = p.parse(read_file(summary));
    CHECK(std::int64_t(doc["succeeded"]) == 20);
    CHECK(std::int64_t(doc["completion_tokens"]) == 160); // settled from the usage chunks too
    CHECK(double(doc["ttft_ms"]["p50"]) > 0);
    CHECK(double(doc["itl_ms"]["max"]) >= 0);
}

} // namespace cli_run_test
