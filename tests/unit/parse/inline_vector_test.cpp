#include <sluice/inline_vector.hpp>
#include <sluice/result.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

using sluice::inline_vector;

// A completion's choices: one held in place, and a response with `n` > 1 still reads every
// choice, in order, as a vector would.
TEST_CASE("an inline vector keeps order across the move to the heap") {
    inline_vector<std::string, 1> v;
    CHECK(v.empty());
    v.push_back("first, long enough to live on the heap of a std::string");
    CHECK(v.size() == 1);
    v.push_back(v[0]); // an element of its own, as the elements move to the heap
    v.emplace_back("second");
    REQUIRE(v.size() == 3);
    CHECK(v.front() == "first, long enough to live on the heap of a std::string");
    CHECK(v[1] == v.front());
    CHECK(v.back() == "second");
    std::string joined;
    for (const auto& s : v)
        joined += s.substr(0, 1);
    CHECK(joined == "ffs");
    CHECK_THROWS_AS(v.at(3), std::out_of_range);
}

TEST_CASE("an inline vector clears, resizes, copies and moves") {
    inline_vector<std::string, 2> v{"a", "b", "c"};
    inline_vector<std::string, 2> copy = v;
    CHECK(copy == v);
    inline_vector<std::string, 2> moved = std::move(copy);
    CHECK(moved == v);
    CHECK(copy.empty()); // NOLINT(bugprone-use-after-move): moved-from is empty
    v.resize(1);
    REQUIRE(v.size() == 1);
    CHECK(v[0] == "a");
    v.clear();
    CHECK(v.empty());
    v.resize(2);
    CHECK(v.size() == 2);
    CHECK(v[1].empty()); // reset, not the old "b"

    inline_vector<std::string, 2> small{"x"};
    inline_vector<std::string, 2> target{"p", "q", "r"};
    target = std::move(small);
    REQUIRE(target.size() == 1);
    CHECK(target[0] == "x");
}

TEST_CASE("a completion's id and first choice are held in place") {
    sluice::completion c;
    c.id = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT";
    auto& ch = c.choices.emplace_back();
    ch.content = "Hello";
    const auto* inside = reinterpret_cast<const char*>(&c);
    const auto* first = reinterpret_cast<const char*>(&c.choices[0]);
    CHECK(first >= inside);
    CHECK(first < inside + sizeof(c));
    CHECK(c.id.data() >= inside);
    CHECK(c.id.data() < inside + sizeof(c));
    CHECK(c.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
}
