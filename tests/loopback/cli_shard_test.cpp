// One batch across machines, as users run it: `sluice run --shard K/N` three times against the
// embedded mock, then `sluice merge`, which must find every line answered exactly once, and
// name a planted duplicate and a missing id.
#include "support/temp_dir.hpp"

#include <sluice/source/shard.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <map>
#include <string>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace cli_shard_test {

using namespace sluice::test;

namespace {

std::string sluice_cmd(const std::string& args) {
    return std::string(SLUICE_EXE) + " " + args;
}

std::string custom_id_of(simdjson::dom::parser& parser, const std::string& line) {
    return std::string(std::string_view(parser.parse(line)["custom_id"]));
}

// 300 lines: good ones, a bad line and a repeated id, so that every kind of record is sharded.
std::string make_input(const std::string& path) {
    std::string text;
    for (int i = 0; i < 300; ++i) {
        if (i == 100)
            text += "not json\n";
        else if (i == 200)
            text += R"({"custom_id":"q17","body":{"model":"m","messages":[]}})"
                    "\n";
        else
            text += R"({"custom_id":"q)" + std::to_string(i) +
                    R"(","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}})" + "\n";
    }
    write_file(path, text);
    return path;
}

} // namespace

TEST_CASE("three shards run apart and merged answer every line exactly once") {
    temp_dir dir;
    const std::string input = make_input(dir.file("in.jsonl"));
    std::string outputs;
    std::size_t records = 0;
    simdjson::dom::parser parser;
    for (int k = 1; k <= 3; ++k) {
        const std::string out = dir.file("out-" + std::to_string(k) + "-of-3.jsonl");
        const int status =
            run_shell(sluice_cmd("run " + input + " -o " + out + " --shard " + std::to_string(k) +
                                 "/3 --mock -q 2>>" + dir.file("err.txt")));
        // The bad line (line-101) and the repeated id are error records in their shards.
        const bool errors = sluice::shard_of("line-101", 3) == static_cast<std::uint32_t>(k) ||
                            sluice::shard_of("q17", 3) == static_cast<std::uint32_t>(k);
        CHECK(status == (errors ? 1 : 0));
        for (const std::string& line : read_lines(out)) {
            const std::string id = custom_id_of(parser, line);
            INFO(id);
            CHECK(sluice::shard_of(id, 3) == static_cast<std::uint32_t>(k)); // only its own
            ++records;
        }
        outputs += " " + out;
    }
    CHECK(records == 300);
    INFO(read_file(dir.file("err.txt")));

    const std::string merged = dir.file("merged.jsonl");
    CHECK(run_shell(sluice_cmd("merge" + outputs + " -o " + merged + " --input " + input + " 2>" +
                               dir.file("merge.txt"))) == 0);
    CHECK(read_file(dir.file("merge.txt")).find("300 input lines") != std::string::npos);
    std::map<std::string, int> per_id;
    for (const std::string& line : read_lines(merged))
        ++per_id[custom_id_of(parser, line)];
    CHECK(per_id.size() == 299); // q17 twice: its answer and the duplicate's error
    CHECK(per_id["q17"] == 2);
    CHECK(per_id["line-101"] == 1);
    CHECK(per_id["q0"] == 1);
    CHECK(per_id["q299"] == 1);

    // A resumed shard sends nothing again: its output is complete.
    const std::string first = dir.file("out-1-of-3.jsonl");
    const auto before = read_lines(first).size();
    run_shell(sluice_cmd("run " + input + " -o " + first + " --shard 1/3 --mock -q 2>/dev/null"));
    CHECK(read_lines(first).size() == before);
}

TEST_CASE("merge exits 1 naming a planted duplicate and a missing id, and writes nothing") {
    temp_dir dir;
    const std::string input = make_input(dir.file("in.jsonl"));
    std::string outputs;
    for (int k = 1; k <= 3; ++k) {
        const std::string out = dir.file("out" + std::to_string(k) + ".jsonl");
        run_shell(sluice_cmd("run " + input + " -o " + out + " --shard " + std::to_string(k) +
                             "/3 --mock -q 2>/dev/null"));
        outputs += " " + out;
    }
    // Plant: shard 1's first record copied into shard 2's output, shard 3's last record cut.
    const auto one = read_lines(dir.file("out1.jsonl"));
    REQUIRE(!one.empty());
    write_file(dir.file("out2.jsonl"), read_file(dir.file("out2.jsonl")) + one.front() + "\n");
    auto three = read_lines(dir.file("out3.jsonl"));
    REQUIRE(!three.empty());
    simdjson::dom::parser parser;
    const std::string dup_id = custom_id_of(parser, one.front());
    const std::string lost_id = custom_id_of(parser, three.back());
    three.pop_back();
    std::string text;
    for (const auto& l : three)
        text += l + "\n";
    write_file(dir.file("out3.jsonl"), text);

    const std::string merged = dir.file("merged.jsonl");
    const std::string err = dir.file("merge.txt");
    CHECK(run_shell(sluice_cmd("merge" + outputs + " -o " + merged + " --input " + input + " 2>" +
                               err)) == 1);
    const std::string said = read_file(err);
    INFO(said);
    CHECK(said.find("1 input lines have no final record: " + lost_id) != std::string::npos);
    CHECK(said.find("1 records repeat a custom_id that already has its record: " + dup_id) !=
          std::string::npos);
    CHECK(said.find("not written") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(merged));
}

TEST_CASE("sluice run refuses a --shard that is not K of N, counted from 1") {
    temp_dir dir;
    const std::string input = make_input(dir.file("in.jsonl"));
    for (const char* bad : {"0/3", "4/3", "x"}) {
        INFO(bad);
        const std::string err = dir.file("err.txt");
        CHECK(run_shell(sluice_cmd("run " + input + " -o " + dir.file("o.jsonl") + " --shard " +
                                   bad + " --mock 2>" + err)) == 2);
        CHECK(read_file(err).find("--shard") != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(dir.file("o.jsonl")));
    }
}

} // namespace cli_shard_test
