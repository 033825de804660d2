// The unchecked first pass's scan of a line's custom_id: found only where the full check of a
// good line would give the same id, unsure wherever it might not.
#include "source/id_scan.hpp"

#include <catch2/catch.hpp>

#include <string>

using sluice::detail::id_scan_kind;
using sluice::detail::scan_custom_id;

namespace {

std::string found(std::string_view line) {
    const auto s = scan_custom_id(line);
    return s.kind == id_scan_kind::found ? std::string(s.id) : "(not found)";
}

id_scan_kind kind(std::string_view line) {
    return scan_custom_id(line).kind;
}

} // namespace

TEST_CASE("scan_custom_id reads the first top-level custom_id, wherever it stands") {
    CHECK(found(R"({"custom_id":"r1","method":"POST","body":{"model":"m"}})") == "r1");
    CHECK(found(R"( { "custom_id" :	"r 2" } )") == "r 2");
    CHECK(
        found(
            R"({"method":"POST","body":{"custom_id":"inner","a":[1,{"b":"}"}]},"custom_id":"outer"})") ==
        "outer");
    CHECK(found(R"({"prompt":"say \"custom_id\":\"no\"","custom_id":"yes"})") == "yes");
    CHECK(found(R"({"n":-1.5e3,"t":true,"z":null,"custom_id":"after-scalars"})") ==
          "after-scalars");
    CHECK(found(R"({"custom_id":"first","custom_id":"second"})") == "first");
    CHECK(found(R"({"custom_id":"ünï"})") == "ünï");
}

TEST_CASE("scan_custom_id says absent only after reading the whole top level") {
    CHECK(kind("{}") == id_scan_kind::absent);
    CHECK(kind(R"({"body":{"custom_id":"inner"},"custom_ids":"x"})") == id_scan_kind::absent);
    CHECK(kind(R"({"messages":[{"content":"\"custom_id\":\"x\""}]})") == id_scan_kind::absent);
}

TEST_CASE("scan_custom_id is unsure wherever the checked id could differ") {
    CHECK(kind(R"({"custom\u005fid":"a"})") == id_scan_kind::unsure); // an escaped key
    CHECK(kind(R"({"a\"b":1,"custom_id":"a"})") == id_scan_kind::unsure);
    CHECK(kind(R"({"custom_id":"a\u002db"})") == id_scan_kind::unsure); // an escaped value
    CHECK(kind(R"({"custom_id":""})") == id_scan_kind::unsure);
    CHECK(kind(R"({"custom_id":5})") == id_scan_kind::unsure);
    CHECK(kind(R"({"custom_id":null})") == id_scan_kind::unsure);
    CHECK(kind(R"([{"custom_id":"a"}])") == id_scan_kind::unsure);
    CHECK(kind(R"("custom_id")") == id_scan_kind::unsure);
    CHECK(kind("") == id_scan_kind::unsure);
    CHECK(kind("not json") == id_scan_kind::unsure);
    // Cut anywhere before the id's closing quote.
    const std::string line = R"({"body":{"a":"}"},"custom_id":"abc"})";
    for (std::size_t n = 0; n < line.find("abc") + 4; ++n)
        CHECK(kind(std::string_view(line).substr(0, n)) == id_scan_kind::unsure);
}
