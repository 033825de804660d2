// A batch run's first pass over a file reads each line's custom_id without checking the line;
// the second pass tells the index of the bad lines. The decisions must be exactly those of a
// first pass that checks every line, on any input and any journal, in every later pass too.
#include "support/random_jsonl.hpp"
#include "support/temp_dir.hpp"

#include <sluice/batch/input_files.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <tuple>
#include <vector>

using namespace sluice;
using sluice::test::temp_dir;

namespace {

struct journal {
    std::vector<std::string> done_ids;
    std::vector<std::uint64_t> done_lines;
};

void add_journal(id_index& index, const journal& j) {
    for (const auto& id : j.done_ids)
        index.add_done_id(id);
    for (const auto line : j.done_lines)
        index.add_done_line(line);
}

// What one pass decides for each line: its number, the action, the record's id and message.
using decision = std::tuple<std::uint64_t, line_action, std::string, std::string>;

std::vector<decision>
decide_all(const std::string& path, const reader_options& ropts, id_index& index) {
    std::vector<decision> out;
    for_each_record(path, ropts, [&](input_record& rec) {
        const line_action a = decide_line(rec, index, false);
        out.emplace_back(rec.line_number, a, rec.request.custom_id, rec.message);
    });
    return out;
}

// The first pass as it was: every line checked, the good ones added.
std::vector<decision>
checked_first_pass(const std::string& path, const reader_options& ropts, const journal& j) {
    id_index index(id_index_mode::two_pass);
    add_journal(index, j);
    reader_options ids = ropts;
    ids.ids_only = true;
    const std::uint64_t last = for_each_record(path, ids, [&](input_record& rec) {
        if (!rec.ec)
            index.add_input(rec.line_number, rec.request.custom_id);
    });
    index.finish(last);
    return decide_all(path, ropts, index);
}

} // namespace

TEST_CASE("batch input: the unchecked first pass decides every line as a checked one would") {
    const std::uint64_t seed = GENERATE(11, 12, 13, 14, 15, 16);
    temp_dir dir;
    test::random_jsonl gen(seed, 30);
    const std::string path = dir.file("in.jsonl");
    const std::size_t lines = 2000;
    test::write_file(path, gen.text(lines));

    journal j;
    for (std::size_t i = 0; i < 12; ++i)
        j.done_ids.push_back(gen.id());
    for (std::size_t i = 0; i < 80; ++i)
        j.done_lines.push_back(1 + gen.below(lines + 10)); // some beyond the input

    reader_options ropts;
    ropts.model = seed % 2 ? "fallback" : "";
    const std::vector<decision> expected = checked_first_pass(path, ropts, j);
    REQUIRE(expected.size() == lines);

    // Ids whose first line, as the unchecked pass reads them, is a bad line: the hand-overs
    // this test is about.
    std::set<std::string> seen;
    std::size_t handed = 0;
    reader_options unchecked = ropts;
    unchecked.unchecked_ids = true;
    for_each_record(path, unchecked, [&](input_record& rec) {
        const bool first = !rec.ec && seen.insert(rec.request.custom_id).second;
        handed += first && std::get<3>(expected[rec.line_number - 1]) != "" ? 1 : 0;
    });
    CHECK(handed > 5);

    id_index index(id_index_mode::two_pass);
    add_journal(index, j);
    CHECK(scan_ids(path, ropts, index) == lines);
    SECTION("the run's pass, then another over the same index") {
        CHECK(decide_all(path, ropts, index) == expected);
        CHECK(decide_all(path, ropts, index) == expected);
    }
    SECTION("--strict's check first (find_bad_lines), then the run") {
        const input_problems found = find_bad_lines(path, ropts, index, 5);
        std::uint64_t bad = 0;
        for (const auto& d : expected)
            bad += std::get<3>(d).empty() ? 0 : 1;
        CHECK(found.bad == bad);
        CHECK(decide_all(path, ropts, index) == expected);
    }
}
