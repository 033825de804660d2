// The engine against the mock server over loopback: every request ends in exactly one result.
#include "support/loopback.hpp"

#include <sluice/dispatcher.hpp>
#include <sluice/engine_clock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
// GCC 12 at -O1 (the sanitizer build) warns that Asio's promise_handler "may be used
// uninitialized" inside this header: a false positive in code we do not own.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/asio/use_future.hpp>
#pragma GCC diagnostic pop

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace dispatcher_test {

using namespace sluice;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct run_outcome {
    std::map<std::string, int> delivered; // custom_id -> deliveries
    std::map<std::string, result> last;
    stats_snapshot stats;
};

// Submits `n` requests with callbacks and runs the loop until every result is in.
run_outcome run_batch(dispatcher_options opts, int n) {
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), opts);
    run_outcome out;
    int remaining = n;
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = "r" + std::to_string(i);
        req.body = test::chat_body(i);
        engine.async_complete(std::move(req), [&](error_code ec, result r) {
            CHECK(ec == r.ec);
            ++out.delivered[r.custom_id];
            out.last[r.custom_id] = std::move(r);
            if (--remaining == 0)
                engine.stop();
        });
    }
    ioc.run();
    out.stats = engine.stats();
    return out;
}

void require_each_once(const run_outcome& out, int n) {
    REQUIRE(out.delivered.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : out.delivered)
        REQUIRE(count == 1);
}

} // namespace

TEST_CASE("10,000 requests over verified TLS each end in exactly one success") {
    test::loopback_mock mock(test::mock_with_tls());
    auto opts = mock.client_options();
    const int n = 10'000;
    const auto out = run_batch(opts, n);
    require_each_once(out, n);
    CHECK(out.stats.succeeded == n);
    CHECK(out.stats.failed == 0);
    CHECK(mock.server().stats().ok == n);
    // Keep-alive: far fewer connections than requests.
    CHECK(mock.server().stats().connections <= opts.pool.max_connections);
    const result& r = out.last.at("r42");
    REQUIRE(r.ok());
    CHECK(r.status == 200);
    CHECK(r.attempts == 1);
    REQUIRE(r.completion.choices.size() == 1);
    CHECK(r.completion.choices[0].content.has_value());
    REQUIRE(r.completion.usage);
    CHECK(r.completion.usage->prompt_tokens > 0);
    CHECK_FALSE(r.request_id.empty());
    CHECK(r.body.find("chat.completion") != std::string::npos);
    CHECK(out.stats.prompt_tokens > 0);
    CHECK(out.stats.latency.count() == static_cast<std::uint64_t>(n));
}

TEST_CASE("with 5% of each transient fault, every request ends in exactly one result") {
    mock_options mo;
    mo.tls = true;
    mo.seed = 7;
    mo.faults.http_500 = 0.05;
    mo.faults.http_503 = 0.05;
    mo.faults.reset = 0.05;
    mo.faults.truncated = 0.05;
    mo.faults.malformed = 0.05;
    mo.faults.slow = 0.05;
    mo.faults.slow_delay = std::chrono::milliseconds(20);
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.retry.initial_backoff = std::chrono::milliseconds(1);
    opts.retry.max_backoff = std::chrono::milliseconds(5);
    opts.retry.max_retry_after = std::chrono::milliseconds(5);
    opts.retry.budget_ratio = 1.0; // a 30% fault rate is beyond the default budget, on purpose
    const int n = 2'000;
    const auto out = run_batch(opts, n);
    require_each_once(out, n);
    CHECK(out.stats.succeeded + out.stats.failed == static_cast<std::uint64_t>(n));
    CHECK(out.stats.retries > 0);
    // With five attempts and a 25% chance of a fault per attempt, nearly all succeed. A
    // garbled answer is retried once only, so a second one on a later attempt (about 0.3 x
    // 0.05 of the requests) is final.
    CHECK(out.stats.succeeded >= static_cast<std::uint64_t>(n) * 97 / 100);
    for (const auto& [id, r] : out.last) {
        if (!r.ok()) {
            INFO(id << ": " << r.message);
            CHECK(is_retryable(r.ec));
            if (r.ec == errc::malformed_response) {
                CHECK(r.attempts >= 2);
                CHECK(r.attempts <= opts.retry.max_attempts);
            } else {
                CHECK(r.attempts == opts.retry.max_attempts);
            }
            CHECK_FALSE(r.message.empty());
        }
    }
    const auto ms = mock.server().stats();
    CHECK(ms.resets > 0);
    CHECK(ms.truncated > 0);
    CHECK(ms.malformed > 0);
    CHECK(ms.server_errors > 0);
}

TEST_CASE("a server that closes the connection every 5 requests loses nothing") {
    mock_options mo = test::mock_with_tls();
    mo.close_every = 5;
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.pool.max_connections = 8;
    const int n = 3'000;
    const auto out = run_batch(opts, n);
    require_each_once(out, n);
    CHECK(out.stats.succeeded == n);
    CHECK(mock.server().stats().connections >= n / 5);
}

TEST_CASE("a malformed body becomes an error result naming the failure") {
    mock_options mo;
    mo.faults.malformed = 1.0;
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.retry.max_attempts = 2;
    opts.retry.initial_backoff = std::chrono::milliseconds(1);
    const auto out = run_batch(opts, 3);
    require_each_once(out, 3);
    for (const auto& [id, r] : out.last) {
        CHECK(r.ec == errc::malformed_response);
        CHECK(r.status == 200);
        CHECK(r.attempts == 2);
        CHECK(r.message.find("HTTP 200") != std::string::npos);
    }
}

TEST_CASE("insufficient_quota stops admission and the rest are not attempted") {
    mock_options mo;
    mo.faults.insufficient_quota = 1.0;
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.pool.max_connections = 2;
    opts.limits.rpm = 600; // 10 per second: the rest are still queued when the 429 comes
    std::vector<std::pair<log_level, std::string>> logged;
    opts.log.sink = [&](log_level level, std::string_view m) {
        logged.emplace_back(level, m);
    };
    const int n = 50;
    const auto out = run_batch(opts, n);
    // The stop is said once, through the logger: the library prints nothing itself.
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].first == log_level::error);
    CHECK(logged[0].second.rfind("quota exhausted: retrying cannot help (HTTP 429: ", 0) == 0);
    CHECK(logged[0].second.find("; no further requests are sent") != std::string::npos);
    require_each_once(out, n);
    int quota = 0, not_attempted = 0;
    for (const auto& [id, r] : out.last) {
        if (r.ec == errc::quota_exhausted)
            ++quota;
        else if (r.ec == errc::not_attempted)
            ++not_attempted;
        else
            FAIL("unexpected outcome " << r.ec.message());
    }
    CHECK(quota >= 1);
    CHECK(not_attempted >= n - 20);
    CHECK(mock.server().stats().requests == static_cast<std::uint64_t>(quota));
}

TEST_CASE("a full queue fails submissions clearly with the fail policy") {
    test::loopback_mock mock;
    auto opts = mock.client_options();
    opts.queue_limit = 4;
    opts.on_full = overflow_policy::fail;
    const auto out = run_batch(opts, 20);
    require_each_once(out, 20);
    const auto full = std::count_if(out.last.begin(), out.last.end(), [](const auto& kv) {
        return kv.second.ec == errc::queue_full;
    });
    CHECK(full == 16);
    CHECK(out.stats.succeeded == 4);
}

TEST_CASE("a full queue makes submissions wait with the wait policy") {
    mock_options mo;
    mo.latency = std::chrono::milliseconds(5); // answers overlap: the queue fills
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.queue_limit = 4;
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), opts);
    const int n = 200;
    int delivered = 0, ok = 0;
    std::uint64_t most_in_flight = 0;
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = "w" + std::to_string(i);
        req.body = test::chat_body(i);
        engine.async_submit(req, [&](result r) {
            // Never more accepted than the limit, though 64 connections were free: the
            // others waited (with the fail policy they would have been refused).
            most_in_flight = std::max(most_in_flight, engine.stats().in_flight);
            ok += r.ok();
            if (++delivered == n)
                engine.stop();
        });
    }
    ioc.run();
    CHECK(ok == n);
    CHECK(most_in_flight <= 4);
    CHECK(most_in_flight >= 2);
    CHECK(mock.server().stats().requests == static_cast<std::uint64_t>(n));
}

TEST_CASE("async_complete works with use_future from another thread") {
    test::loopback_mock mock(test::mock_with_tls());
    asio::io_context ioc;
    auto work = asio::make_work_guard(ioc);
    std::thread loop([&] { ioc.run(); });
    {
        dispatcher engine(ioc.get_executor(), mock.client_options());
        request req;
        req.custom_id = "future";
        req.body = test::chat_body(1);
        auto fut = engine.async_complete(req, asio::use_future);
        // use_future turns the error_code into an exception: a success returns the result.
        const result r = fut.get();
        CHECK(r.ok());
        CHECK(r.custom_id == "future");
        CHECK(r.status == 200);
        auto drained = engine.async_drain(asio::use_future);
        drained.get();
        engine.stop();
    }
    work.reset();
    loop.join();
}

TEST_CASE("async_complete works with use_awaitable") {
    test::loopback_mock mock;
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), mock.client_options());
    int ok = 0;
    auto task = [](dispatcher& d, int& ok) -> asio::awaitable<void> {
        for (int i = 0; i < 5; ++i) {
            request req;
            req.custom_id = "c" + std::to_string(i);
            req.body = test::chat_body(i);
            auto [ec, r] = co_await d.async_complete(req, asio::as_tuple(asio::use_awaitable));
            if (!ec && r.custom_id == req.custom_id)
                ++ok;
        }
        d.stop();
    };
    asio::co_spawn(ioc, task(engine, ok), asio::detached);
    ioc.run();
    CHECK(ok == 5);
}

TEST_CASE("async_submit hands a failed request's diagnostics to use_future") {
    mock_options mo;
    mo.faults.insufficient_quota = 1.0;
    test::loopback_mock mock(mo);
    asio::io_context ioc;
    auto work = asio::make_work_guard(ioc);
    std::thread loop([&] { ioc.run(); });
    {
        dispatcher engine(ioc.get_executor(), mock.client_options());
        request req;
        req.custom_id = "broke";
        req.body = test::chat_body(1);
        // With async_complete the future would throw, holding the code alone.
        const result r = engine.async_submit(req, asio::use_future).get();
        CHECK(r.ec == errc::quota_exhausted);
        CHECK(r.custom_id == "broke");
        CHECK(r.status == 429);
        REQUIRE(r.completion.error);
        CHECK(r.completion.error->code == "insufficient_quota");
        CHECK_FALSE(r.completion.error->message.empty());
        CHECK(r.message.find("HTTP 429") != std::string::npos);
        engine.async_stop(true, asio::use_future).get();
    }
    work.reset();
    loop.join();
}

TEST_CASE("async_stop completes once every pending request is delivered") {
    mock_options mo;
    mo.latency = std::chrono::milliseconds(50);
    test::loopback_mock mock(mo);
    for (const bool graceful : {true, false}) {
        INFO("graceful " << graceful);
        asio::io_context ioc;
        dispatcher engine(ioc.get_executor(), mock.client_options());
        int delivered = 0, succeeded = 0;
        for (int i = 0; i < 20; ++i) {
            request req;
            req.custom_id = "s" + std::to_string(i);
            req.body = test::chat_body(i);
            engine.async_submit(req, [&](result r) {
                ++delivered;
                succeeded += r.ok();
            });
        }
        bool stopped = false;
        asio::steady_timer soon(ioc, std::chrono::milliseconds(10)); // all 20 on the wire
        soon.async_wait([&](error_code) {
            engine.async_stop(graceful, [&](error_code ec) {
                CHECK_FALSE(ec);
                CHECK(delivered == 20); // nothing left to deliver after this
                CHECK(engine.stats().in_flight == 0);
                stopped = true;
            });
        });
        ioc.run();
        CHECK(stopped);
        // Graceful: the requests on the wire finish; at once: they are cancelled.
        CHECK(succeeded == (graceful ? 20 : 0));
    }
}

TEST_CASE("async_complete works with deferred: nothing is sent until the operation is started") {
    test::loopback_mock mock;
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), mock.client_options());
    request req;
    req.custom_id = "later";
    req.body = test::chat_body(1);
    auto op = engine.async_complete(req, asio::deferred);
    ioc.poll();
    CHECK(engine.stats().submitted == 0);
    ioc.restart(); // poll ran out of work, which stops the io_context
    std::string got;
    std::move(op)([&](error_code ec, result r) {
        if (!ec)
            got = r.custom_id;
        engine.stop();
    });
    ioc.run();
    CHECK(got == "later");
    CHECK(engine.stats().submitted == 1);
}

TEST_CASE("a refused connection ends in a transport error after the allowed attempts") {
    dispatcher_options opts;
    {
        test::loopback_mock mock; // take a port, then free it
        opts = mock.client_options();
    }
    opts.retry.max_attempts = 2;
    opts.retry.initial_backoff = std::chrono::milliseconds(1);
    const auto out = run_batch(opts, 2);
    require_each_once(out, 2);
    for (const auto& [id, r] : out.last) {
        CHECK_FALSE(r.ok());
        CHECK(r.status == 0);
        CHECK(std::string(error_kind(r.ec)) == "connection_refused");
        CHECK(r.message.rfind("connect", 0) == 0);
        CHECK(r.attempts == 2);
    }
}

TEST_CASE("an outage is not turned into a retry storm") {
    mock_options mo;
    mo.faults.http_500 = 1.0;
    test::loopback_mock mock(mo);
    auto opts = mock.client_options();
    opts.retry.initial_backoff = std::chrono::milliseconds(1);
    opts.retry.max_backoff = std::chrono::milliseconds(2);
    opts.retry.budget_min_per_second = 1; // floor: 10 retries per 10 s window
    const int n = 500;
    const auto out = run_batch(opts, n);
    require_each_once(out, n);
    CHECK(out.stats.failed == static_cast<std::uint64_t>(n));
    // Without a budget: 5 attempts each, 2,500 requests. With it: n + 20% + the floor.
    const auto sent = mock.server().stats().requests;
    CHECK(sent <= static_cast<std::uint64_t>(n + n / 5 + 10));
    CHECK(out.stats.failures.at("retry_budget_exhausted") > 0);
    int named = 0;
    for (const auto& [id, r] : out.last)
        named += r.ec == errc::retry_budget_exhausted &&
                 r.message.find("retry budget spent; last failure: HTTP 500") == 0;
    CHECK(named == static_cast<int>(out.stats.failures.at("retry_budget_exhausted")));
}

TEST_CASE("a model with limits of its own waits without holding up the others") {
    test::loopback_mock mock;
    // Declared before the loop and the engine: their timers refer to it.
    auto clock = std::make_shared<manual_clock>();
    asio::io_context ioc;
    auto opts = mock.client_options();
    opts.clock = clock;
    limit_options slow;
    slow.rpm = 600; // 10 a second, a burst of 10
    opts.model_limits["slow-model"] = slow;
    std::optional<dispatcher> engine(std::in_place, ioc.get_executor(), opts);
    const int per_model = 30;
    int slow_done = 0, fast_done = 0;
    for (int i = 0; i < per_model; ++i) {
        for (const char* model : {"slow-model", "fast-model"}) {
            request req;
            req.custom_id = std::string(model) + "-" + std::to_string(i);
            req.model = model;
            req.body = test::chat_body(i);
            engine->async_complete(std::move(req), [&](error_code ec, result r) {
                CHECK_FALSE(ec);
                CHECK(r.ok());
                ++(r.custom_id.starts_with("slow") ? slow_done : fast_done);
            });
        }
    }
    // Runs the loop until `done` holds; the real-time bound only fails a test that would hang.
    auto run_until = [&](const std::function<bool()>& done) {
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < give_up) {
            ioc.restart();
            ioc.run_for(1ms);
        }
        return done();
    };
    // The engine's clock stands still: the slow model has its burst and nothing more, and
    // every fast request goes all the same. Queued behind the slow model, they would wait.
    REQUIRE(run_until([&] { return fast_done == per_model && slow_done == 10; }));
    ioc.restart();
    ioc.run_for(20ms);
    CHECK(slow_done == 10);
    CHECK(clock->waiting() >= 1);
    // Time alone frees the rest, one slow request per 100 ms.
    clock->advance(100ms - 1ns);
    ioc.restart();
    ioc.run_for(20ms);
    CHECK(slow_done == 10);
    clock->advance(1ns);
    REQUIRE(run_until([&] { return slow_done == 11; }));
    // The rest, the clock moved to each wake as it comes (the bucket holds 10 at most).
    REQUIRE(run_until([&] {
        if (const auto wake = clock->next_wake())
            clock->set(*wake);
        return slow_done == per_model;
    }));
    CHECK(fast_done == per_model);
    // The clock holds the handlers of armed timers: stop, and let the loop run them.
    engine->stop(false);
    engine.reset();
    ioc.restart();
    ioc.run_for(200ms);
}

TEST_CASE("a big request is not starved by the small ones queued behind it") {
    test::loopback_mock mock;
    asio::io_context ioc;
    auto opts = mock.client_options();
    opts.limits.tpm = 6'000; // 100 tokens a second, a bucket of 100
    dispatcher engine(ioc.get_executor(), opts);
    std::map<std::string, result> done;
    auto submit = [&](const std::string& id, std::uint64_t cost) {
        request req;
        req.custom_id = id;
        req.body = test::chat_body(1);
        req.token_cost = cost;
        engine.async_complete(std::move(req), [&](error_code, result r) {
            done[r.custom_id] = std::move(r);
            if (done.size() == 7)
                engine.stop();
        });
    };
    submit("first", 60);
    submit("big", 150); // more than the bucket holds: waits for a full bucket
    for (int i = 0; i < 5; ++i)
        submit("small" + std::to_string(i), 10);
    ioc.run();
    REQUIRE(done.size() == 7);
    for (int i = 0; i < 5; ++i) {
        const auto& small = done.at("small" + std::to_string(i));
        CHECK(small.ok());
        // Each small one could have paid long before the big one: FIFO kept them behind it.
        CHECK(small.times.admitted >= done.at("big").times.admitted);
    }
}

} // namespace dispatcher_test
