// `sluice merge`'s library half: shard outputs into one, exactly one final record per input
// line, and every kind of mismatch found and named, with nothing written then.
#include "support/file_mode.hpp"
#include "support/temp_dir.hpp"

#include <sluice/batch/merge_outputs.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::test;

namespace {

std::string good_line(const std::string& id) {
    return R"({"custom_id":")" + id + R"(","body":{"model":"m","messages":[]}})" + "\n";
}

std::string success(const std::string& id) {
    return R"({"id":"batch_req_)" + id + R"(","custom_id":")" + id +
           R"(","response":{"status_code":200,"request_id":"x","body":{"choices":[]}},"error":null})" +
           "\n";
}

std::string failure(const std::string& id, const std::string& code, const std::string& line = "") {
    return R"({"id":"batch_req_)" + id + R"(","custom_id":")" + id +
           R"(","response":null,"error":{"code":")" + code + R"(","message":"m"})" +
           (line.empty() ? "" : ",\"line\":" + line) + "}\n";
}

// Six lines: a good one per id, a bad line (recorded as line-3) and a repeated id.
struct fixture {
    temp_dir dir;
    std::string input = dir.file("in.jsonl");
    std::string out = dir.file("merged.jsonl");
    fixture() {
        write_file(input,
                   good_line("a") + good_line("b") + "not json\n" + good_line("c") + "\n" +
                       good_line("b") + good_line("d"));
    }
    std::string shard(const std::string& name, const std::string& text) {
        write_file(dir.file(name), text);
        return dir.file(name);
    }
};

} // namespace

TEST_CASE("merge writes every shard's records once each, 0600, when every line has one") {
    fixture f;
    const std::string s1 =
        f.shard("s1.jsonl", success("a") + failure("line-3", "invalid_input", "3"));
    const std::string s2 = f.shard("s2.jsonl",
                                   success("b") + failure("b", "duplicate_custom_id", "6") +
                                       success("c") + failure("d", "server_error"));
    const mode_t old = ::umask(022);
    const merge_report r = merge_outputs({s1, s2}, f.input, f.out);
    ::umask(old);
    CHECK(r.complete());
    CHECK(r.written);
    CHECK(r.input_lines == 6);
    CHECK(r.records == 6);
    CHECK(r.missing.count == 0);
    CHECK(read_file(f.out) == read_file(s1) + read_file(s2)); // byte for byte, in file order
    CHECK(file_mode(f.out) == 0600);
    // Nothing left beside it: the temporary name was renamed into place.
    CHECK(std::distance(std::filesystem::directory_iterator(f.dir.path()),
                        std::filesystem::directory_iterator()) == 4);
}

TEST_CASE("merge names a missing id and a planted duplicate, and writes nothing") {
    fixture f;
    write_file(f.out, "an earlier merge\n");
    const std::string s1 = f.shard("s1.jsonl",
                                   success("a") + failure("line-3", "invalid_input", "3") +
                                       success("b") + failure("b", "duplicate_custom_id", "6"));
    // "c" answered twice (the planted duplicate), "d" never.
    const std::string s2 = f.shard("s2.jsonl", success("c") + success("c"));
    const merge_report r = merge_outputs({s1, s2}, f.input, f.out);
    CHECK_FALSE(r.complete());
    CHECK_FALSE(r.written);
    CHECK(r.missing.count == 1);
    CHECK(r.missing.first == std::vector<std::string>{"d"});
    CHECK(r.duplicated.count == 1);
    CHECK(r.duplicated.first == std::vector<std::string>{"c"});
    CHECK(r.unknown.count == 0);
    CHECK(read_file(f.out) == "an earlier merge\n"); // left as it was
    CHECK(std::distance(std::filesystem::directory_iterator(f.dir.path()),
                        std::filesystem::directory_iterator()) == 4); // no temporary left
}

TEST_CASE(
    "a repeated id needs one record per line: one short is missing, one more is a duplicate") {
    fixture f;
    const std::string base =
        success("a") + failure("line-3", "invalid_input", "3") + success("c") + success("d");
    SECTION("only the first line's answer") {
        const merge_report r =
            merge_outputs({f.shard("s.jsonl", base + success("b"))}, f.input, f.out);
        CHECK(r.missing.count == 1);
        CHECK(r.missing.first == std::vector<std::string>{"b"});
        CHECK(r.duplicated.count == 0);
    }
    SECTION("three records for two lines") {
        const merge_report r =
            merge_outputs({f.shard("s.jsonl",
                                   base + success("b") + failure("b", "duplicate_custom_id", "6") +
                                       success("b"))},
                          f.input,
                          f.out);
        CHECK(r.missing.count == 0);
        CHECK(r.duplicated.count == 1);
    }
}

TEST_CASE("merge names records of another input and records that are no answer yet") {
    fixture f;
    const std::string all = success("a") + failure("line-3", "invalid_input", "3") + success("b") +
                            failure("b", "duplicate_custom_id", "6") + success("c");
    SECTION("an id no input line has") {
        const merge_report r =
            merge_outputs({f.shard("s.jsonl", all + success("d") + success("zz"))}, f.input, f.out);
        CHECK(r.unknown.count == 1);
        CHECK(r.unknown.first == std::vector<std::string>{"zz"});
        CHECK_FALSE(r.written);
    }
    SECTION("not_attempted is not an answer: the line is missing until the shard is resumed") {
        const merge_report r = merge_outputs(
            {f.shard("s.jsonl", all + failure("d", "not_attempted"))}, f.input, f.out);
        CHECK(r.unanswered.count == 1);
        CHECK(r.missing.count == 1);
        CHECK(r.missing.first == std::vector<std::string>{"d"});
        CHECK_FALSE(r.written);
    }
    SECTION("an unanswered record beside the answer of a later run is left out") {
        const std::string s1 = f.shard("s1.jsonl", all + failure("d", "not_attempted"));
        const std::string s2 = f.shard("s2.jsonl", success("d"));
        const merge_report r = merge_outputs({s1, s2}, f.input, f.out);
        CHECK(r.complete());
        CHECK(r.unanswered.count == 1);
        CHECK(read_file(f.out) == all + success("d"));
    }
}

TEST_CASE("merge refuses a torn record, a foreign line and an output that is an input") {
    fixture f;
    const std::string ok = success("a");
    CHECK_THROWS_AS(merge_outputs({f.shard("torn.jsonl", ok + "{\"id\":\"batch_req_x\",\"cus")},
                                  f.input,
                                  f.out),
                    std::runtime_error);
    try {
        merge_outputs({f.shard("foreign.jsonl", ok + "{\"hello\":1}\n")}, f.input, f.out);
        FAIL("no exception");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("foreign.jsonl:2") != std::string::npos);
    }
    CHECK_FALSE(std::filesystem::exists(f.out));
    const std::string s = f.shard("s.jsonl", ok);
    CHECK_THROWS_AS(merge_outputs({s}, f.input, f.input), std::invalid_argument);
    CHECK_THROWS_AS(merge_outputs({s}, f.input, s), std::invalid_argument);
}
