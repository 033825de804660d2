// Secrets and input hygiene, as a user meets them through the `sluice` binary: every command
// runs with a known API key and nothing it writes (stdout, stderr, outputs, error files,
// summaries, plans, bench reports, the mock's log) holds the key; a key, URL, organization or
// model holding a line end is refused with exit status 2 before any connection; and the files
// a run writes are owner-only and survive an interrupted, resumed run whole.
#include "support/file_mode.hpp"
#include "support/hostile_server.hpp"
#include "support/mock_process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace secret_leak_test {

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

constexpr const char* api_key = "sk-proj-LEAKPROBE-5e8c1a9f3d7b2046";
constexpr int lines_in_batch = 10;

// The key in the environment of the test and of everything it starts (sh, sluice, the mock),
// removed again at scope end.
struct key_in_environment {
    key_in_environment() { ::setenv("OPENAI_API_KEY", api_key, 1); }
    ~key_in_environment() { ::unsetenv("OPENAI_API_KEY"); }
    key_in_environment(const key_in_environment&) = delete;
    key_in_environment& operator=(const key_in_environment&) = delete;
};

// A batch whose lines the hostile server can tell apart ("echo req-N").
std::string write_input(const temp_dir& dir, const std::string& name = "in.jsonl") {
    std::string text;
    for (int n = 0; n < lines_in_batch; ++n)
        text += R"({"custom_id":")" + numbered("req-", static_cast<std::size_t>(n)) +
                R"(","body":{"model":"m","messages":[{"role":"user","content":"echo )" +
                numbered("req-", static_cast<std::size_t>(n)) + R"("}]}})" + "\n";
    const std::string path = dir.file(name);
    write_file(path, text);
    return path;
}

// `timeout 60 sluice ARGS`, stdout and stderr into `out` as NAME.stdout / NAME.stderr; the
// exit status.
int run_logged(const temp_dir& out, const std::string& name, const std::string& args) {
    return run_shell("timeout 60 " + std::string(SLUICE_EXE) + " " + args + " >" +
                     out.file(name + ".stdout") + " 2>" + out.file(name + ".stderr"));
}

std::string stderr_of(const temp_dir& out, const std::string& name) {
    return read_file(out.file(name + ".stderr"));
}

// Every regular file under `dir` that holds the key, in any form a leak would take; also
// checks that something was scanned at all.
void check_no_key_under(const temp_dir& dir) {
    const std::string key = api_key;
    const std::vector<std::string> needles{key, "Bearer " + key, key.substr(8)};
    std::size_t files = 0, bytes = 0;
    for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
        if (!entry.is_regular_file())
            continue;
        const std::string text = read_file(entry.path().string());
        ++files;
        bytes += text.size();
        for (const std::string& needle : needles) {
            INFO("file " << entry.path().filename().string() << " holds " << needle);
            CHECK(text.find(needle) == std::string::npos);
        }
    }
    INFO("files scanned: " << files << ", bytes: " << bytes);
    CHECK(files > 0);
    CHECK(bytes > 0);
}

// The success records of an output file, as lines.
std::set<std::string> success_lines(const std::string& path) {
    std::set<std::string> out;
    simdjson::dom::parser p;
    for (const std::string& line : read_lines(path)) {
        simdjson::dom::element doc;
        if (p.parse(line).get(doc) == simdjson::SUCCESS && doc["error"].is_null())
            out.insert(line);
    }
    return out;
}

} // namespace

TEST_CASE("sluice run writes the key nowhere: success, failures, 400 and 401 echoing it") {
    const key_in_environment env;
    temp_dir in, out;
    const std::string input = write_input(in);
    auto run_flags = [&](const std::string& name) {
        return "run " + input + " -o " + out.file(name + ".jsonl") + " --errors " +
               out.file(name + ".errors.jsonl") + " --summary " + out.file(name + ".summary.json");
    };
    {
        hostile_server server(behavior::normal);
        CHECK(run_logged(out, "ok", run_flags("ok") + " --base-url " + server.base_url()) == 0);
        CHECK(server.total() == lines_in_batch);
    }
    {
        hostile_server server(behavior::echo_key_400);
        CHECK(run_logged(
                  out, "echo400", run_flags("echo400") + " --base-url " + server.base_url()) == 1);
        CHECK(read_file(out.file("echo400.jsonl")).find("[REDACTED]") != std::string::npos);
    }
    {
        hostile_server server(behavior::echo_key_200);
        CHECK(run_logged(
                  out, "echo200", run_flags("echo200") + " --base-url " + server.base_url()) == 0);
        CHECK(read_file(out.file("echo200.jsonl")).find("[REDACTED]") != std::string::npos);
    }
    {
        hostile_server server(behavior::unauthorized);
        CHECK(run_logged(out, "401", run_flags("401") + " --base-url " + server.base_url()) == 6);
    }
    {
        // Failures of every kind the mock makes, retried and not, over TLS; the mock's own
        // log is in `out` too, and it has the key in its environment.
        mock_process mock(out,
                          "--fault-500 0.3 --fault-reset 0.1 --fault-malformed 0.1 "
                          "--fault-truncated 0.1 --seed 3");
        const int status = run_logged(out,
                                      "faults",
                                      run_flags("faults") + " --base-url " + mock.base_url() +
                                          " --ca-file " + mock.ca_file() + " --max-attempts 2");
        CHECK((status == 0 || status == 1));
    }
    // The plan of a run, on stdout and in --summary.
    CHECK(run_logged(out,
                     "dry",
                     "run " + input + " -o " + out.file("ok.jsonl") + " --dry-run --summary " +
                         out.file("plan.json")) == 0);
    check_no_key_under(out);
}

TEST_CASE("an interrupted and resumed run writes the key nowhere") {
    const key_in_environment env;
    temp_dir in, out;
    const std::string input = write_input(in);
    const std::string flags = " -o " + out.file("out.jsonl") + " --errors " +
                              out.file("errors.jsonl") + " --summary " + out.file("summary.json");
    {
        // A 429 whose hint is never waited out; SIGTERM stops the run with every line
        // recorded as resumable.
        hostile_server server(behavior::huge_retry_after);
        run_shell("timeout 60 " + std::string(SLUICE_EXE) + " run " + input + flags +
                  " --base-url " + server.base_url() + " >" + out.file("first.stdout") + " 2>" +
                  out.file("first.stderr") + " & pid=$!; sleep 1.5; kill -TERM $pid; wait $pid");
        CHECK(server.total() >= 1);
    }
    {
        hostile_server server(behavior::echo_key_200);
        CHECK(run_logged(out,
                         "resumed",
                         "run " + input + flags + " --base-url " + server.base_url()) == 0);
    }
    CHECK(success_lines(out.file("out.jsonl")).size() == lines_in_batch);
    check_no_key_under(out);
}

TEST_CASE("runs from a config file write the key nowhere, and a key inside one is refused") {
    temp_dir in, out;
    const std::string input = write_input(in);
    {
        // The config names the variable holding the key; organization and project go out as
        // headers beside it.
        hostile_server server(behavior::echo_key_400);
        write_file(in.file("c.toml"),
                   "base_url = \"" + server.base_url() +
                       "\"\napi_key_env = \"LEAK_PROBE_KEY\"\norganization = \"org-probe\"\n"
                       "project = \"proj-probe\"\n[retry]\nmax_attempts = 2\n");
        const int status =
            run_shell(std::string("LEAK_PROBE_KEY=") + api_key + " timeout 60 " + SLUICE_EXE +
                      " run " + input + " -o " + out.file("c.jsonl") + " --config " +
                      in.file("c.toml") + " --summary " + out.file("c.summary.json") + " >" +
                      out.file("c.stdout") + " 2>" + out.file("c.stderr"));
        CHECK(status == 1);
        CHECK(server.total() == lines_in_batch);
    }
    {
        // A key written into the file itself is no setting sluice knows: refused, unsent,
        // and not repeated in the error.
        hostile_server server(behavior::normal);
        write_file(in.file("inline.toml"),
                   "base_url = \"" + server.base_url() + "\"\napi_key = \"" + api_key + "\"\n");
        CHECK(run_logged(out,
                         "inline",
                         "run " + input + " -o " + out.file("inline.jsonl") + " --config " +
                             in.file("inline.toml")) == 2);
        CHECK(stderr_of(out, "inline").find("api_key") != std::string::npos);
        // And unquoted, so that the file does not even parse.
        write_file(in.file("bare.toml"), std::string("api_key = ") + api_key + "\n");
        CHECK(run_logged(out,
                         "bare",
                         "run " + input + " -o " + out.file("bare.jsonl") + " --config " +
                             in.file("bare.toml")) == 2);
        CHECK(server.connections() == 0);
    }
    check_no_key_under(out);
}

TEST_CASE("sluice bench reports write the key nowhere") {
    const key_in_environment env;
    temp_dir out;
    auto bench_flags = [&](const std::string& name) {
        return "bench --model m --requests 20 -c 4 --input-tokens 8 --output-tokens 4 "
               "--no-stream -q --json " +
               out.file(name + ".json") + " --html " + out.file(name + ".html");
    };
    {
        hostile_server server(behavior::echo_key_200);
        CHECK(run_logged(out, "ok", bench_flags("ok") + " --base-url " + server.base_url()) == 0);
        CHECK(server.total() >= 20);
    }
    {
        hostile_server server(behavior::echo_key_400);
        run_logged(out, "echo400", bench_flags("echo400") + " --base-url " + server.base_url());
        CHECK(server.total() >= 1);
    }
    {
        hostile_server server(behavior::unauthorized);
        CHECK(run_logged(out, "401", bench_flags("401") + " --base-url " + server.base_url()) == 6);
    }
    {
        hostile_server server(behavior::normal);
        CHECK(run_logged(out,
                         "sweep",
                         "bench --model m --requests 8 --sweep concurrency=1,2 --input-tokens 8 "
                         "--output-tokens 4 --no-stream -q --json " +
                             out.file("sweep.json") + " --html " + out.file("sweep.html") +
                             " --base-url " + server.base_url()) == 0);
    }
    CHECK(run_logged(out, "mock", bench_flags("mock") + " --mock") == 0);
    check_no_key_under(out);
}

TEST_CASE("a key with a line end is refused with exit 2 before any connection") {
    temp_dir in, out;
    const std::string input = write_input(in);
    hostile_server server(behavior::normal);
    // printf makes the line ends: sh has no $'...'.
    const std::string bad_key = "\"$(printf '" + std::string(api_key) + "\\r\\nX-Injected: 1')\"";
    const int run_status = run_shell(
        "OPENAI_API_KEY=" + bad_key + " timeout 60 " + SLUICE_EXE + " run " + input + " -o " +
        out.file("o.jsonl") + " --base-url " + server.base_url() + " 2>" + out.file("run.stderr"));
    CHECK(run_status == 2);
    const std::string run_err = read_file(out.file("run.stderr"));
    INFO(run_err);
    CHECK(run_err.find("OPENAI_API_KEY") != std::string::npos);
    CHECK_FALSE(fs::exists(out.file("o.jsonl")));
    const int bench_status = run_shell("OPENAI_API_KEY=" + bad_key + " timeout 60 " + SLUICE_EXE +
                                       " bench --model m -n 5 " + "--base-url " +
                                       server.base_url() + " 2>" + out.file("bench.stderr"));
    CHECK(bench_status == 2);
    CHECK(read_file(out.file("bench.stderr")).find("OPENAI_API_KEY") != std::string::npos);
    // A LF alone, as a file of two lines read whole gives (`$(...)` drops only trailing ones).
    CHECK(run_shell("OPENAI_API_KEY=\"$(printf 'sk-probe-0123456789\\nsecond-line')\" "
                    "timeout 60 " +
                    std::string(SLUICE_EXE) + " run " + input + " -o " + out.file("o.jsonl") +
                    " --base-url " + server.base_url() + " 2>/dev/null") == 2);
    CHECK(server.connections() == 0);
    check_no_key_under(out);
}

TEST_CASE("an organization, a URL or a model with a line end is refused with exit 2") {
    temp_dir in, out;
    const std::string input = write_input(in);
    hostile_server server(behavior::normal);
    const std::string url = server.base_url();
    struct refusal {
        std::string prefix, flags, names;
    };
    write_file(in.file("org.toml"), "organization = \"org\\r\\nX-Injected: 1\"\n");
    const std::vector<refusal> cases{
        {"OPENAI_ORG_ID=\"$(printf 'org\\r\\nX: 1')\"", "--base-url " + url, "OPENAI_ORG_ID"},
        {"OPENAI_PROJECT_ID=\"$(printf 'p\\nX: 1')\"", "--base-url " + url, "OPENAI_PROJECT_ID"},
        {"", "--base-url \"$(printf '" + url + "\\r\\nX: 1')\"", "--base-url"},
        {"OPENAI_BASE_URL=\"$(printf '" + url + "\\nX: 1')\"", "", "OPENAI_BASE_URL"},
        {"", "--base-url " + url + " --model \"$(printf 'm\\nX')\"", "--model"},
        {"", "--base-url " + url + " --config " + in.file("org.toml"), "organization"},
    };
    for (const refusal& c : cases) {
        INFO(c.prefix << " run ... " << c.flags);
        const int status =
            run_shell(c.prefix + " timeout 60 " + SLUICE_EXE + " run " + input + " -o " +
                      out.file("o.jsonl") + " " + c.flags + " 2>" + out.file("err.txt"));
        CHECK(status == 2);
        const std::string err = read_file(out.file("err.txt"));
        INFO(err);
        CHECK(err.find(c.names) != std::string::npos);
        CHECK(err.find("X: 1") == std::string::npos);
    }
    CHECK(server.connections() == 0);
}

TEST_CASE("output, error and summary files are 0600, and a resumed run keeps them whole") {
    const key_in_environment env;
    temp_dir dir;
    std::string text;
    for (int i = 0; i < 400; ++i)
        text += R"({"custom_id":"s)" + std::to_string(i) +
                R"(","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}})" + "\n";
    const std::string input = dir.file("in.jsonl"), output = dir.file("out.jsonl");
    const std::string errors = dir.file("errors.jsonl"), summary = dir.file("summary.json");
    write_file(input, text);
    const std::string files = " -o " + output + " --errors " + errors + " --summary " + summary;
    // 50 ms per answer on 2 connections: about 10 s of work, interrupted once the first
    // records are written (waited for, at most 60 s), as tests/loopback/cli_run_test.cpp does.
    run_shell("umask 022; " + std::string(SLUICE_EXE) + " run " + input + files +
              " --mock --mock-latency-ms 50 --concurrency 2 -q 2>" + dir.file("err1.txt") +
              " & pid=$!; n=0; while [ ! -s " + output +
              " ] && [ $n -lt 6000 ]; do sleep 0.01; n=$((n+1)); done; kill -INT $pid; "
              "wait $pid; echo $? > " +
              dir.file("status"));
    CHECK(read_file(dir.file("status")) == "130\n");
    const std::set<std::string> first = success_lines(output);
    CHECK(!first.empty());
    CHECK(first.size() < 400);
    for (const std::string& f : {output, errors, summary}) {
        INFO(f);
        CHECK(file_mode(f) == 0600);
    }
    // The owner loosens the error file's mode between the runs: the resumed run keeps it.
    ::chmod(errors.c_str(), 0640);
    CHECK(run_shell("umask 022; " + std::string(SLUICE_EXE) + " run " + input + files +
                    " --mock -q 2>" + dir.file("err2.txt")) == 0);
    const std::set<std::string> second = success_lines(output);
    CHECK(second.size() == 400);
    for (const std::string& line : first) {
        INFO("a record of the first run is gone: " << line);
        CHECK(second.count(line) == 1);
    }
    CHECK(file_mode(output) == 0600);
    CHECK(file_mode(errors) == 0640);
    CHECK(file_mode(summary) == 0600);
    check_no_key_under(dir);
}

TEST_CASE("a narrower umask makes narrower files, bench reports and plans included") {
    const key_in_environment env;
    temp_dir dir;
    const std::string input = write_input(dir);
    CHECK(run_shell("umask 0277; " + std::string(SLUICE_EXE) + " run " + input + " -o " +
                    dir.file("out.jsonl") + " --errors " + dir.file("errors.jsonl") +
                    " --summary " + dir.file("summary.json") + " --mock -q") == 0);
    CHECK(run_shell("umask 0277; " + std::string(SLUICE_EXE) + " run " + input + " -o " +
                    dir.file("new.jsonl") + " --dry-run --summary " + dir.file("plan.json") +
                    " >/dev/null") == 0);
    CHECK(run_shell("umask 0277; " + std::string(SLUICE_EXE) +
                    " bench --mock -n 10 --no-stream -q --json " + dir.file("r.json") + " --html " +
                    dir.file("r.html") + " >/dev/null") == 0);
    for (const char* name :
         {"out.jsonl", "errors.jsonl", "summary.json", "plan.json", "r.json", "r.html"}) {
        INFO(name);
        CHECK(file_mode(dir.file(name)) == 0400);
    }
    CHECK(run_shell("umask 022; " + std::string(SLUICE_EXE) +
                    " bench --mock -n 10 --no-stream -q --json " + dir.file("r2.json") +
                    " --html " + dir.file("r2.html") + " >/dev/null") == 0);
    CHECK(file_mode(dir.file("r2.json")) == 0600);
    CHECK(file_mode(dir.file("r2.html")) == 0600);
}

} // namespace secret_leak_test
