// `sluice run` against `sluice mock` as a separate process over verified TLS, as a user runs
// them: every input line ends in exactly one output record, whatever the server does.
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <stdexcept>

#include <sys/wait.h>
#include <unistd.h>

using namespace sluice::test;

namespace {

// `sluice mock ARGS` in the background; its base URL read from its first line of output.
// Stopped with SIGTERM by its PID at scope end.
class mock_process {
public:
    mock_process(const temp_dir& dir, const std::string& args) {
        const std::string out = dir.file("mock.out");
        pid_ = ::fork();
        if (pid_ == 0) {
            const std::string cmd = std::string(SLUICE_EXE) + " mock --tls --write-cert " +
                                    dir.file("mock.pem") + " " + args + " > " + out + " 2>&1";
            ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 500 && base_url_.empty(); ++i) {
            const std::string text = read_file(out);
            const auto at = text.find("listening on ");
            const auto eol = text.find('\n', at);
            if (at != std::string::npos && eol != std::string::npos)
                base_url_ = text.substr(at + 13, eol - at - 13);
            else
                ::usleep(10'000);
        }
        if (base_url_.empty())
            throw std::runtime_error("sluice mock did not start: " + read_file(out));
        ca_file_ = dir.file("mock.pem");
    }
    ~mock_process() {
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    const std::string& base_url() const { return base_url_; }
    const std::string& ca_file() const { return ca_file_; }

private:
    pid_t pid_ = -1;
    std::string base_url_, ca_file_;
};

std::string make_input(const temp_dir& dir, int n) {
    std::string text;
    for (int i = 0; i < n; ++i)
        text += R"({"custom_id":"id-)" + std::to_string(i) +
                R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini",)"
                R"("messages":[{"role":"user","content":"question )" +
                std::to_string(i) + R"("}],"max_tokens":16}})" + "\n";
    const std::string path = dir.file("in.jsonl");
    write_file(path, text);
    return path;
}

struct tally {
    std::map<std::string, int> per_id;
    std::map<std::string, int> by_code; // "ok" or the error code
};

tally read_output(const std::string& path) {
    tally t;
    simdjson::dom::parser p;
    for (const auto& line : read_lines(path)) {
        auto doc = p.parse(line); // every line is one complete JSON record
        ++t.per_id[std::string(std::string_view(doc["custom_id"]))];
        if (doc["error"].is_null())
            ++t.by_code["ok"];
        else
            ++t.by_code[std::string(std::string_view(doc["error"]["code"]))];
    }
    return t;
}

int run_sluice(const mock_process& mock,
               const std::string& input,
               const std::string& output,
               const std::string& extra = "") {
    return run_shell(std::string(SLUICE_EXE) + " run " + input + " -o " + output + " --base-url " +
                     mock.base_url() + " --ca-file " + mock.ca_file() + " " + extra + " -q");
}

} // namespace

TEST_CASE("10000 lines through sluice mock over verified TLS each end in one success") {
    temp_dir dir;
    mock_process mock(dir, "");
    const int n = 10'000;
    const std::string input = make_input(dir, n), output = dir.file("out.jsonl");
    CHECK(run_sluice(mock, input, output) == 0);
    const auto t = read_output(output);
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : t.per_id)
        REQUIRE(count == 1);
    CHECK(t.by_code.at("ok") == n);
}

TEST_CASE("with 5% of each fault kind every line ends in exactly one record") {
    temp_dir dir;
    mock_process mock(dir,
                      "--fault-500 0.05 --fault-503 0.05 --fault-reset 0.05 "
                      "--fault-truncated 0.05 --fault-malformed 0.05 --fault-slow 0.05 "
                      "--slow-delay-ms 20 --seed 3");
    const int n = 4'000;
    const std::string input = make_input(dir, n), output = dir.file("out.jsonl");
    // A 30% fault rate is beyond the default retry budget, on purpose: allow one retry a request.
    const int status = run_sluice(mock, input, output, "--retry-budget 1");
    const auto t = read_output(output);
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : t.per_id)
        REQUIRE(count == 1);
    // Five attempts against a 25% fault rate: failures are rare, and each is named.
    CHECK(t.by_code.at("ok") >= n * 99 / 100);
    CHECK(status == (t.by_code.at("ok") == n ? 0 : 1));
}

TEST_CASE("insufficient_quota stops the run: the rest are recorded as not attempted") {
    temp_dir dir;
    mock_process mock(dir, "--fault-quota 0.05 --seed 5");
    const int n = 2'000;
    const std::string input = make_input(dir, n), output = dir.file("out.jsonl");
    const int status = run_sluice(mock, input, output, "--concurrency 4");
    CHECK(status == 3);
    const auto t = read_output(output);
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : t.per_id)
        REQUIRE(count == 1);
    CHECK(t.by_code.count("quota_exhausted") == 1);
    CHECK(t.by_code.at("not_attempted") > n / 2);
}

TEST_CASE("a server closing every 7th connection loses nothing") {
    temp_dir dir;
    mock_process mock(dir, "--close-every 7");
    const int n = 3'000;
    const std::string input = make_input(dir, n), output = dir.file("out.jsonl");
    CHECK(run_sluice(mock, input, output, "--concurrency 8") == 0);
    const auto t = read_output(output);
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    CHECK(t.by_code.at("ok") == n);
}

TEST_CASE("insufficient_quota after K requests stops the job with exactly K answers") {
    temp_dir dir;
    mock_process mock(dir, "--quota-after 300");
    const int n = 2'000;
    const std::string input = make_input(dir, n), output = dir.file("out.jsonl");
    CHECK(run_sluice(mock, input, output, "--concurrency 8") == 3);
    const auto t = read_output(output);
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : t.per_id)
        REQUIRE(count == 1);
    CHECK(t.by_code.at("ok") == 300);
    // The requests in flight when the first quota answer came are quota failures; every other
    // line is recorded as not attempted, for a resumed run to send.
    CHECK(t.by_code.at("quota_exhausted") <= 8);
    CHECK(t.by_code.at("ok") + t.by_code.at("quota_exhausted") + t.by_code.at("not_attempted") ==
          n);
}
