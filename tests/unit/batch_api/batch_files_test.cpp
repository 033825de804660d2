// The files of a deferred job: the state file read back as written, the split within the
// provider's limits, and the merge of a provider's output and error files into the output.
#include "batch_api/batch_collect.hpp"
#include "batch_api/batch_split.hpp"
#include "batch_api/batch_state.hpp"

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace sluice;
using namespace sluice::detail;

namespace {

void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

} // namespace

TEST_CASE("batch state: saved and loaded, every member", "[batch_api]") {
    test::temp_dir dir;
    batch_state s;
    s.job = "abc";
    s.input = "in \"x\".jsonl";
    s.created_at = 1700000000;
    s.bad_lines = 2;
    s.bad_lines_file = "bad-lines.jsonl";
    batch_part p;
    p.index = 3;
    p.file = "part-3.jsonl";
    p.lines = 10;
    p.bytes = 1234;
    p.upload_pending = true;
    p.batch_id = "batch_1";
    p.status = "expired";
    p.completed = 5;
    p.merged = true;
    p.unfinished = 5;
    p.finished_by = "finished live";
    s.parts = {p};
    s.save(dir.file("state.json"));
    const batch_state r = batch_state::load(dir.file("state.json"));
    CHECK(r.job == "abc");
    CHECK(r.input == s.input);
    CHECK(r.created_at == s.created_at);
    CHECK(r.bad_lines == 2);
    REQUIRE(r.parts.size() == 1);
    CHECK(r.parts[0].index == 3);
    CHECK(r.parts[0].bytes == 1234);
    CHECK(r.parts[0].upload_pending);
    CHECK_FALSE(r.parts[0].create_pending);
    CHECK(r.parts[0].batch_id == "batch_1");
    CHECK(r.parts[0].status == "expired");
    CHECK(r.parts[0].merged);
    CHECK(r.parts[0].unfinished == 5);
    CHECK(r.parts[0].finished_by == "finished live");
    write(dir.file("bad.json"), "{\"parts\":[]}");
    CHECK_THROWS_AS(batch_state::load(dir.file("bad.json")), std::runtime_error);
    CHECK_THROWS_AS(batch_state::load(dir.file("absent.json")), std::runtime_error);
}

TEST_CASE("batch split: parts within the request and byte limits, bad lines recorded",
          "[batch_api]") {
    test::temp_dir dir;
    std::string in;
    for (int i = 1; i <= 25; ++i)
        in += R"({"custom_id":"r)" + std::to_string(i) +
              R"(","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}})" + "\n";
    in += "{oops\n";
    in += R"({"custom_id":"r3","body":{"model":"m","messages":[]}})"
          "\n";
    in += R"({"prompt":"p"})"
          "\n"; // no model: bad without --model
    write(dir.file("in.jsonl"), in);
    split_options o;
    o.max_requests = 10;
    const auto r = split_input(dir.file("in.jsonl"), dir.path().string(), "bad.jsonl", o);
    CHECK(r.lines == 28);
    CHECK(r.bad == 3);
    REQUIRE(r.parts.size() == 3);
    CHECK(r.parts[0].lines == 10);
    CHECK(r.parts[2].lines == 5);
    const auto lines = test::read_lines(dir.file(r.parts[0].file));
    REQUIRE(lines.size() == 10);
    CHECK(
        lines[0] ==
        R"({"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}})");
    CHECK(r.parts[0].bytes == test::read_file(dir.file(r.parts[0].file)).size());
    const auto bad = test::read_lines(dir.file("bad.jsonl"));
    REQUIRE(bad.size() == 3);
    CHECK(bad[0].find(R"("line":26)") != std::string::npos);
    CHECK(bad[1].find("duplicate_custom_id") != std::string::npos);

    // By bytes: every part file at most the limit, and a line above it is a bad line.
    split_options by_bytes;
    by_bytes.max_bytes = 400;
    std::filesystem::create_directories(dir.file("b"));
    const auto b2 = split_input(dir.file("in.jsonl"), dir.file("b"), "bad.jsonl", by_bytes);
    std::uint64_t total = 0;
    for (const auto& p : b2.parts) {
        CHECK(p.bytes <= 400);
        total += p.lines;
    }
    CHECK(total == 25);
    split_options tiny;
    tiny.max_bytes = 50;
    std::filesystem::create_directories(dir.file("c"));
    const auto c = split_input(dir.file("in.jsonl"), dir.file("c"), "bad.jsonl", tiny);
    CHECK(c.parts.empty());
    CHECK(c.bad == 28);
}

TEST_CASE("batch collect: one record per custom_id, error statuses as sluice run sets them, "
          "expired lines left unfinished",
          "[batch_api]") {
    test::temp_dir dir;
    write(dir.file("part.jsonl"),
          R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}})"
          "\n"
          R"({"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{}})"
          "\n"
          R"({"custom_id":"c","method":"POST","url":"/v1/chat/completions","body":{}})"
          "\n");
    write(
        dir.file("output.jsonl"),
        R"({"id":"batch_req_1","custom_id":"a","response":{"status_code":200,"request_id":"r1","body":{"id":"x"}},"error":null})"
        "\n");
    write(
        dir.file("errors.jsonl"),
        R"({"id":"batch_req_2","custom_id":"b","response":{"status_code":429,"request_id":"r2","body":{"error":{"message":"Slow down","type":"requests","code":"rate_limit_exceeded"}}},"error":null})"
        "\n"
        R"({"id":"batch_req_3","custom_id":"c","response":null,"error":{"code":"batch_expired","message":"expired"}})"
        "\n");
    {
        merged_output out(dir.file("out.jsonl"));
        CHECK(merge_provider_file(dir.file("output.jsonl"), out).written == 1);
        const auto c = merge_provider_file(dir.file("errors.jsonl"), out);
        CHECK(c.written == 1);
        CHECK(c.unfinished == 1);
        // The same file again (a collect killed after merging it): nothing twice.
        CHECK(merge_provider_file(dir.file("output.jsonl"), out).duplicates == 1);
        out.sync();
        CHECK(write_unfinished(dir.file("part.jsonl"), out, dir.file("left.jsonl")) == 1);
    }
    const auto lines = test::read_lines(dir.file("out.jsonl"));
    REQUIRE(lines.size() == 2);
    CHECK(
        lines[1] ==
        R"({"id":"batch_req_2","custom_id":"b","response":{"status_code":429,"request_id":"r2","body":{"error":{"message":"Slow down","type":"requests","code":"rate_limit_exceeded"}}},"error":{"code":"rate_limited","message":"Slow down"}})");
    const auto left = test::read_lines(dir.file("left.jsonl"));
    REQUIRE(left.size() == 1);
    CHECK(left[0].find(R"("custom_id":"c")") != std::string::npos);

    // A torn last line (a collect killed while writing) is cut, and the output resumed.
    {
        std::ofstream(dir.file("out.jsonl"), std::ios::app) << R"({"id":"x","custom_id":"c","resp)";
        merged_output out(dir.file("out.jsonl"));
        CHECK(out.has_id("a"));
        CHECK(out.has_id("b"));
        CHECK_FALSE(out.has_id("c"));
    }
    CHECK(test::read_lines(dir.file("out.jsonl")).size() == 2);

    write(dir.file("foreign.jsonl"), "{\"hello\":1}\n");
    merged_output out(dir.file("out.jsonl"));
    CHECK_THROWS_AS(merge_provider_file(dir.file("foreign.jsonl"), out), std::runtime_error);
}
