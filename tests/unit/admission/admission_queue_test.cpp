#include "support/manual_clock.hpp"

#include <sluice/admission/admission_queue.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

using queue = admission_queue<std::string>;
using duration = queue::duration;

// Drives the queue as the dispatcher does: admit what can go, else sleep exactly the answer.
std::vector<std::pair<std::string, duration>> run(queue& q, test::manual_clock& clock) {
    std::vector<std::pair<std::string, duration>> admitted;
    const auto start = clock.now();
    for (;;) {
        auto step = q.next(clock.now());
        if (std::holds_alternative<queue::empty>(step))
            return admitted;
        if (auto* wait = std::get_if<duration>(&step))
            clock.advance(*wait);
        else
            admitted.emplace_back(std::get<std::string>(step), clock.now() - start);
    }
}

limit_options tpm(double limit) {
    limit_options o;
    o.tpm = limit;
    return o;
}

} // namespace

TEST_CASE("mixed costs are admitted in order: a big request is not starved") {
    test::manual_clock clock;
    queue q(tpm(6000), clock.now()); // 100 tokens a second, bucket of 100
    q.push_back("first", 60);
    q.push_back("big", 150);
    for (int i = 0; i < 3; ++i)
        q.push_back("small" + std::to_string(i), 10);
    const auto admitted = run(q, clock);
    REQUIRE(admitted.size() == 5);
    CHECK(admitted[0] == std::pair<std::string, duration>("first", duration::zero()));
    // The smalls could have gone at once (40 tokens were left); they wait behind "big", which
    // goes when the bucket is full (0.6 s) and leaves a debt of 50 tokens.
    CHECK(admitted[1].first == "big");
    CHECK(admitted[1].second == std::chrono::duration_cast<duration>(600ms));
    CHECK(admitted[2].first == "small0");
    CHECK(admitted[2].second == std::chrono::duration_cast<duration>(1200ms));
    CHECK(admitted[3].second == std::chrono::duration_cast<duration>(1300ms));
    CHECK(admitted[4].first == "small2");
}

TEST_CASE("a retry pushed to the front goes before the line") {
    test::manual_clock clock;
    queue q(tpm(0), clock.now());
    q.push_back("a", 1);
    q.push_back("b", 1);
    q.push_front("retry", 1);
    const auto admitted = run(q, clock);
    REQUIRE(admitted.size() == 3);
    CHECK(admitted[0].first == "retry");
    CHECK(admitted[1].first == "a");
}

TEST_CASE("drain hands back the waiting items in order") {
    test::manual_clock clock;
    queue q(tpm(60), clock.now());
    q.push_back("x", 1);
    q.push_back("y", 1);
    const auto items = q.drain();
    REQUIRE(items.size() == 2);
    CHECK(items[0] == "x");
    CHECK(q.is_empty());
    CHECK(std::holds_alternative<queue::empty>(q.next(clock.now())));
}
