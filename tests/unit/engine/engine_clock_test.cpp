// manual_clock: the clock the engine's exact timing tests (and an embedder's) run on.
#include <sluice/engine_clock.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;

namespace {
// Runs what is ready; a loop that ran out of work must be restarted to run again.
void poll(boost::asio::io_context& ioc) {
    ioc.restart();
    ioc.poll();
}
} // namespace

TEST_CASE("manual_clock fires timers when it reaches their moment, earliest first") {
    boost::asio::io_context ioc;
    manual_clock clock;
    const auto t0 = clock.now();
    std::vector<std::string> fired;
    auto late = clock.make_timer(ioc.get_executor());
    auto early = clock.make_timer(ioc.get_executor());
    late->async_wait_until(t0 + 20ms,
                           [&](error_code ec) { fired.push_back("late " + ec.message()); });
    early->async_wait_until(t0 + 10ms, [&](error_code ec) { fired.push_back(ec ? "x" : "early"); });
    CHECK(clock.waiting() == 2);
    CHECK(clock.next_wake() == t0 + 10ms);

    clock.advance(10ms - 1ns);
    poll(ioc);
    CHECK(fired.empty());
    clock.advance(11ms);  // both due: posted in moment order
    CHECK(fired.empty()); // never called from inside advance
    poll(ioc);
    REQUIRE(fired.size() == 2);
    CHECK(fired[0] == "early");
    CHECK(fired[1] == "late Success");
    CHECK(clock.waiting() == 0);
    CHECK_FALSE(clock.next_wake());
}

TEST_CASE("manual_clock: a cancelled or destroyed timer completes with operation_aborted") {
    boost::asio::io_context ioc;
    manual_clock clock;
    std::vector<error_code> results;
    auto a = clock.make_timer(ioc.get_executor());
    auto b = clock.make_timer(ioc.get_executor());
    a->async_wait_until(clock.now() + 1s, [&](error_code ec) { results.push_back(ec); });
    b->async_wait_until(clock.now() + 1s, [&](error_code ec) { results.push_back(ec); });
    a->cancel();
    b.reset();
    CHECK(clock.waiting() == 0);
    poll(ioc);
    REQUIRE(results.size() == 2);
    CHECK(results[0] == boost::asio::error::operation_aborted);
    CHECK(results[1] == boost::asio::error::operation_aborted);
    clock.advance(2s);
    poll(ioc);
    CHECK(results.size() == 2); // nothing fires twice
}

TEST_CASE("manual_clock: a moment already past fires at once, and set never goes back") {
    boost::asio::io_context ioc;
    manual_clock clock;
    const auto t0 = clock.now();
    int fired = 0;
    auto t = clock.make_timer(ioc.get_executor());
    t->async_wait_until(t0 - 1s, [&](error_code ec) { fired += !ec; });
    poll(ioc);
    CHECK(fired == 1);
    clock.set(t0 - 1h);
    CHECK(clock.now() == t0);
    // Re-arming replaces the wait: the first handler is aborted, the second fires.
    std::vector<error_code> results;
    t->async_wait_until(t0 + 5ms, [&](error_code ec) { results.push_back(ec); });
    t->async_wait_until(t0 + 6ms, [&](error_code ec) { results.push_back(ec); });
    clock.set(t0 + 6ms);
    poll(ioc);
    REQUIRE(results.size() == 2);
    CHECK(results[0] == boost::asio::error::operation_aborted);
    CHECK_FALSE(results[1]);
}

TEST_CASE("the steady engine clock waits on the steady clock") {
    boost::asio::io_context ioc;
    auto clock = steady_engine_clock();
    const auto start = std::chrono::steady_clock::now();
    CHECK(clock->now() >= start);
    bool fired = false;
    auto t = clock->make_timer(ioc.get_executor());
    t->async_wait_until(clock->now() + 5ms, [&](error_code ec) { fired = !ec; });
    ioc.run();
    CHECK(fired);
    CHECK(std::chrono::steady_clock::now() - start >= 5ms);
}
