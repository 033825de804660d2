// The load generator of `sluice bench` against the mock server over loopback, and the
// `sluice bench --mock` binary end to end. Lower bounds on wall time only: the machine is
// shared, so anything may take longer than planned, never shorter.
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"

#include <sluice/harness/report.hpp>
#include <sluice/loadgen/load_generator.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <string>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace bench_test {

using namespace sluice;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Options pointing at `mock`: `n` requests, short synthetic prompts, not streamed.
loadgen_options bench_options_for(const test::loopback_mock& mock, std::uint64_t n) {
    loadgen_options o;
    const dispatcher_options client = mock.client_options();
    o.engine.base_url = client.base_url;
    o.engine.tls = client.tls;
    o.engine.api_key = client.api_key;
    o.load.max_requests = n;
    o.prompts.model = "gpt-4o-mini";
    o.prompts.input_tokens = {20, 20};
    o.prompts.output_tokens = {8, 8};
    o.prompts.stream = false;
    return o;
}

struct finished {
    error_code end;
    bool completed = false;
    std::chrono::steady_clock::duration wall{};
};

// Runs `gen` on `ioc` to its end; `during` runs on the loop at each progress callback.
finished run(asio::io_context& ioc, load_generator& gen) {
    finished f;
    const auto start = std::chrono::steady_clock::now();
    gen.async_run([&](error_code ec) {
        f.end = ec;
        f.completed = true;
    });
    ioc.run();
    f.wall = std::chrono::steady_clock::now() - start;
    return f;
}

struct json_report {
    simdjson::dom::parser parser;
    simdjson::dom::element root;

    explicit json_report(const std::string& text) {
        REQUIRE(parser.parse(text).get(root) == simdjson::SUCCESS);
    }
    double number(const std::string& key) {
        INFO(key);
        double v = -1;
        REQUIRE(root[key].get_double().get(v) == simdjson::SUCCESS);
        return v;
    }
    std::uint64_t integer(const std::string& key) {
        INFO(key);
        std::uint64_t v = 0;
        REQUIRE(root[key].get_uint64().get(v) == simdjson::SUCCESS);
        return v;
    }
};

report_context context_of(const load_generator& gen) {
    report_context ctx;
    ctx.load = gen.options().load;
    ctx.extras = gen.results().extras();
    return ctx;
}

} // namespace

TEST_CASE("a closed loop completes exactly the requests asked for") {
    test::loopback_mock mock;
    asio::io_context ioc;
    loadgen_options o = bench_options_for(mock, 50);
    o.load.concurrency = 4;
    load_generator gen(ioc.get_executor(), o);
    const finished f = run(ioc, gen);
    REQUIRE(f.completed);
    CHECK_FALSE(f.end);
    const recorder& rec = gen.results().rec();
    CHECK(rec.completed() == 50);
    CHECK(rec.failed() == 0);
    CHECK(mock.server().stats().requests == 50);
    CHECK(rec.e2e().count() == 50);
    CHECK(rec.send_lag().count() == 50);
    CHECK(rec.ttft().count() == 0); // not streamed
    CHECK(rec.output_tokens() > 0);
    CHECK(gen.progress().sent == 50);
    CHECK(gen.progress().in_flight == 0);
}

TEST_CASE("the JSON report has vLLM's keys and figures that agree with each other") {
    mock_options mo;
    mo.faults.http_500 = 0.2;
    mo.seed = 3;
    test::loopback_mock mock(mo);
    asio::io_context ioc;
    loadgen_options o = bench_options_for(mock, 120);
    o.load.concurrency = 8;
    o.slo = parse_slo("e2e=60000");
    load_generator gen(ioc.get_executor(), o);
    REQUIRE(run(ioc, gen).completed);
    json_report j(report_json(gen.results().rec(), context_of(gen)));

    for (const char* key : {"completed",
                            "failed",
                            "duration",
                            "total_input_tokens",
                            "total_output_tokens",
                            "request_throughput",
                            "request_goodput",
                            "output_throughput",
                            "total_token_throughput"}) {
        INFO(key);
        CHECK(j.root[key].error() == simdjson::SUCCESS);
    }
    for (const char* metric : {"ttft", "tpot", "itl", "e2el"})
        for (const char* stat : {"mean_", "median_", "std_", "p99_"}) {
            const std::string key = std::string(stat) + metric + "_ms";
            INFO(key);
            CHECK(j.root[key].error() == simdjson::SUCCESS);
        }
    const std::uint64_t completed = j.integer("completed"), failed = j.integer("failed");
    CHECK(completed + failed == 120);
    CHECK(failed > 0);
    CHECK(j.integer("good_requests") == completed); // a minute: every success is good
    const double duration = j.number("duration");
    REQUIRE(duration > 0);
    CHECK(j.number("request_throughput") == Approx(double(completed) / duration));
    CHECK(j.number("request_goodput") == Approx(double(completed) / duration));
    CHECK(j.number("output_throughput") ==
          Approx(double(j.integer("total_output_tokens")) / duration));
    for (const char* m : {"e2el", "send_lag"}) {
        const std::string s = std::string("_") + m + "_ms";
        INFO(m);
        CHECK(j.number("min" + s) <= j.number("p50" + s));
        CHECK(j.number("p50" + s) <= j.number("p90" + s));
        CHECK(j.number("p90" + s) <= j.number("p99" + s));
        CHECK(j.number("p99" + s) <= j.number("p99.9" + s));
        CHECK(j.number("p99.9" + s) <= j.number("max" + s));
        CHECK(j.number("median" + s) == j.number("p50" + s));
    }
}

TEST_CASE("failures are counted by kind, as the mock injected them") {
    mock_options mo;
    mo.faults.http_500 = 0.25;
    mo.faults.malformed = 0.15;
    mo.seed = 11;
    test::loopback_mock mock(mo);
    asio::io_context ioc;
    loadgen_options o = bench_options_for(mock, 100);
    o.load.concurrency = 6;
    load_generator gen(ioc.get_executor(), o);
    REQUIRE(run(ioc, gen).completed);
    const recorder& rec = gen.results().rec();
    const mock_stats st = mock.server().stats();
    CHECK(rec.completed() + rec.failed() == 100);
    CHECK(st.requests == 100); // no retries in a benchmark
    REQUIRE(st.server_errors > 0);
    REQUIRE(st.malformed > 0);
    CHECK(rec.failures().at("http_500") == st.server_errors);
    CHECK(rec.failures().at("malformed_response") == st.malformed);
    CHECK(rec.completed() == st.ok);
    CHECK(rec.failed() == st.server_errors + st.malformed);
}

TEST_CASE("an open loop shows the queueing that a closed loop hides") {
    mock_options mo;
    mo.latency = 50ms;
    test::loopback_mock mock(mo);
    // Closed loop: 4 at a time, 24 requests, 6 rounds of at least 50 ms each (the mock answers
    // 50 ms after a request arrives, the next goes after the answer). Each request is due when
    // a slot frees, so nothing is ever late.
    asio::io_context closed_ioc;
    loadgen_options closed_opts = bench_options_for(mock, 24);
    closed_opts.load.concurrency = 4;
    load_generator closed(closed_ioc.get_executor(), closed_opts);
    const finished c = run(closed_ioc, closed);
    CHECK(c.wall >= 6 * 50ms);
    // Open loop: the same 24 due within 115 ms (200/s), while 4 at a time can do at most
    // 80/s: the last one starts after 5 rounds on its slot, at least 5 x 50 - 115 = 135 ms
    // after it was due.
    asio::io_context open_ioc;
    loadgen_options open_opts = closed_opts;
    open_opts.load.rate = 200;
    open_opts.load.process = arrival_process::constant;
    load_generator open(open_ioc.get_executor(), open_opts);
    const finished f = run(open_ioc, open);
    CHECK(f.wall >= 6 * 50ms);

    const recorder& cr = closed.results().rec();
    const recorder& orr = open.results().rec();
    CHECK(cr.completed() == 24);
    CHECK(orr.completed() == 24);
    CHECK(orr.send_lag().max() >= 120ms);
    CHECK(orr.send_lag().percentile(99) > cr.send_lag().percentile(99));
    CHECK(orr.send_lag().mean_ns() > cr.send_lag().mean_ns());
    // The mock's 50 ms count from the request's arrival, which can come a moment before the
    // client's write completes (`times.sent`, where E2EL starts): a little slack.
    CHECK(cr.e2e().min() >= 45ms);
    CHECK(orr.e2e().min() >= 45ms);
}

TEST_CASE("an open loop waits for a near due time by polling, and sends nothing early") {
    test::loopback_mock mock;
    // 200 requests at 2,000/s: the last is due 99.5 ms after the start. Every gap is shorter
    // than the busy wait (polled, no timer) in one run, and none is in the other (timers).
    for (const auto busy_wait : {std::chrono::microseconds(1s), std::chrono::microseconds(0)}) {
        INFO("busy_wait " << busy_wait.count() << " us");
        asio::io_context ioc;
        loadgen_options o = bench_options_for(mock, 200);
        o.load.rate = 2000;
        o.load.process = arrival_process::constant;
        o.load.concurrency = 8;
        o.busy_wait = busy_wait;
        load_generator gen(ioc.get_executor(), o);
        const finished f = run(ioc, gen);
        REQUIRE(f.completed);
        CHECK_FALSE(f.end);
        CHECK(f.wall >= 99ms);
        const recorder& rec = gen.results().rec();
        CHECK(rec.completed() == 200);
        CHECK(rec.send_lag().count() == 200);
        CHECK(gen.progress().sent == 200);
    }
    CHECK(mock.server().stats().requests == 400);
}

TEST_CASE("stop() ends an open loop that is polling for its next request") {
    mock_options mo;
    mo.latency = 2ms;
    test::loopback_mock mock(mo);
    asio::io_context ioc;
    loadgen_options o = bench_options_for(mock, 100000);
    o.load.rate = 2000;
    o.load.process = arrival_process::constant;
    o.load.concurrency = 8;
    o.busy_wait = 1s; // every wait polled: the stop must still end the run
    o.progress_interval = 50ms;
    load_generator gen(ioc.get_executor(), o);
    gen.on_progress([&](const loadgen_progress& p) {
        if (p.completed >= 8)
            gen.stop();
    });
    const finished f = run(ioc, gen);
    REQUIRE(f.completed);
    CHECK(f.end == asio::error::operation_aborted);
    const recorder& rec = gen.results().rec();
    CHECK(rec.completed() >= 8);
    CHECK(rec.completed() < 100000);
    CHECK(rec.completed() + rec.failed() + gen.results().cancelled() == gen.progress().sent);
}

TEST_CASE("a warm-up is sent on the schedule and left out of the figures") {
    mock_options mo;
    mo.latency = 5ms;
    test::loopback_mock mock(mo);
    asio::io_context ioc;
    loadgen_options o = bench_options_for(mock, 20);
    o.load.concurrency = 2;
    o.warmup = 100ms;
    load_generator gen(ioc.get_executor(), o);
    const finished f = run(ioc, gen);
    REQUIRE(f.completed);
    CHECK(f.wall >= 100ms);
    const bench_results& r = gen.results();
    CHECK(r.warmup_requests() > 0);
    CHECK(r.rec().completed() == 20);
    CHECK(mock.server().stats().requests == 20 + r.warmup_requests());
    CHECK(r.over_time().start() > std::chrono::steady_clock::time_point{});
}

TEST_CASE("stop() ends a run early, and the requests on the wire are recorded") {
    mock_options mo;
    mo.latency = 20ms;
    test::loopback_mock mock(mo);
    asio::io_context ioc;
    loadgen_options o = bench_options_for(mock, 100000);
    o.load.concurrency = 4;
    o.progress_interval = 50ms;
    load_generator gen(ioc.get_executor(), o);
    int progress_calls = 0;
    gen.on_progress([&](const loadgen_progress& p) {
        ++progress_calls;
        CHECK(p.total == std::optional<std::uint64_t>(100000));
        if (p.completed >= 8)
            gen.stop();
    });
    const finished f = run(ioc, gen);
    REQUIRE(f.completed);
    CHECK(f.end == asio::error::operation_aborted);
    CHECK(progress_calls >= 1);
    const recorder& rec = gen.results().rec();
    CHECK(rec.completed() >= 8);
    CHECK(rec.completed() < 100000);
    CHECK(rec.completed() + rec.failed() + gen.results().cancelled() == gen.progress().sent);
}

TEST_CASE("a fatal answer stops the run, and what was not sent is cancelled, not failed") {
    mock_options mo;
    mo.quota_after = 10;
    test::loopback_mock mock(mo);
    asio::io_context ioc;
    loadgen_options o = bench_options_for(mock, 200);
    o.load.concurrency = 4;
    load_generator gen(ioc.get_executor(), o);
    const finished f = run(ioc, gen);
    REQUIRE(f.completed);
    CHECK(f.end == errc::quota_exhausted);
    const recorder& rec = gen.results().rec();
    CHECK(rec.completed() == 10);
    CHECK(rec.failures().at("quota_exhausted") >= 1);
    CHECK(rec.completed() + rec.failed() + gen.results().cancelled() == gen.progress().sent);
    CHECK(gen.progress().sent < 200);
}

// Streamed answers carry TTFT and ITL from the engine's timings (issue 9, part 1): against a
// mock that waits 30 ms for the first of 16 one-token chunks and 5 ms between them, every
// request has one TTFT of about 30 ms and 15 gaps.
TEST_CASE("streamed answers give TTFT, ITL and TPOT for every request", "[stream]") {
    mock_options mo;
    mo.first_token = 30ms;
    mo.chunk_interval = 5ms;
    test::loopback_mock mock(mo);
    asio::io_context ioc;
    loadgen_options o = bench_options_for(mock, 12);
    o.load.concurrency = 4;
    o.prompts.stream = true;
    o.prompts.output_tokens = {64, 64};
    load_generator gen(ioc.get_executor(), o);
    REQUIRE(run(ioc, gen).completed);
    const recorder& rec = gen.results().rec();
    CHECK(rec.failures().empty());
    REQUIRE(rec.completed() == 12);
    CHECK(rec.ttft().count() == 12);
    // The mock counts from the request's arrival, which can come a moment before the client's
    // write completes (`times.sent`): a little slack below the 30 ms.
    CHECK(rec.ttft().min() >= 25ms);
    CHECK(rec.itl().count() == 12 * 15);
    CHECK(rec.tpot().count() == 12);
    CHECK(rec.output_tokens() == 12 * 16); // from the usage chunk
    CHECK(rec.e2e().min() >= 25ms + 15 * 5ms);
    CHECK(rec.ttft().max() <= rec.e2e().max());
}

// The example of docs/bench.md, against the mock instead of a local vLLM.
TEST_CASE("the library example of docs/bench.md runs") {
    test::loopback_mock mock;
    boost::asio::io_context ioc;
    sluice::loadgen_options opts; // engine: limits and retries off (bench_engine_options())
    opts.engine.base_url = mock.server().base_url();
    opts.prompts.model = "meta-llama/Llama-3.1-8B-Instruct";
    opts.load.rate = 400;       // open loop, Poisson gaps
    opts.load.concurrency = 64; // at most 64 in flight
    opts.load.max_requests = 60;
    opts.warmup = std::chrono::milliseconds(50);
    opts.slo = sluice::parse_slo("ttft=500,tpot=50");

    sluice::load_generator gen(ioc.get_executor(), opts);
    int progress = 0;
    bool done = false;
    gen.on_progress([&](const sluice::loadgen_progress&) { ++progress; });
    gen.async_run([&](sluice::error_code ec) {
        CHECK_FALSE(ec);
        done = true;
    });
    ioc.run();
    REQUIRE(done);

    sluice::report_context ctx;
    ctx.load = gen.options().load;
    ctx.extras = gen.results().extras();
    const std::string text = sluice::report_text(gen.results().rec(), ctx);
    CHECK(text.find("Successful requests:                     60\n") != std::string::npos);
    CHECK(text.find("Request goodput (req/s):") != std::string::npos);
}

} // namespace bench_test
