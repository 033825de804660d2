#include <sluice/sink/reorder_buffer.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using sluice::reorder_buffer;

TEST_CASE("items put in any order come out in issue order") {
    reorder_buffer<std::string> buf(8);
    const auto a = buf.issue();
    const auto b = buf.issue();
    const auto c = buf.issue();
    buf.put(c, "c");
    CHECK_FALSE(buf.pop()); // a has not arrived: nothing may overtake it
    buf.put(a, "a");
    CHECK(buf.pop() == "a");
    CHECK_FALSE(buf.pop());
    buf.put(b, "b");
    CHECK(buf.pop() == "b");
    CHECK(buf.pop() == "c");
    CHECK_FALSE(buf.pop());
    CHECK(buf.outstanding() == 0);
}

TEST_CASE("the window bounds what is held while the oldest item is missing") {
    reorder_buffer<int> buf(3);
    const auto first = buf.issue();
    buf.put(buf.issue(), 1);
    buf.put(buf.issue(), 2);
    CHECK(buf.full());
    CHECK(buf.outstanding() == 3);
    buf.put(first, 0);
    CHECK(buf.pop() == 0);
    CHECK_FALSE(buf.full());
}

TEST_CASE("a random completion order over many items is restored exactly") {
    constexpr int n = 10'000;
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 rng(7);
    reorder_buffer<int> buf(64);
    std::vector<int> out;
    std::vector<std::uint64_t> in_flight;
    int next = 0;
    while (static_cast<int>(out.size()) < n) {
        while (next < n && !buf.full())
            in_flight.push_back(buf.issue()), ++next;
        // Finish a random outstanding item.
        std::uniform_int_distribution<std::size_t> pick(0, in_flight.size() - 1);
        const std::size_t i = pick(rng);
        const auto seq = in_flight[i];
        in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(i));
        buf.put(seq, static_cast<int>(seq));
        while (auto v = buf.pop())
            out.push_back(*v);
        CHECK(buf.outstanding() <= 64);
    }
    CHECK(out == order);
}

TEST_CASE("misuse is reported, not silently reordered") {
    CHECK_THROWS_AS(reorder_buffer<int>(0), std::invalid_argument);
    reorder_buffer<int> buf(2);
    const auto s = buf.issue();
    buf.put(s, 1);
    CHECK_THROWS_AS(buf.put(s, 2), std::logic_error);
    CHECK_THROWS_AS(buf.put(5, 2), std::logic_error);
}
