// The shard function of `sluice run --shard K/N`: a fixed, documented value for every
// custom_id (the same on every machine and build), and every input line in exactly one shard.
#include "support/temp_dir.hpp"

#include <sluice/source/jsonl_reader.hpp>
#include <sluice/source/shard.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using namespace sluice;
using sluice::test::temp_dir;

namespace {

std::vector<input_record> read_file_records(const std::string& path, const reader_options& opts) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    test::scoped_fd guard{fd};
    jsonl_reader reader(fd, opts);
    std::vector<input_record> records;
    input_record rec;
    while (reader.next(rec))
        records.push_back(rec);
    return records;
}

} // namespace

TEST_CASE("fnv1a_64 gives the published FNV-1a test values") {
    // From the FNV reference test suite (Fowler, Noll, Vo).
    CHECK(fnv1a_64("") == 0xcbf29ce484222325ULL);
    CHECK(fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
    CHECK(fnv1a_64("foobar") == 0x85944171f73967e8ULL);
    static_assert(fnv1a_64("a") == 0xaf63dc4c8601ec8cULL); // a constant: no seed, no platform
}

TEST_CASE("shard_of puts known custom_ids in fixed shards, as docs/scale-out.md computes them") {
    // fnv1a_64(id) % N + 1, computed independently (a few lines of Python, as the docs show).
    struct known {
        const char* id;
        std::uint32_t of2, of3, of4, of7;
    };
    for (const known& k : {known{"request-1", 1, 3, 1, 6},
                           known{"request-2", 2, 3, 2, 1},
                           known{"request-3", 1, 2, 3, 5},
                           known{"r1", 1, 2, 1, 7},
                           known{"r2", 2, 2, 2, 2},
                           known{"r3", 1, 1, 3, 6},
                           known{"line-7", 2, 2, 4, 4},
                           known{"\xc3\xa9", 2, 2, 2, 3}}) { // "é" as UTF-8
        INFO(k.id);
        CHECK(shard_of(k.id, 2) == k.of2);
        CHECK(shard_of(k.id, 3) == k.of3);
        CHECK(shard_of(k.id, 4) == k.of4);
        CHECK(shard_of(k.id, 7) == k.of7);
        CHECK(shard_of(k.id, 1) == 1);
    }
}

TEST_CASE("shard_spec reads K/N counted from 1 and refuses anything else") {
    const shard_spec s = shard_spec::parse("2/3");
    CHECK(s.index == 2);
    CHECK(s.count == 3);
    CHECK(shard_spec::parse("1/1").count == 1);
    CHECK(shard_spec::parse("65536/65536").index == 65536);
    for (const char* bad :
         {"0/3", "4/3", "3", "/3", "2/", "a/3", "-1/3", "+1/3", "1/0", "1/65537", " 1/3", "1/3 "}) {
        INFO(bad);
        CHECK_THROWS_AS(shard_spec::parse(bad), std::invalid_argument);
    }
}

TEST_CASE("every input line, bad ones included, is read by exactly one shard") {
    temp_dir dir;
    const std::string path = dir.file("in.jsonl");
    std::string text;
    for (int i = 0; i < 300; ++i) {
        if (i % 50 == 7)
            text += "not json at all\n"; // recorded as line-N: sharded by that
        else if (i % 50 == 9)
            text += R"({"prompt":"no id, so line-N","model":"m"})"
                    "\n";
        else if (i % 50 == 11)
            text += R"({"custom_id":"dup","body":{"model":"m","messages":[]}})"
                    "\n"; // a repeated id: every copy in the same shard
        else if (i % 50 == 13)
            text += "\n"; // blank: no record in any shard
        else
            text += R"({"custom_id":"id-)" + std::to_string(i) +
                    R"(","body":{"model":"m","messages":[]}})" + "\n";
    }
    test::write_file(path, text);

    const auto all = read_file_records(path, {});
    REQUIRE(all.size() == 294);
    for (const std::uint32_t n : {2u, 3u, 5u}) {
        INFO("N = " << n);
        std::map<std::uint64_t, std::uint32_t> shard_of_line;
        std::map<std::string, std::uint32_t> shard_of_id;
        for (std::uint32_t k = 1; k <= n; ++k) {
            reader_options opts;
            opts.shard = shard_spec{k, n};
            for (const input_record& rec : read_file_records(path, opts)) {
                INFO("line " << rec.line_number);
                CHECK(shard_of_line.emplace(rec.line_number, k).second); // in one shard only
                CHECK(shard_of(rec.request.custom_id, n) == k);
                // Same id, same shard: duplicates are found inside one shard.
                CHECK(shard_of_id.emplace(rec.request.custom_id, k).first->second == k);
            }
        }
        CHECK(shard_of_line.size() == all.size()); // and each in one
        for (const input_record& rec : all)
            CHECK(shard_of_line.count(rec.line_number) == 1);
    }
}
