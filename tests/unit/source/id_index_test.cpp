// The id index: which input lines are sent, skipped (resume) or answered as duplicates, the
// same in both modes, with the two-pass mode spilling to a temporary file and merging.
#include "support/temp_dir.hpp"

#include <sluice/source/id_index.hpp>

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <vector>

using namespace sluice;
using sluice::test::numbered;
using sluice::test::temp_dir;

namespace {

// A batch run's view of the input and the journal. A line without an id is a bad line.
struct scenario {
    std::vector<std::string> done_ids;
    std::vector<std::uint64_t> done_lines;
    std::vector<std::optional<std::string>> lines; // lines[i] is line i + 1
    // Bad lines that an unchecked pass 1 read an id from, and added under it. The verdicts
    // must not change: pass 2 tells the index these lines are bad.
    std::map<std::uint64_t, std::string> unchecked;
};

// One letter per line: S send, D done, U duplicate; for bad lines d (record exists) or
// b (write the bad-line record).
char letter(line_verdict v) {
    switch (v) {
    case line_verdict::send:
        return 'S';
    case line_verdict::done:
        return 'D';
    case line_verdict::duplicate:
        return 'U';
    }
    return '?';
}

// The rules written the obvious way, over the ids' text.
std::string reference(const scenario& s) {
    const std::set<std::string> done_ids(s.done_ids.begin(), s.done_ids.end());
    const std::set<std::uint64_t> done_lines(s.done_lines.begin(), s.done_lines.end());
    std::set<std::string> seen;
    std::string out;
    for (std::uint64_t line = 1; line <= s.lines.size(); ++line) {
        const auto& id = s.lines[line - 1];
        if (!id) {
            out += done_lines.count(line) ? 'd' : 'b';
            continue;
        }
        const bool first = seen.insert(*id).second;
        if (done_lines.count(line))
            out += 'D';
        else if (!first)
            out += 'U';
        else
            out += done_ids.count(*id) ? 'D' : 'S';
    }
    return out;
}

void add_journal(id_index& index, const scenario& s) {
    for (const auto& id : s.done_ids)
        index.add_done_id(id);
    for (const auto line : s.done_lines)
        index.add_done_line(line);
}

std::string one_pass(const scenario& s) {
    id_index index(id_index_mode::one_pass);
    add_journal(index, s);
    std::string out;
    for (std::uint64_t line = 1; line <= s.lines.size(); ++line) {
        const auto& id = s.lines[line - 1];
        out += id ? letter(index.classify_streaming(line, *id))
                  : (index.classify_bad_line(line) ? 'd' : 'b');
    }
    return out;
}

// The id pass 1 adds line `line` under: a good line's, or the one an unchecked pass read from
// a bad line; none for a bad line pass 1 checked.
std::optional<std::string> first_pass_id(const scenario& s, std::uint64_t line) {
    if (s.lines[line - 1])
        return s.lines[line - 1];
    const auto it = s.unchecked.find(line);
    return it == s.unchecked.end() ? std::nullopt : std::optional(it->second);
}

// One pass 2 over the input: a letter per line.
std::string pass2(id_index& index, const scenario& s) {
    std::string out;
    for (std::uint64_t line = 1; line <= s.lines.size(); ++line) {
        const auto& id = s.lines[line - 1];
        out +=
            id ? letter(index.classify(line, *id))
               : (index.classify_bad_line(line, first_pass_id(s, line).value_or("")) ? 'd' : 'b');
    }
    return out;
}

// `order` shuffles the pass-1 order when given a seed: the index must not depend on it. Pass 2
// runs twice, as a batch run's plan or check and then the run itself do: the same answers.
std::string two_pass(const scenario& s,
                     const id_index_options& options = {},
                     std::size_t* runs = nullptr,
                     std::optional<std::uint64_t> order = std::nullopt) {
    id_index index(id_index_mode::two_pass, options);
    add_journal(index, s);
    std::vector<std::uint64_t> pass1;
    for (std::uint64_t line = 1; line <= s.lines.size(); ++line)
        if (first_pass_id(s, line))
            pass1.push_back(line);
    if (order) {
        std::mt19937_64 rng(*order);
        std::shuffle(pass1.begin(), pass1.end(), rng);
    }
    for (const auto line : pass1)
        index.add_input(line, *first_pass_id(s, line));
    index.finish(s.lines.size());
    if (runs)
        *runs = index.spilled_runs();
    const std::string out = pass2(index, s);
    CHECK(pass2(index, s) == out);
    return out;
}

// Forces a spill every few facts and merges of a few runs at a time.
id_index_options tiny_buffers(const temp_dir& dir) {
    id_index_options o;
    o.buffer_entries = 7;
    o.max_merge_fan_in = 3;
    o.merge_buffer_bytes = 64;
    o.temp_dir = dir.path().string();
    return o;
}

// Both modes, in memory and spilled, must agree with the reference.
void check_all_modes(const scenario& s, const std::string& expected) {
    temp_dir dir;
    CHECK(reference(s) == expected);
    CHECK(one_pass(s) == expected);
    CHECK(two_pass(s) == expected);
    CHECK(two_pass(s, tiny_buffers(dir)) == expected);
}

// Restores the file-size limit and SIGXFSZ handling at scope end.
struct file_size_limit {
    explicit file_size_limit(rlim_t bytes) {
        ::getrlimit(RLIMIT_FSIZE, &saved_);
        previous_ = std::signal(SIGXFSZ, SIG_IGN); // a write past the limit fails with EFBIG
        rlimit lowered = saved_;
        lowered.rlim_cur = bytes;
        ::setrlimit(RLIMIT_FSIZE, &lowered);
    }
    ~file_size_limit() {
        ::setrlimit(RLIMIT_FSIZE, &saved_);
        std::signal(SIGXFSZ, previous_);
    }
    rlimit saved_{};
    void (*previous_)(int) = nullptr;
};

} // namespace

TEST_CASE("murmur3_x64_128 matches the reference implementation") {
    // SMHasher's verification: hash keys {}, {0}, {0,1}, ... {0..254} with seed 256 - length,
    // then hash the 256 concatenated results (h1 then h2, little-endian) with seed 0.
    std::string keys(256, '\0');
    for (int i = 0; i < 256; ++i)
        keys[static_cast<std::size_t>(i)] = static_cast<char>(i);
    std::string hashes;
    for (std::uint32_t len = 0; len < 256; ++len) {
        const id_hash h = murmur3_x64_128(std::string_view(keys).substr(0, len), 256 - len);
        for (const std::uint64_t word : {h.hi, h.lo})
            for (int b = 0; b < 8; ++b)
                hashes += static_cast<char>((word >> (8 * b)) & 0xff);
    }
    const id_hash final_hash = murmur3_x64_128(hashes, 0);
    CHECK((final_hash.hi & 0xffffffff) == 0x6384BA69);

    CHECK(murmur3_x64_128("") == id_hash{0, 0}); // the all-zero state stays zero
    CHECK(hash_custom_id("req-1") == murmur3_x64_128("req-1", 0));
    CHECK(hash_custom_id("req-1") != hash_custom_id("req-2"));
}

TEST_CASE("id_index: the first line with an id is sent, later ones are duplicates") {
    scenario s;
    s.lines = {"a", "b", "a", "c", "b", "a"};
    check_all_modes(s, "SSUSUU");
}

TEST_CASE("id_index: a done id skips only its first line, and its repeats stay duplicates") {
    scenario s;
    s.done_ids = {"b", "not-in-input"};
    s.lines = {"a", "b", "a", "b", "c"};
    check_all_modes(s, "SDUUS");

    // The same id reported twice by the journal changes nothing.
    s.done_ids = {"b", "b", "a"};
    check_all_modes(s, "DDUUS");
}

TEST_CASE("id_index: a done line is done whatever its id, and still counts as an occurrence") {
    scenario s;
    s.lines = {"a", "a", std::nullopt, "b", std::nullopt, "b", "a"};
    // Line 2 (a duplicate whose record exists), bad line 3, and line 4, b's first occurrence.
    s.done_lines = {2, 3, 4};
    check_all_modes(s, "SDdDbUU");

    // With the done id as well, and a done line beyond the input (another input's journal).
    s.done_ids = {"a"};
    s.done_lines = {1, 6, 99};
    check_all_modes(s, "DUbSbDU");
}

TEST_CASE("id_index: bad lines after the last good line still answer line_done") {
    scenario s;
    s.lines = {"a", std::nullopt, std::nullopt};
    s.done_lines = {3};
    check_all_modes(s, "Sbd");
}

TEST_CASE("id_index: a bad line that pass 1 did not check hands its id's place to the next "
          "good line") {
    scenario s;
    s.lines = {std::nullopt, "a", "a"};
    s.unchecked = {{1, "a"}};
    check_all_modes(s, "bSU");

    // Several bad lines before the first good one; a good line before a bad one keeps its place.
    s.lines = {std::nullopt, std::nullopt, "a", "b", std::nullopt, "b"};
    s.unchecked = {{1, "a"}, {2, "a"}, {5, "b"}};
    check_all_modes(s, "bbSSbU");

    // The place carries its verdict: done by id.
    s.done_ids = {"a"};
    check_all_modes(s, "bbDSbU");

    // A bad line the journal named, and a good line the journal named that takes the place:
    // done, and still the id's occurrence.
    s.done_ids = {};
    s.lines = {std::nullopt, "a", "a", std::nullopt, "c"};
    s.unchecked = {{1, "a"}, {4, "c"}};
    s.done_lines = {1, 2};
    check_all_modes(s, "dDUbS");

    // No good line after it: nothing takes the place, and the next id is untouched.
    s.lines = {std::nullopt, "b"};
    s.unchecked = {{1, "a"}};
    s.done_lines = {};
    check_all_modes(s, "bS");
}

TEST_CASE("id_index: hand-overs from unchecked bad lines agree with a reference on random input") {
    const std::uint64_t seed = GENERATE(7, 8, 9);
    std::mt19937_64 rng(seed);
    scenario s;
    const std::size_t lines = 20000;
    const std::size_t distinct = 4000;
    std::uniform_int_distribution<std::size_t> pick(0, distinct - 1);
    std::uniform_int_distribution<int> percent(0, 99);
    for (std::uint64_t line = 1; line <= lines; ++line) {
        if (percent(rng) < 15) {
            s.lines.emplace_back(std::nullopt);
            if (percent(rng) < 80)
                s.unchecked.emplace(line, numbered("id-", pick(rng)));
        } else {
            s.lines.emplace_back(numbered("id-", pick(rng)));
        }
    }
    for (std::size_t i = 0; i < distinct; ++i)
        if (percent(rng) < 30)
            s.done_ids.push_back(numbered("id-", i));
    for (std::uint64_t line = 1; line <= lines; ++line)
        if (percent(rng) < 5)
            s.done_lines.push_back(line);

    // How many ids have an unchecked bad line as their first pass-1 line: the hand-overs.
    std::set<std::string> seen;
    std::size_t handed = 0;
    for (std::uint64_t line = 1; line <= lines; ++line) {
        const auto id = first_pass_id(s, line);
        if (id && seen.insert(*id).second && !s.lines[line - 1])
            ++handed;
    }
    CHECK(handed > 300);

    const std::string expected = reference(s);
    CHECK(one_pass(s) == expected);
    CHECK(two_pass(s) == expected);
    temp_dir dir;
    CHECK(two_pass(s, tiny_buffers(dir), nullptr, seed) == expected);
}

TEST_CASE("id_index: both modes agree with a reference on random input with many duplicates") {
    const std::uint64_t seed = GENERATE(1, 2, 3, 20240611);
    std::mt19937_64 rng(seed);
    scenario s;
    const std::size_t lines = 20000;
    const std::size_t distinct = 3000; // every id repeats about 6 times
    std::uniform_int_distribution<std::size_t> pick(0, distinct - 1);
    std::uniform_int_distribution<int> percent(0, 99);
    for (std::size_t i = 0; i < lines; ++i) {
        if (percent(rng) < 3)
            s.lines.emplace_back(std::nullopt);
        else
            s.lines.emplace_back(numbered("id-", pick(rng)));
    }
    for (std::size_t i = 0; i < distinct; ++i)
        if (percent(rng) < 30)
            s.done_ids.push_back(numbered("id-", i));
    for (std::size_t i = 0; i < 200; ++i)
        s.done_ids.push_back(numbered("gone-", i)); // ids the input no longer has
    for (std::uint64_t line = 1; line <= lines; ++line)
        if (percent(rng) < 5)
            s.done_lines.push_back(line);
    std::shuffle(s.done_ids.begin(), s.done_ids.end(), rng);

    const std::string expected = reference(s);
    REQUIRE(expected.size() == lines);
    // The scenario exercises every verdict in quantity.
    CHECK(std::count(expected.begin(), expected.end(), 'S') > 1000);
    CHECK(std::count(expected.begin(), expected.end(), 'D') > 1000);
    CHECK(std::count(expected.begin(), expected.end(), 'U') > 10000);
    CHECK(std::count(expected.begin(), expected.end(), 'd') > 10);
    CHECK(std::count(expected.begin(), expected.end(), 'b') > 100);

    CHECK(one_pass(s) == expected);

    std::size_t runs = 0;
    CHECK(two_pass(s, {}, &runs) == expected);
    CHECK(runs == 0); // fits in the default buffer: no file

    temp_dir dir;
    id_index_options spilled;
    spilled.buffer_entries = 500;
    spilled.merge_buffer_bytes = 4096;
    spilled.temp_dir = dir.path().string();
    const std::size_t facts =
        s.done_ids.size() + s.done_lines.size() +
        static_cast<std::size_t>(std::count(expected.begin(), expected.end(), 'S') +
                                 std::count(expected.begin(), expected.end(), 'D') +
                                 std::count(expected.begin(), expected.end(), 'U'));
    const std::size_t first_runs = (facts + 499) / 500; // about 43
    spilled.max_merge_fan_in = 256;                     // one merge of every run
    CHECK(two_pass(s, spilled, &runs) == expected);
    CHECK(runs == first_runs);

    spilled.max_merge_fan_in = 8; // intermediate merges before the final one
    CHECK(two_pass(s, spilled, &runs, seed) == expected);
    CHECK(runs > first_runs + 4);

    CHECK(two_pass(s, tiny_buffers(dir), &runs, seed + 1) == expected);
    CHECK(runs > 3000);
}

TEST_CASE("id_index: one million ids in two-pass mode") {
    // Every tenth line repeats the id nine lines before it; every hundredth id is done.
    const std::uint64_t lines = 1'000'000;
    auto id_of = [](std::uint64_t line) {
        return numbered("request-", line % 10 == 0 ? line - 9 : line);
    };
    const auto start = std::chrono::steady_clock::now();
    id_index index(id_index_mode::two_pass);
    for (std::uint64_t line = 100; line <= lines; line += 100)
        index.add_done_id(id_of(line + 1));
    for (std::uint64_t line = 1; line <= lines; ++line)
        index.add_input(line, id_of(line));
    index.finish(lines);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(index.spilled_runs() >= 15);

    std::uint64_t wrong = 0;
    for (std::uint64_t line = 1; line <= lines; ++line) {
        line_verdict expected = line_verdict::send;
        if (line % 10 == 0)
            expected = line_verdict::duplicate;
        else if (line % 100 == 1 && line > 100)
            expected = line_verdict::done;
        wrong += index.classify(line, id_of(line)) != expected;
    }
    CHECK(wrong == 0);
    // A guard against accidental quadratic behaviour, not a benchmark: the expected cost is
    // about a tenth of a second in an optimized build.
    CHECK(elapsed < std::chrono::seconds(10));
}

TEST_CASE("id_index: the temporary file honours the directory and leaves nothing behind") {
    temp_dir dir;
    id_index_options o;
    o.buffer_entries = 16;
    o.temp_dir = dir.path().string();
    id_index index(id_index_mode::two_pass, o);
    for (std::uint64_t line = 1; line <= 100; ++line)
        index.add_input(line, numbered("x", line % 40));
    CHECK(index.spilled_runs() == 6);
    CHECK(std::filesystem::is_empty(dir.path())); // unlinked at once
    index.finish(100);
    CHECK(index.classify(39, numbered("x", 39)) == line_verdict::send);
    CHECK(index.classify(40, numbered("x", 0)) == line_verdict::send);
    CHECK(index.classify(41, numbered("x", 1)) == line_verdict::duplicate);
    CHECK(index.classify(80, numbered("x", 0)) == line_verdict::duplicate);
}

TEST_CASE("id_index: a temporary file that cannot be created or written is a system_error") {
    temp_dir dir;
    id_index_options o;
    o.buffer_entries = 64;

    auto spill = [&](const id_index_options& options) {
        id_index index(id_index_mode::two_pass, options);
        for (std::uint64_t line = 1; line <= 1000; ++line)
            index.add_input(line, numbered("x", line));
        index.finish(1000);
    };

    SECTION("missing directory") {
        o.temp_dir = dir.file("missing");
        try {
            spill(o);
            FAIL("no error");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::no_such_file_or_directory);
            CHECK(std::string(e.what()).find(o.temp_dir) != std::string::npos);
        }
    }
    SECTION("not a directory") {
        o.temp_dir = dir.file("plain");
        sluice::test::write_file(o.temp_dir, "x");
        CHECK_THROWS_AS(spill(o), std::system_error);
    }
    SECTION("$TMPDIR when no directory is set") {
        const char* saved = std::getenv("TMPDIR");
        const std::string restore = saved ? saved : "";
        const std::string missing = dir.file("no-such-tmpdir");
        ::setenv("TMPDIR", missing.c_str(), 1);
        std::string message;
        try {
            spill(o);
        } catch (const std::system_error& e) {
            message = e.what();
        }
        if (saved)
            ::setenv("TMPDIR", restore.c_str(), 1);
        else
            ::unsetenv("TMPDIR");
        CHECK(message.find(missing) != std::string::npos);
    }
    SECTION("write failure (file size limit)") {
        o.temp_dir = dir.path().string();
        std::optional<std::error_code> code;
        std::string message;
        {
            file_size_limit limit(1000); // less than one run of 64 entries
            try {
                spill(o);
            } catch (const std::system_error& e) {
                code = e.code();
                message = e.what();
            }
        }
        REQUIRE(code);
        CHECK(*code == std::errc::file_too_large);
        CHECK(message.find("cannot write") != std::string::npos);
    }
    SECTION("no file is needed while everything fits in memory") {
        o.temp_dir = dir.file("missing");
        o.buffer_entries = 2000;
        CHECK_NOTHROW(spill(o));
    }
}

TEST_CASE("id_index: calls in the wrong mode or order are logic errors") {
    id_index two(id_index_mode::two_pass);
    two.add_input(1, "a");
    CHECK_THROWS_AS(two.classify(1, "a"), std::logic_error);
    CHECK_THROWS_AS(two.line_done(1), std::logic_error);
    CHECK_THROWS_AS(two.classify_bad_line(1), std::logic_error);
    CHECK_THROWS_AS(two.classify_streaming(2, "b"), std::logic_error);
    CHECK_THROWS_AS(two.finish(0), std::invalid_argument); // before line 1
    two.finish(3);
    CHECK(two.classify(1, "a") == line_verdict::send);
    CHECK_THROWS_AS(two.classify(2, "b"), std::out_of_range); // never added: the input changed
    CHECK_THROWS_AS(two.classify(4, "b"), std::out_of_range);
    CHECK_FALSE(two.line_done(2));
    CHECK_FALSE(two.line_done(1000));
    CHECK_THROWS_AS(two.add_input(2, "b"), std::logic_error);
    CHECK_THROWS_AS(two.add_done_id("b"), std::logic_error);

    id_index one(id_index_mode::one_pass);
    CHECK_THROWS_AS(one.add_input(1, "a"), std::logic_error);
    CHECK_THROWS_AS(one.finish(1), std::logic_error);
    CHECK(one.classify_streaming(1, "a") == line_verdict::send);

    id_index_options bad;
    bad.buffer_entries = 1;
    CHECK_THROWS_AS(id_index(id_index_mode::two_pass, bad), std::invalid_argument);
}
