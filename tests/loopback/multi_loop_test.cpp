// The library on several threads. Batch jobs over several event loops (`sluice run --threads
// N`: engine_shards), against the mock on a thread of its own with faults switched on: every
// line gets exactly one record, the progress counters are read from the main loop while the
// shards run, and an interrupt from the main loop reaches every shard. And a service's threads
// submitting to one dispatcher on its loop thread with use_future (docs/library.md), and one
// dispatcher on a strand of a loop that two threads run (the engine's completions take
// shortcuts when it runs on an io_context's own executor; a strand must not get them). Small on
// purpose: the `tsan` preset runs these under ThreadSanitizer (docs/testing.md).
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"

#include <sluice/batch/batch_run.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace multi_loop_test {

using namespace sluice;
using namespace std::chrono_literals;
using sluice::test::loopback_mock;
using sluice::test::temp_dir;

namespace {

void write_input(const std::string& path, int lines) {
    std::ofstream in(path);
    for (int i = 0; i < lines; ++i)
        in << R"({"custom_id":"q)" << i << R"(","method":"POST","url":"/v1/chat/completions",)"
           << R"("body":)" << test::chat_body(i, 8) << "}\n";
}

// custom_id -> the record's error code ("" for a success), every id once.
std::map<std::string, std::string> read_records(const std::string& path) {
    std::map<std::string, std::string> out;
    std::ifstream in(path);
    simdjson::dom::parser parser;
    for (std::string line; std::getline(in, line);) {
        simdjson::dom::element record = parser.parse(line);
        const std::string id{std::string_view(record["custom_id"])};
        std::string code;
        if (!record["error"].is_null())
            code = std::string{std::string_view(record["error"]["code"])};
        INFO(line);
        REQUIRE(out.emplace(id, code).second); // one record per line
    }
    return out;
}

batch_options options(const loopback_mock& mock, unsigned threads) {
    batch_options o;
    o.engine = mock.client_options();
    o.engine.pool.max_connections = 8;
    o.engine.retry.max_attempts = 6;
    o.engine.retry.initial_backoff = 1ms;
    o.engine.retry.max_backoff = 5ms;
    o.threads = threads;
    return o;
}

} // namespace

TEST_CASE("four event loops with faults: every line has exactly one record") {
    mock_options m;
    m.faults.http_500 = 0.05;
    m.faults.http_503 = 0.05;
    m.faults.reset = 0.03;
    m.close_every = 7;
    loopback_mock mock(m);
    temp_dir dir;
    const int lines = 400;
    write_input(dir.file("in.jsonl"), lines);

    boost::asio::io_context loop;
    batch_run job(loop, {dir.file("in.jsonl"), dir.file("out.jsonl"), ""}, options(mock, 4));
    // The progress display's reads: the shards' counters from the main loop, while they run.
    boost::asio::steady_timer tick(loop);
    std::uint64_t last_done = 0;
    bool finished = false;
    std::function<void()> poll = [&] {
        const stats_snapshot s = job.stats();
        CHECK(s.succeeded + s.failed >= last_done); // never goes back
        last_done = s.succeeded + s.failed;
        if (finished)
            return;
        tick.expires_after(2ms);
        tick.async_wait([&](error_code ec) {
            if (!ec)
                poll();
        });
    };
    job.start([&] {
        finished = true;
        tick.cancel();
    });
    poll();
    loop.run();
    job.sync();
    REQUIRE_FALSE(job.error());

    const batch_report r = job.report();
    CHECK(r.lines == lines);
    CHECK(r.stats.submitted == lines);
    const auto records = read_records(dir.file("out.jsonl"));
    CHECK(records.size() == lines);
    std::size_t ok = 0;
    for (const auto& [id, code] : records)
        ok += code.empty();
    CHECK(ok == r.stats.succeeded);
    CHECK(ok + r.stats.failed == lines);
    CHECK(ok > lines / 2); // retries get most past the faults
}

TEST_CASE("an interrupt from the main loop stops every loop, and a resume finishes the job") {
    mock_options m;
    m.latency = 2ms;
    loopback_mock mock(m);
    temp_dir dir;
    const int lines = 600;
    write_input(dir.file("in.jsonl"), lines);

    {
        boost::asio::io_context loop;
        batch_run job(loop, {dir.file("in.jsonl"), dir.file("out.jsonl"), ""}, options(mock, 3));
        boost::asio::steady_timer stop(loop);
        job.start([&] { stop.cancel(); });
        stop.expires_after(30ms);
        stop.async_wait([&](error_code ec) {
            if (!ec)
                job.interrupt(false);
        });
        loop.run();
        job.sync();
        REQUIRE_FALSE(job.error());
        CHECK(job.interrupted()); // 600 answers at 2 ms over 8 connections take longer
        const auto records = read_records(dir.file("out.jsonl"));
        std::size_t unsent = 0;
        for (const auto& [id, code] : records)
            unsent += code == "not_attempted";
        CHECK(unsent > 0);
        CHECK(records.size() <= lines);
    }
    boost::asio::io_context loop;
    batch_run job(loop, {dir.file("in.jsonl"), dir.file("out.jsonl"), ""}, options(mock, 3));
    job.start([] {});
    loop.run();
    job.sync();
    REQUIRE_FALSE(job.error());
    const auto records = read_records(dir.file("out.jsonl"));
    REQUIRE(records.size() == lines);
    for (const auto& [id, code] : records) {
        INFO(id);
        CHECK(code.empty());
    }
}

TEST_CASE("threads of a service submit to one dispatcher with use_future while it runs") {
    mock_options m;
    m.faults.http_503 = 0.05; // retried on the loop thread while others submit
    loopback_mock mock(m);
    boost::asio::io_context ioc;
    auto work = boost::asio::make_work_guard(ioc);
    std::thread loop([&] { ioc.run(); });
    {
        dispatcher_options o = mock.client_options();
        o.retry.initial_backoff = 1ms;
        o.retry.max_backoff = 5ms;
        dispatcher engine(ioc.get_executor(), o);
        constexpr int threads = 4, each = 25;
        std::vector<int> ok(threads, 0);
        std::vector<std::thread> clients;
        for (int t = 0; t < threads; ++t) {
            clients.emplace_back([&, t] {
                for (int i = 0; i < each; ++i) {
                    request req;
                    req.custom_id = "t" + std::to_string(t) + "-" + std::to_string(i);
                    req.body = test::chat_body(i, 8);
                    const result r = engine.async_submit(req, boost::asio::use_future).get();
                    ok[t] += r.ok() && r.custom_id == req.custom_id;
                }
            });
        }
        for (int i = 0; i < 20; ++i) // the counters, from yet another thread
            CHECK(engine.stats().submitted <= threads * each);
        for (std::thread& c : clients)
            c.join();
        for (int t = 0; t < threads; ++t)
            CHECK(ok[t] == each);
        CHECK(engine.stats().succeeded == threads * each);
        engine.async_stop(true, boost::asio::use_future).get();
    }
    work.reset();
    loop.join();
}

TEST_CASE(
    "a dispatcher on a strand of a loop run by two threads: TLS answers, handlers on the strand") {
    loopback_mock mock(test::mock_with_tls());
    boost::asio::io_context ioc;
    auto strand = boost::asio::make_strand(ioc);
    constexpr int n = 64;
    // Touched by the handlers only: a handler off the strand races another (ThreadSanitizer
    // in the tsan preset), and is counted.
    int done = 0, ok = 0, on_strand = 0;
    {
        dispatcher_options o = mock.client_options();
        o.pool.max_connections = 8;
        dispatcher engine(strand, o);
        for (int i = 0; i < n; ++i) {
            request req;
            req.custom_id = "s" + std::to_string(i);
            req.body = test::chat_body(i, 8);
            engine.async_complete(std::move(req), [&](error_code ec, result r) {
                on_strand += strand.running_in_this_thread() ? 1 : 0;
                ok += !ec && r.ok() ? 1 : 0;
                if (++done == n)
                    engine.stop(true); // the idle connections go, and the loop runs out
            });
        }
        std::thread second([&] { ioc.run(); });
        ioc.run();
        second.join();
    }
    CHECK(done == n);
    CHECK(ok == n);
    CHECK(on_strand == n);
}

} // namespace multi_loop_test
