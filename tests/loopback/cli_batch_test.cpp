// `sluice run` as a batch job a user kills, interrupts, resumes and feeds bad lines: every
// input line ends with exactly one valid record in the output, however the run was stopped.
#include "support/mock_process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace cli_batch_test {

using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

std::uintmax_t size_of(const std::string& path) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path, ec);
    return ec ? 0 : n;
}

// Waits until the file at `path` has grown by `bytes` past `from` (the job wrote records),
// for at most 60 s: a signal sent at a wall-clock moment could land before a slow build (the
// sanitizer one, a loaded machine) has written anything.
bool wait_for_growth(const std::string& path, std::uintmax_t from, std::uintmax_t bytes) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (size_of(path) < from + bytes) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

// A command run through the shell in the background, stopped by its PID.
class child_process {
public:
    explicit child_process(const std::string& command) {
        pid_ = ::fork();
        if (pid_ == 0) {
            ::execl(
                "/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~child_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            wait();
        }
    }
    void signal(int sig) { ::kill(pid_, sig); }

    /// Waits for the end; the exit status, or 128 + the signal that ended it.
    int wait() {
        int status = 0;
        struct rusage usage {};
        ::wait4(pid_, &status, 0, &usage);
        pid_ = -1;
        peak_rss_kib_ = usage.ru_maxrss;
        if (WIFSIGNALED(status))
            return 128 + WTERMSIG(status);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    long peak_rss_kib() const { return peak_rss_kib_; }

private:
    pid_t pid_ = -1;
    long peak_rss_kib_ = 0;
};

std::string run_command(const mock_process& mock,
                        const std::string& input,
                        const std::string& output,
                        const std::string& extra) {
    return std::string(SLUICE_EXE) + " run " + input + " -o " + output + " --base-url " +
           mock.base_url() + " --ca-file " + mock.ca_file() + " " + extra;
}

// What a journal holds after a crash: complete lines (each must be a valid record with a
// custom_id, none repeated) and at most one torn line at the end.
struct journal_state {
    std::size_t complete = 0;
    bool torn = false;
};

journal_state check_journal(const std::string& path) {
    journal_state s;
    const std::string text = read_file(path);
    simdjson::dom::parser parser;
    std::set<std::string> ids;
    std::size_t begin = 0;
    for (std::size_t nl; (nl = text.find('\n', begin)) != std::string::npos; begin = nl + 1) {
        const std::string line = text.substr(begin, nl - begin);
        simdjson::dom::element doc;
        REQUIRE(parser.parse(line).get(doc) == simdjson::SUCCESS);
        std::string_view id;
        REQUIRE(doc["custom_id"].get(id) == simdjson::SUCCESS);
        // A repeat is allowed only for a record a resume redoes (not_attempted, stopped).
        std::string_view code;
        if (doc["error"]["code"].get(code) != simdjson::SUCCESS ||
            (code != "not_attempted" && code != "stopped"))
            REQUIRE(ids.insert(std::string(id)).second);
        ++s.complete;
    }
    s.torn = begin != text.size();
    return s;
}

std::vector<std::string> ids_in_order(const std::string& path) {
    std::vector<std::string> ids;
    simdjson::dom::parser parser;
    for (const auto& line : read_lines(path))
        ids.emplace_back(std::string_view(parser.parse(line)["custom_id"]));
    return ids;
}

} // namespace

TEST_CASE("killed with SIGKILL at 20 moments and resumed, every line ends in exactly one record") {
    temp_dir dir;
    // Latency and few connections make the job last several seconds; faults make it retry.
    mock_process mock(dir,
                      "--latency-ms 4 --fault-500 0.03 --fault-503 0.02 --fault-reset 0.03 "
                      "--fault-truncated 0.02 --seed 11");
    const int n = 20'000;
    const std::string input = make_input(dir, n), output = dir.file("out.jsonl");
    const std::string cmd =
        run_command(mock, input, output, "--concurrency 16 --retry-budget 1 --max-attempts 8 -q");

    // Each kill comes after the run has written some records (about 1 to 150 of them), then a
    // random few ms more, so that it lands anywhere: mid-batch, mid-write, mid-retry.
    std::mt19937 rng(2026);
    std::uniform_int_distribution<std::uintmax_t> grow_bytes(1, 40'000);
    std::uniform_int_distribution<int> extra_ms(0, 30);
    int killed = 0;
    std::size_t first_size = 0;
    journal_state state;
    for (int k = 0; k < 20; ++k) {
        const std::uintmax_t before = size_of(output);
        child_process run(cmd);
        REQUIRE(wait_for_growth(output, before, grow_bytes(rng)));
        std::this_thread::sleep_for(std::chrono::milliseconds(extra_ms(rng)));
        run.signal(SIGKILL);
        killed += run.wait() == 128 + SIGKILL;
        state = check_journal(output);
        if (k == 0)
            first_size = state.complete;
    }
    CHECK(killed == 20);                // every kill hit a running job
    CHECK(state.complete > first_size); // and each resumed run made progress
    CHECK(state.complete < static_cast<std::size_t>(n));

    const int status = run_shell(cmd);
    CHECK((status == 0 || status == 1));
    const journal_state end = check_journal(output);
    CHECK_FALSE(end.torn);
    const tally t = read_output(output);
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : t.per_id)
        REQUIRE(count == 1);
    CHECK(end.complete == static_cast<std::size_t>(n));
    CHECK(t.by_code.at("ok") >= n * 99 / 100);
}

TEST_CASE("SIGINT stops gracefully with a summary, and the resumed run completes") {
    temp_dir dir;
    mock_process mock(dir, "--latency-ms 20");
    const int n = 3'000;
    const std::string input = make_input(dir, n), output = dir.file("out.jsonl");
    const std::string err = dir.file("err.txt");
    {
        child_process run(run_command(mock, input, output, "--concurrency 8") + " 2> " + err);
        REQUIRE(wait_for_growth(output, 0, 1));
        run.signal(SIGINT);
        CHECK(run.wait() == 130);
    }
    const std::string said = read_file(err);
    CHECK_THAT(said, Catch::Contains("stopping; waiting for requests in flight"));
    CHECK_THAT(said, Catch::Contains("lines,")); // the summary
    const journal_state stopped = check_journal(output);
    CHECK_FALSE(stopped.torn);
    CHECK(stopped.complete > 0);
    CHECK(stopped.complete < static_cast<std::size_t>(n));

    CHECK(run_shell(run_command(mock, input, output, "--concurrency 8 -q")) == 0);
    const tally t = read_output(output);
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : t.per_id)
        REQUIRE(count == 1);
    CHECK(t.by_code.at("ok") == n);
}

TEST_CASE("each kind of bad line gets one record naming its line, and --strict sends nothing") {
    temp_dir dir;
    mock_process mock(dir, "");
    const std::string body =
        R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":8})";
    const std::string lines[] = {
        R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":)" + body + "}",
        "this is not json",
        R"({"custom_id":"b","method":"POST","url":"/v1/chat/completions"})",
        R"({"custom_id":"c","method":"POST","url":"/v1/embeddings","body":)" + body + "}",
        R"({"custom_id":"d","method":"GET","url":"/v1/chat/completions","body":)" + body + "}",
        R"({"custom_id":"dup","body":)" + body + "}",
        R"({"custom_id":"dup","body":)" + body + "}",
        R"({"prompt":5})",
        R"({"prompt":"hello","custom_id":"p1"})",
        "",
        body,
        // A good line after a bad one with its id: sent, not a duplicate (the first pass reads
        // ids without checking lines; the bad line hands its place on).
        R"({"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":)" + body + "}",
        R"({"custom_id":"e","body":)" + body,
        R"({"custom_id":"e","body":)" + body + "}",
    };
    std::string text;
    for (const auto& l : lines)
        text += l + "\n";
    const std::string input = dir.file("mixed.jsonl");
    write_file(input, text);
    const std::string output = dir.file("out.jsonl"), summary = dir.file("summary.json");

    const std::string extra = "--model gpt-4o-mini -q --summary " + summary;
    CHECK(run_shell(run_command(mock, input, output, extra)) == 1);
    simdjson::dom::parser parser;
    std::map<std::int64_t, std::string> bad; // line -> error code
    std::set<std::string> answered;          // ids with a success record
    std::size_t records = 0;
    for (const auto& line : read_lines(output)) {
        ++records;
        simdjson::dom::element doc = parser.parse(line);
        std::int64_t at = 0;
        if (doc["line"].get(at) == simdjson::SUCCESS) {
            bad[at] = std::string(std::string_view(doc["error"]["code"]));
            CHECK_THAT(std::string(std::string_view(doc["error"]["message"])),
                       Catch::StartsWith("line " + std::to_string(at) + ": "));
        } else {
            CHECK(doc["error"].is_null());
            answered.insert(std::string(std::string_view(doc["custom_id"])));
        }
    }
    CHECK(records == 13); // 14 lines, one blank
    const std::map<std::int64_t, std::string> expected = {{2, "invalid_input"},
                                                          {3, "invalid_input"},
                                                          {4, "invalid_input"},
                                                          {5, "invalid_input"},
                                                          {7, "duplicate_custom_id"},
                                                          {8, "invalid_input"},
                                                          {13, "invalid_input"}};
    CHECK(bad == expected);
    CHECK(answered == std::set<std::string>{"a", "dup", "p1", "line-11", "b", "e"});
    CHECK_THAT(read_file(summary), Catch::Contains("\"bad_lines\":7"));

    // A second run resumes: every line has its record, nothing is written twice.
    CHECK(run_shell(run_command(mock, input, output, extra)) == 1);
    CHECK(read_lines(output).size() == 13);

    // --strict validates the whole file first and refuses it: no request, no record.
    const std::string strict_out = dir.file("strict.jsonl");
    CHECK(run_shell(run_command(mock, input, strict_out, "--model gpt-4o-mini --strict -q")) == 5);
    CHECK(read_lines(strict_out).empty());
}

TEST_CASE("with ordered output records come in input order while completion order differs") {
    temp_dir dir;
    mock_process mock(dir, "--latency-ms 3 --exponential-latency --seed 4");
    const int n = 2'000;
    const std::string input = make_input(dir, n);
    std::vector<std::string> expected;
    for (int i = 0; i < n; ++i)
        expected.push_back("id-" + std::to_string(i));

    const std::string ordered = dir.file("ordered.jsonl"), unordered = dir.file("plain.jsonl");
    CHECK(run_shell(run_command(mock, input, ordered, "--ordered --reorder-window 300 -q")) == 0);
    CHECK(ids_in_order(ordered) == expected);
    // Without --ordered the same load finishes out of order: the check above can fail.
    CHECK(run_shell(run_command(mock, input, unordered, "-q")) == 0);
    const auto plain = ids_in_order(unordered);
    CHECK(plain.size() == expected.size());
    CHECK(plain != expected);
}

TEST_CASE("stdin in and stdout out, and a resumed run from stdin") {
    temp_dir dir;
    mock_process mock(dir, "");
    const int n = 500;
    const std::string input = make_input(dir, n);
    const std::string out = dir.file("stdout.jsonl");
    CHECK(run_shell(run_command(mock, "-", "-", "-q") + " < " + input + " > " + out) == 0);
    tally t = read_output(out);
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    CHECK(t.by_code.at("ok") == n);

    const std::string journal = dir.file("journal.jsonl");
    CHECK(run_shell(run_command(mock, "-", journal, "-q") + " < " + input) == 0);
    CHECK(run_shell(run_command(mock, "-", journal, "-q") + " < " + input) == 0);
    t = read_output(journal);
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : t.per_id)
        REQUIRE(count == 1);
}

TEST_CASE("progress is drawn on a terminal and silenced by --quiet") {
    temp_dir dir;
    mock_process mock(dir, "--latency-ms 2");
    const std::string input = make_input(dir, 2'000);
    // script(1) runs the command on a pseudo-terminal and copies what it printed to stdout.
    auto on_tty = [&](const std::string& output, const std::string& extra) {
        const std::string seen = dir.file(output + ".tty");
        const std::string cmd =
            run_command(mock, input, dir.file(output), "--concurrency 8 " + extra);
        CHECK(run_shell("script -qec '" + cmd + "' /dev/null > " + seen) == 0);
        return read_file(seen);
    };
    const std::string shown = on_tty("a.jsonl", "");
    CHECK_THAT(shown, Catch::Contains("\r"));
    CHECK_THAT(shown, Catch::Contains("\x1b[K"));
    CHECK_THAT(shown, Catch::Contains("2,000/2,000 (100.0%)"));
    CHECK_THAT(shown, Catch::Contains("req/s"));
    const std::string quiet = on_tty("b.jsonl", "--quiet");
    CHECK_THAT(quiet, !Catch::Contains("req/s"));
    CHECK_THAT(quiet, !Catch::Contains("\r\x1b"));
}

#ifndef SLUICE_SANITIZED
// Sanitizers keep freed memory in quarantine: peak RSS means nothing there.
// Ten times the lines in the same memory: what grows with the input is only the id index's two
// bits a line. (bench/batch/memory.sh measures 100,000 against 1,000,000 lines.)
TEST_CASE("ten times the lines run in the same memory: bounded by the window, not the input") {
    temp_dir dir;
    auto write_input = [&](const std::string& name, int n) {
        std::ofstream out(dir.file(name), std::ios::binary);
        for (int i = 0; i < n; ++i)
            out << R"({"custom_id":"r)" << i
                << R"(","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"q )"
                << i << R"("}],"max_tokens":8}})" << '\n';
        return dir.file(name);
    };
    auto peak_rss = [&](const std::string& input, const std::string& output) {
        child_process run(std::string(SLUICE_EXE) + " run " + input + " -o " + output +
                          " --mock -q");
        REQUIRE(run.wait() == 0);
        return run.peak_rss_kib();
    };
    // 20,000 lines are many times the window (at least 256 requests), so the small run reaches
    // the memory the window bounds; the large one has 180,000 lines more to show any growth.
    const long small = peak_rss(write_input("20k.jsonl", 20'000), dir.file("20k.out"));
    const long large = peak_rss(write_input("200k.jsonl", 200'000), dir.file("200k.out"));
    CHECK(read_lines(dir.file("200k.out")).size() == 200'000);
    WARN("peak RSS: 20k lines " << small << " KiB, 200k lines " << large << " KiB");
    CHECK(static_cast<double>(large) < 1.2 * static_cast<double>(small));
}
#endif

} // namespace cli_batch_test
