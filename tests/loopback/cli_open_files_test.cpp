// `sluice run` raises its own open-file limit for the connections it is asked for, and says
// how to raise the hard limit when it cannot.
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <string>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace cli_open_files_test {

using namespace sluice::test;

namespace {

// 2,000 lines, each answered after 50 ms, so that 400 connections are open at once.
std::string write_batch(temp_dir& dir) {
    const std::string input = dir.file("in.jsonl");
    std::string text;
    for (int i = 0; i < 2000; ++i)
        text +=
            R"({"custom_id":"r)" + std::to_string(i) +
            R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}})"
            "\n";
    write_file(input, text);
    return input;
}

std::string run_under(const std::string& ulimit_flags,
                      const std::string& input,
                      const std::string& output,
                      const std::string& err) {
    // --mock: both ends of the 400 connections are in the one process, 864 descriptors with
    // the reserve; a soft limit of 256 is far from enough.
    return "bash -c 'ulimit " + ulimit_flags + " 256 && exec " + std::string(SLUICE_EXE) + " run " +
           input + " -o " + output + " --mock --mock-latency-ms 50 --concurrency 400' 2>" + err;
}

} // namespace

TEST_CASE("sluice run raises a low soft open-file limit up to the hard limit") {
    temp_dir dir;
    const std::string input = write_batch(dir);
    const std::string output = dir.file("out.jsonl");
    const std::string err = dir.file("err.txt");
    CHECK(run_shell(run_under("-Sn", input, output, err)) == 0);
    CHECK(read_lines(output).size() == 2000);
    CHECK(read_file(err).find("succeeded 2000") != std::string::npos);
}

TEST_CASE("sluice run below a hard open-file limit names ulimit -n and sends nothing") {
    temp_dir dir;
    const std::string input = write_batch(dir);
    const std::string output = dir.file("out.jsonl");
    const std::string err = dir.file("err.txt");
    CHECK(run_shell(run_under("-n", input, output, err)) == 2);
    const std::string text = read_file(err);
    INFO(text);
    CHECK(text.find("864 open files are needed") != std::string::npos);
    CHECK(text.find("the limit is 256 (hard limit 256)") != std::string::npos);
    CHECK(text.find("ulimit -n 864") != std::string::npos);
    CHECK(read_lines(output).empty());
}

} // namespace cli_open_files_test
