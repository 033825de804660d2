// The engine's timing on a manual clock: admission pacing, settlement, 429 holds and retry
// delays happen at the exact moment the rules say, against a real server on 127.0.0.1 whose
// every answer the test scripts. No wall-clock window is asserted: time moves only when the
// test moves it, and "nothing happens before moment T" is checked by moving to T - 1 ns.
#include "support/loopback.hpp"
#include "support/script_server.hpp"

#include <sluice/dispatcher.hpp>
#include <sluice/engine_clock.hpp>

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace engine_timing_test {

using namespace sluice;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

using time_point = engine_clock::time_point;

const std::string ok_answer = test::http_answer("200 OK", "", test::completion_with_usage(10));

std::string rate_limited_answer(std::string_view headers) {
    return test::http_answer(
        "429 Too Many Requests",
        headers,
        R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})");
}

// A dispatcher on a manual clock and its own loop, with the results in delivery order.
struct timed_engine {
    explicit timed_engine(dispatcher_options o) {
        o.clock = clock;
        engine.emplace(ioc.get_executor(), std::move(o));
    }
    ~timed_engine() {
        // The clock holds the handlers of armed timers: stop, and let the loop run them.
        engine->stop(false);
        engine.reset();
        ioc.restart();
        ioc.run_for(200ms);
    }

    void submit(std::string id,
                std::uint64_t cost,
                std::optional<std::chrono::milliseconds> deadline = std::nullopt) {
        request r;
        r.custom_id = std::move(id);
        r.body = test::chat_body(0, 16);
        r.token_cost = cost;
        r.deadline = deadline;
        engine->async_complete(
            std::move(r), [this](error_code, result res) { results.push_back(std::move(res)); });
    }

    // Runs the loop until `done` holds. The bound is real time, generous, and only decides
    // when a test that would otherwise hang fails.
    bool run_until(const std::function<bool()>& done) {
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        while (!done()) {
            if (std::chrono::steady_clock::now() > give_up)
                return false;
            ioc.restart();
            ioc.run_for(1ms);
        }
        return true;
    }

    // Runs everything ready now, without waiting for the network.
    void poll() {
        ioc.restart();
        ioc.poll();
    }

    std::uint64_t admitted() const { return engine->stats().admitted; }
    time_point wake() const { return clock->next_wake().value_or(time_point{}); }

    // Declared first: it outlives the loop and the engine, whose timers refer to it.
    std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
    asio::io_context ioc;
    std::optional<dispatcher> engine;
    std::vector<result> results;
    const time_point t0 = clock->now();
};

dispatcher_options options_for(const test::script_server& server) {
    dispatcher_options o;
    o.base_url = server.base_url();
    return o;
}

} // namespace

TEST_CASE("RPM admission paces to the nanosecond on the engine clock") {
    test::script_server server([](int, std::string_view) { return ok_answer; });
    auto opts = options_for(server);
    opts.limits.rpm = 600; // 10 a second, a bucket of one second: 10
    timed_engine t(opts);
    for (int i = 0; i < 25; ++i)
        t.submit(std::to_string(i), 1);

    // The full bucket goes at once; the 11th waits for one request's refill: 100 ms.
    REQUIRE(t.run_until([&] { return t.results.size() == 10 && t.clock->waiting() == 1; }));
    CHECK(server.requests() == 10);
    CHECK(t.wake() == t.t0 + 100ms);

    t.clock->advance(100ms - 1ns);
    t.poll();
    CHECK(t.admitted() == 10);

    t.clock->advance(1ns);
    REQUIRE(t.run_until([&] { return t.results.size() == 11 && t.clock->waiting() == 1; }));
    CHECK(t.wake() == t.t0 + 200ms);

    // Two seconds of refill fill the bucket once, not twice: ten more, and the rest wait.
    t.clock->set(t.t0 + 2s);
    REQUIRE(t.run_until([&] { return t.results.size() == 21 && t.clock->waiting() == 1; }));
    CHECK(server.requests() == 21);
    CHECK(t.wake() == t.t0 + 2s + 100ms);
    for (const result& r : t.results)
        CHECK(r.ok());
}

TEST_CASE("usage in an answer settles the estimate, and the refund admits the next request") {
    test::script_server server([](int, std::string_view) { return ok_answer; }); // usage 10
    auto opts = options_for(server);
    opts.limits.tpm = 6000; // 100 tokens a second, a bucket of 100
    timed_engine t(opts);
    for (int i = 0; i < 4; ++i)
        t.submit(std::to_string(i), 40);

    // 40 + 40 go out, 20 left; each answer's usage of 10 gives 30 back, which pays for the
    // third and then the fourth, with the clock never moved.
    REQUIRE(t.run_until([&] { return t.results.size() == 4; }));
    CHECK(server.requests() == 4);
    CHECK(t.clock->now() == t.t0);
}

TEST_CASE("the server's x-ratelimit-remaining-tokens takes precedence over usage") {
    test::script_server server([](int, std::string_view) {
        return test::http_answer("200 OK",
                                 "x-ratelimit-limit-tokens: 6000\r\n"
                                 "x-ratelimit-remaining-tokens: 0\r\n",
                                 test::completion_with_usage(10));
    });
    auto opts = options_for(server);
    opts.limits.tpm = 6000;
    opts.pool.max_connections = 1;
    timed_engine t(opts);
    t.submit("a", 40);
    t.submit("b", 40);

    // Usage alone would leave 90 and send b at once; the server says 0 are left, so b waits
    // for 40 tokens of refill: 400 ms.
    REQUIRE(t.run_until([&] { return t.results.size() == 1 && t.clock->waiting() == 1; }));
    CHECK(t.wake() == t.t0 + 400ms);
    t.clock->advance(400ms - 1ns);
    t.poll();
    CHECK(t.admitted() == 1);
    t.clock->advance(1ns);
    REQUIRE(t.run_until([&] { return t.results.size() == 2; }));
    CHECK(t.results[1].ok());
}

TEST_CASE("usage above the estimate is not charged when the server says what remains") {
    // The answer used 90 tokens against an estimate of 40, and the server still has its whole
    // bucket: its view wins, so the 50 are not taken again and b goes at once (from usage
    // alone, b would wait 300 ms for the 10 left to reach 40).
    test::script_server server([](int, std::string_view) {
        return test::http_answer("200 OK",
                                 "x-ratelimit-limit-tokens: 6000\r\n"
                                 "x-ratelimit-remaining-tokens: 100\r\n",
                                 test::completion_with_usage(90));
    });
    auto opts = options_for(server);
    opts.limits.tpm = 6000;
    opts.pool.max_connections = 1;
    timed_engine t(opts);
    t.submit("a", 40);
    t.submit("b", 40);
    REQUIRE(t.run_until([&] { return t.results.size() == 2 || t.clock->waiting() == 1; }));
    CHECK(t.results.size() == 2);
    CHECK(t.clock->now() == t.t0);
}

TEST_CASE("a 429 holds its whole scope until the hint and spends no retry budget") {
    test::script_server server([](int n, std::string_view) {
        return n == 0 ? rate_limited_answer("retry-after-ms: 700\r\n") : ok_answer;
    });
    auto opts = options_for(server);
    opts.retry.budget_ratio = 0; // no retry budget at all: only a 429 may still be retried
    opts.retry.budget_min_per_second = 0;
    timed_engine t(opts);
    t.submit("a", 1);
    REQUIRE(t.run_until([&] { return server.requests() == 1 && t.clock->waiting() == 1; }));
    CHECK(t.wake() == t.t0 + 700ms);

    // Submitted during the hold: it waits for the same moment, though nothing else limits it.
    t.submit("b", 1);
    t.poll();
    t.clock->advance(700ms - 1ns);
    t.poll();
    CHECK(t.admitted() == 1);
    CHECK(t.results.empty());

    t.clock->advance(1ns);
    REQUIRE(t.run_until([&] { return t.results.size() == 2; }));
    CHECK(server.requests() == 3);
    for (const result& r : t.results) {
        CHECK(r.ok());
        CHECK(r.attempts == (r.custom_id == "a" ? 2u : 1u));
    }
    CHECK(t.engine->stats().rate_limited == 1);
}

TEST_CASE("a 429 without hint or limits paces the scope at the rate the server delivered") {
    // Two answers taken, then a bare 429: the scope's rate becomes 0.9 x 2 a second (the
    // delivered rate over the one-second window), and its pacing bucket starts empty.
    test::script_server server(
        [](int n, std::string_view) { return n == 2 ? rate_limited_answer("") : ok_answer; });
    auto opts = options_for(server); // no limits: nothing configured, nothing in the headers
    opts.pool.max_connections = 1;
    opts.retry.initial_backoff = 0ms; // the 429's retry is ready at once: only pacing waits
    std::vector<std::string> logged;
    opts.log.sink = [&](log_level, std::string_view m) {
        logged.emplace_back(m);
    };
    timed_engine t(opts);
    for (const char* id : {"a", "b", "c", "d"})
        t.submit(id, 1);
    REQUIRE(t.run_until([&] { return server.requests() == 3 && t.clock->waiting() == 1; }));
    CHECK(t.results.size() == 2);
    const double rpm = t.engine->stats().scopes.at("").adaptive_rpm;
    CHECK(rpm == Approx(0.9 * 2 * 60));
    // One request's interval at that rate, to the tick the bucket's arithmetic gives.
    const auto wake = t.wake();
    CHECK(std::chrono::duration<double>(wake - t.t0).count() == Approx(60 / rpm).epsilon(1e-9));
    t.clock->set(wake - 1ns);
    t.poll();
    CHECK(t.admitted() == 3);
    t.clock->set(wake);
    REQUIRE(t.run_until([&] { return server.requests() == 4 && t.clock->waiting() == 1; }));
    // The retried "c" went first; "d" waits for the next interval, the rate grown a little.
    CHECK(t.wake() > wake + std::chrono::milliseconds(500));
    t.clock->set(t.wake());
    REQUIRE(t.run_until([&] { return t.results.size() == 4; }));
    for (const result& r : t.results)
        CHECK(r.ok());
    CHECK(t.engine->stats().rate_limited == 1);
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("finding the rate from the 429s, starting at 108 requests/min") !=
          std::string::npos);
}

TEST_CASE("a 5xx spends retry budget: with none left the request fails at once") {
    test::script_server server([](int, std::string_view) {
        return test::http_answer("500 Internal Server Error",
                                 "",
                                 R"({"error":{"message":"boom","type":"server_error"}})");
    });
    auto opts = options_for(server);
    opts.retry.budget_ratio = 0;
    opts.retry.budget_min_per_second = 0;
    timed_engine t(opts);
    t.submit("a", 1);
    REQUIRE(t.run_until([&] { return t.results.size() == 1; }));
    CHECK(t.results[0].ec == errc::retry_budget_exhausted);
    CHECK(t.results[0].attempts == 1);
    CHECK(t.results[0].message.rfind("retry budget spent; last failure: HTTP 500: boom", 0) == 0);
    CHECK(server.requests() == 1);
}

TEST_CASE("a 5xx is retried at the moment its backoff ends, on the engine clock") {
    test::script_server server([](int n, std::string_view) {
        return n == 0 ? test::http_answer("503 Service Unavailable", "", "{}") : ok_answer;
    });
    auto opts = options_for(server);
    opts.retry.initial_backoff = 400ms;
    timed_engine t(opts);
    t.submit("a", 1);
    REQUIRE(t.run_until([&] { return server.requests() == 1 && t.clock->waiting() == 1; }));
    // Full jitter: anywhere in [0, initial_backoff].
    const auto at = t.wake();
    CHECK(at >= t.t0);
    CHECK(at <= t.t0 + 400ms);
    if (at > t.t0) {
        t.clock->set(at - 1ns);
        t.poll();
        CHECK(t.admitted() == 1);
    }
    t.clock->set(at);
    REQUIRE(t.run_until([&] { return t.results.size() == 1; }));
    CHECK(t.results[0].ok());
    CHECK(t.results[0].attempts == 2);
}

TEST_CASE("a stop during a retry wait records the line as stopped without waiting it out") {
    test::script_server server(
        [](int, std::string_view) { return rate_limited_answer("retry-after-ms: 60000\r\n"); });
    timed_engine t(options_for(server));
    t.submit("a", 1);
    REQUIRE(t.run_until([&] { return server.requests() == 1 && t.clock->waiting() >= 1; }));
    t.engine->stop();
    REQUIRE(t.run_until([&] { return t.results.size() == 1; }));
    CHECK(t.results[0].ec == errc::stopped);
    CHECK(t.results[0].message.rfind("stopped before retrying; last failure: HTTP 429", 0) == 0);
    CHECK(t.clock->now() == t.t0);
}

TEST_CASE("limits learned from the server's headers pace the next request exactly") {
    test::script_server server([](int, std::string_view) {
        return test::http_answer("200 OK",
                                 "x-ratelimit-limit-requests: 600\r\n"
                                 "x-ratelimit-remaining-requests: 0\r\n",
                                 test::completion_with_usage(10));
    });
    auto opts = options_for(server); // no limits configured: learned
    opts.pool.max_connections = 1;
    std::vector<std::string> logged;
    opts.log.sink = [&](log_level, std::string_view m) {
        logged.emplace_back(m);
    };
    timed_engine t(opts);
    t.submit("a", 1);
    t.submit("b", 1);
    // 600 a minute is one per 100 ms, and the server says none is left.
    REQUIRE(t.run_until([&] { return t.results.size() == 1 && t.clock->waiting() == 1; }));
    CHECK(t.wake() == t.t0 + 100ms);
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].rfind("using the server's rate limits: 600 requests/min, no token limit", 0) ==
          0);
    t.clock->advance(100ms);
    REQUIRE(t.run_until([&] { return t.results.size() == 2; }));
    CHECK(logged.size() == 1); // said once per scope
}

TEST_CASE(
    "a retry whose wait ends before the deadline is made, and one ending at it fails at once") {
    test::script_server server(
        [](int, std::string_view) { return rate_limited_answer("retry-after-ms: 400\r\n"); });
    auto opts = options_for(server);
    opts.retry.max_attempts = 10;
    std::chrono::milliseconds deadline{0};
    unsigned attempts = 0;
    SECTION("deadline 1200 ms: the wait from 800 ms would end at it") {
        deadline = 1200ms;
        attempts = 3;
    }
    SECTION("deadline 1201 ms: the wait from 800 ms ends 1 ms before it") {
        deadline = 1201ms;
        attempts = 4;
    }
    opts.deadline = deadline;
    timed_engine t(opts);
    t.submit("a", 1);
    for (unsigned n = 1; n < attempts; ++n) {
        REQUIRE(
            t.run_until([&] { return server.requests() == int(n) && t.clock->waiting() >= 1; }));
        CHECK(t.results.empty());
        CHECK(t.wake() == t.t0 + n * 400ms);
        t.clock->set(t.wake());
    }
    REQUIRE(t.run_until([&] { return t.results.size() == 1; }));
    // Failed the moment the last 429 came, at (attempts - 1) x 400 ms: no wait to the hint.
    CHECK(t.clock->now() == t.t0 + (attempts - 1) * 400ms);
    const result& r = t.results[0];
    CHECK(r.ec == errc::deadline_exceeded);
    CHECK(std::string(error_kind(r.ec)) == "deadline_exceeded");
    CHECK(r.attempts == attempts);
    CHECK(server.requests() == int(attempts));
    INFO(r.message);
    CHECK(r.message.rfind("deadline exceeded: the request's deadline of " +
                              std::to_string(deadline.count()) +
                              " ms would pass before the next attempt (a wait of 400 ms, ",
                          0) == 0);
    CHECK(r.message.find("; last failure: HTTP 429: Rate limit reached") != std::string::npos);
}

TEST_CASE("a request the rate limits would admit only after its deadline fails at once, unsent") {
    test::script_server server([](int, std::string_view) { return ok_answer; });
    auto opts = options_for(server);
    opts.limits.rpm = 60; // one a second, a bucket of one
    timed_engine t(opts);
    t.submit("a", 1);
    t.submit("late", 1, 1000ms);    // its turn comes at 1 s: at its deadline
    // Its turn comes at 1 s, once "late" is gone, with 5 s left: the exchange runs on the
    // steady clock with what is left of the deadline, and 1 ms would fail on a loaded machine.
    t.submit("in time", 1, 6000ms);
    REQUIRE(t.run_until([&] { return t.results.size() == 2 && t.clock->waiting() == 1; }));
    CHECK(t.clock->now() == t.t0);
    CHECK(t.wake() == t.t0 + 1s);
    CHECK(server.requests() == 1);
    const result& late = t.results[0].custom_id == "late" ? t.results[0] : t.results[1];
    CHECK(late.custom_id == "late");
    CHECK(late.ec == errc::deadline_exceeded);
    CHECK(late.attempts == 0);
    CHECK(late.message ==
          "deadline exceeded: the request's deadline of 1000 ms would pass before the rate "
          "limits admit it (a wait of 1000 ms, 1000 ms left)");
    t.clock->set(t.t0 + 1s);
    REQUIRE(t.run_until([&] { return t.results.size() == 3; }));
    CHECK(t.results[2].custom_id == "in time");
    CHECK(t.results[2].ok());
    CHECK(server.requests() == 2);
}

} // namespace engine_timing_test
