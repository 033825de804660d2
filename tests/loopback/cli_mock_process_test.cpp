// `sluice run` against `sluice mock` as a separate process over verified TLS, as a user runs
// them: every input line ends in exactly one output record, whatever the server does.
#include "support/mock_process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <stdexcept>

#include <sys/wait.h>
#include <unistd.h>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace cli_mock_process_test {

using namespace sluice::test;

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
    // Five attempts against a 25% fault rate: failures are rare, and each is named. A garbled
    // answer is retried once only (about 0.3 x 0.05 of the lines end malformed_response).
    CHECK(t.by_code.at("ok") >= n * 97 / 100);
    for (const auto& [code, count] : t.by_code) {
        INFO(code << ": " << count);
        CHECK((code == "ok" || code == "malformed_response" || code == "server_error" ||
               code == "connection_reset" || code == "connection_closed" || code == "timeout"));
    }
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

} // namespace cli_mock_process_test
