// Several endpoints behind one dispatcher (docs/endpoints.md, "Several endpoints and keys"),
// against two mock servers on 127.0.0.1: together they are used to the sum of their limits;
// one stopped mid-run leaves the other to serve every request; one whose quota runs out is
// retired while the other finishes the job. Each load is bounded in count and time.
#include "support/loopback.hpp"
#include "support/script_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace several_endpoints_test {

using namespace sluice;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// A mock on its own thread that the test can stop mid-run, as a server that goes away
// (its listener closed, its connections closed).
class stoppable_mock {
public:
    explicit stoppable_mock(mock_options opts) {
        server_.emplace(ioc_.get_executor(), std::move(opts));
        server_->start();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~stoppable_mock() { stop(); }
    void stop() {
        if (!thread_.joinable())
            return;
        asio::post(ioc_, [this] { server_->stop(); });
        thread_.join();
    }
    mock_server& server() { return *server_; }

private:
    asio::io_context ioc_;
    std::optional<mock_server> server_;
    std::thread thread_;
};

// Options with endpoint "a" (the default) at `a` and endpoint "b" at `b`.
dispatcher_options two_endpoints(stoppable_mock& a, stoppable_mock& b) {
    dispatcher_options o;
    o.endpoint_name = "a";
    o.base_url = a.server().base_url();
    o.api_key = "sk-a-KEY-000111";
    endpoint_options e;
    e.name = "b";
    e.base_url = b.server().base_url();
    e.api_key = "sk-b-KEY-222333";
    o.endpoints.push_back(e);
    o.retry.initial_backoff = 10ms;
    o.retry.max_backoff = 100ms;
    return o;
}

struct load_result {
    stats_snapshot stats;
    std::map<std::string, int> by_kind; // "ok" or error_kind
    std::set<std::string> ids;          // every result's custom_id, each once
    int results = 0;
    double seconds = 0;
    // Served by the mocks after the first second (a full bucket's burst), and the time since.
    std::uint64_t late_ok = 0;
    double late_seconds = 0;
};

// Submits `n` requests of `model`; `on_result(k)` runs after the k-th result.
load_result run_load(dispatcher_options opts,
                     int n,
                     const std::function<std::uint64_t()>& served,
                     const std::function<void(int)>& on_result = {},
                     const std::string& model = "gpt-4o-mini") {
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), std::move(opts));
    load_result out;
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t early_ok = 0;
    bool early_taken = false;
    asio::steady_timer checkpoint(ioc, start + 1s);
    checkpoint.async_wait([&](error_code ec) {
        if (ec)
            return;
        early_ok = served();
        early_taken = true;
    });
    // A bound on the whole run: a stuck engine fails the test instead of hanging it.
    asio::steady_timer bound(ioc, start + 60s);
    bound.async_wait([&](error_code ec) {
        if (!ec)
            engine.stop(false);
    });
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = std::to_string(i);
        req.body = test::chat_body(i, 16);
        req.model = model;
        engine.async_complete(std::move(req), [&](error_code ec, result r) {
            ++out.by_kind[ec ? error_kind(ec) : "ok"];
            out.ids.insert(r.custom_id);
            if (on_result)
                on_result(out.results + 1);
            if (++out.results == n) {
                const auto end = std::chrono::steady_clock::now();
                out.seconds = std::chrono::duration<double>(end - start).count();
                if (early_taken) {
                    out.late_ok = served() - early_ok;
                    out.late_seconds = out.seconds - 1;
                }
                checkpoint.cancel();
                bound.cancel();
                engine.stop();
            }
        });
    }
    ioc.run();
    out.stats = engine.stats();
    return out;
}

} // namespace

TEST_CASE("two endpoints with different limits are used to the sum of their limits, without "
          "429s") {
    // 50 and 100 requests a second (the mocks' buckets hold one second), each endpoint
    // configured with its server's limit: 150 a second together, about 10 s for 1,500.
    mock_options ma;
    ma.rpm = 3'000;
    mock_options mb;
    mb.rpm = 6'000;
    stoppable_mock a(ma), b(mb);
    auto opts = two_endpoints(a, b);
    opts.limits.rpm = 3'000;
    opts.endpoints[0].limits.rpm = 6'000;
    const int n = 1'500;
    auto r = run_load(opts, n, [&] { return a.server().stats().ok + b.server().stats().ok; });
    CHECK(r.by_kind["ok"] == n);
    CHECK(r.ids.size() == static_cast<std::size_t>(n));
    const std::uint64_t refused = a.server().stats().rate_limited + b.server().stats().rate_limited;
    CHECK(refused * 200 < static_cast<std::uint64_t>(n)); // < 0.5%
    // After the first second's burst, together at >= 95% of 150 a second.
    REQUIRE(r.late_seconds > 5);
    CHECK(static_cast<double>(r.late_ok) / r.late_seconds >= 0.95 * 150);
    // Each at its own limit: a third and two thirds of the requests, give or take the burst.
    const auto sa = a.server().stats().ok, sb = b.server().stats().ok;
    CHECK(sa + sb == static_cast<std::uint64_t>(n));
    CHECK(sa >= 400);
    CHECK(sb >= 900);
    REQUIRE(r.stats.endpoints.size() == 2);
    CHECK(r.stats.endpoints.at("a").ok == sa);
    CHECK(r.stats.endpoints.at("b").ok == sb);
    CHECK(r.stats.endpoints.at("a").state == "closed");
    // Each endpoint's scope is its own, with its own limits.
    CHECK(r.stats.scopes.at("a").rpm == 3'000);
    CHECK(r.stats.scopes.at("b").rpm == 6'000);
}

TEST_CASE("an endpoint stopped mid-run is taken out and the other serves every remaining "
          "request") {
    stoppable_mock a(mock_options{}), b(mock_options{});
    auto opts = two_endpoints(a, b);
    opts.pool.max_connections = 8;
    opts.breaker.failure_threshold = 3;
    opts.breaker.cool_down = 200ms;
    opts.breaker.max_cool_down = 400ms;
    const int n = 3'000;
    std::uint64_t a_before_stop = 0;
    auto r = run_load(
        opts,
        n,
        [&] { return b.server().stats().ok; },
        [&](int k) {
            if (k == 500) {
                a.stop();
                a_before_stop = a.server().stats().ok;
            }
        });
    // Every line ends in exactly one result, every one a success.
    CHECK(r.results == n);
    CHECK(r.ids.size() == static_cast<std::size_t>(n));
    CHECK(r.by_kind["ok"] == n);
    REQUIRE(a_before_stop > 0);
    CHECK(a.server().stats().ok == a_before_stop);
    // The mock counts an answer it wrote as served; one cut off by the stop before it arrived
    // is served again by b.
    CHECK(b.server().stats().ok >= n - a_before_stop);
    CHECK(b.server().stats().ok <= n - a_before_stop + 8);
    const endpoint_stats& ea = r.stats.endpoints.at("a");
    CHECK(ea.opened >= 1);
    CHECK(ea.state != "closed");
    CHECK(ea.errors >= 3);
    CHECK(r.stats.endpoints.at("b").state == "closed");
}

TEST_CASE("an endpoint whose quota runs out is retired and the other finishes the job") {
    mock_options ma;
    ma.quota_after = 100;
    stoppable_mock a(ma), b(mock_options{});
    auto opts = two_endpoints(a, b);
    opts.pool.max_connections = 4;
    std::vector<std::string> log;
    opts.log.sink = [&](log_level, std::string_view m) {
        log.emplace_back(m);
    };
    const int n = 600;
    auto r = run_load(opts, n, [&] { return b.server().stats().ok; });
    CHECK(r.by_kind["ok"] == n);
    CHECK(r.ids.size() == static_cast<std::size_t>(n));
    CHECK(a.server().stats().ok == 100);
    // Only the requests already on their way when the first refusal came back hit the wall.
    CHECK(a.server().stats().quota >= 1);
    CHECK(a.server().stats().quota <= 4);
    CHECK(b.server().stats().ok == n - 100);
    CHECK(r.stats.endpoints.at("a").state == "retired");
    CHECK(r.stats.endpoints.at("a").rate_limited == a.server().stats().quota);
    bool said = false;
    for (const auto& line : log)
        said = said || line.find("endpoint a retired for the run") != std::string::npos;
    CHECK(said);
    for (const auto& line : log) // the keys are in nothing logged
        CHECK(line.find("KEY-") == std::string::npos);
}

TEST_CASE("with every endpoint of a model out of quota the run stops as with one endpoint") {
    mock_options ma;
    ma.quota_after = 20;
    mock_options mb;
    mb.quota_after = 30;
    stoppable_mock a(ma), b(mb);
    auto opts = two_endpoints(a, b);
    opts.pool.max_connections = 2;
    const int n = 200;
    auto r = run_load(opts, n, [] { return std::uint64_t{0}; });
    CHECK(r.results == n);
    CHECK(r.by_kind["ok"] == 50);
    CHECK(r.by_kind["quota_exhausted"] >= 1);
    CHECK(r.by_kind["not_attempted"] >= 100);
    CHECK(r.stats.endpoints.at("a").state == "retired");
    CHECK(r.stats.endpoints.at("b").state == "retired");
}

TEST_CASE("a request goes only to the endpoints that serve its model") {
    stoppable_mock a(mock_options{}), b(mock_options{});
    auto opts = two_endpoints(a, b);
    opts.models = {"small-model"};
    opts.endpoints[0].models = {"big-model"};
    auto r = run_load(
        opts, 40, [] { return std::uint64_t{0}; }, {}, "big-model");
    CHECK(r.by_kind["ok"] == 40);
    CHECK(a.server().stats().requests == 0);
    CHECK(b.server().stats().requests == 40);
    r = run_load(
        opts, 30, [] { return std::uint64_t{0}; }, {}, "small-model");
    CHECK(r.by_kind["ok"] == 30);
    CHECK(a.server().stats().requests == 30);
    // A model no endpoint serves is refused unsent, naming the model.
    r = run_load(
        opts, 3, [] { return std::uint64_t{0}; }, {}, "other-model");
    CHECK(r.by_kind["client_error"] == 3);
    CHECK(a.server().stats().requests + b.server().stats().requests == 70);
}

TEST_CASE("a request goes to the endpoint that can admit it soonest, to the nanosecond of the "
          "engine clock") {
    // a: 60 RPM (one a second, a bucket of one); b: 120 RPM (two a second, a bucket of two).
    const std::string ok = test::http_answer("200 OK", "", test::completion_with_usage(10));
    test::script_server sa([&](int, std::string_view) { return ok; });
    test::script_server sb([&](int, std::string_view) { return ok; });
    dispatcher_options o;
    o.endpoint_name = "a";
    o.base_url = sa.base_url();
    o.limits.rpm = 60;
    endpoint_options e;
    e.name = "b";
    e.base_url = sb.base_url();
    e.limits.rpm = 120;
    o.endpoints.push_back(e);
    auto clock = std::make_shared<manual_clock>();
    o.clock = clock;
    const auto t0 = clock->now();
    asio::io_context ioc;
    std::optional<dispatcher> engine(std::in_place, ioc.get_executor(), o);
    std::vector<std::string> done;
    for (int i = 0; i < 8; ++i) {
        request r;
        r.custom_id = std::to_string(i);
        r.body = test::chat_body(i, 16);
        r.model = "m";
        r.token_cost = 1;
        engine->async_complete(std::move(r),
                               [&](error_code, result res) { done.push_back(res.custom_id); });
    }
    auto run_until = [&](const std::function<bool()>& what) {
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        while (!what() && std::chrono::steady_clock::now() < give_up) {
            ioc.restart();
            ioc.run_for(1ms);
        }
        return what();
    };
    auto poll = [&] {
        ioc.restart();
        ioc.poll();
    };
    // At t0: a takes the first (fewest routed, first in order), b the second and, a being
    // empty, the third; the fourth waits for b's refill, half a second, the soonest.
    REQUIRE(run_until([&] { return done.size() == 3 && clock->waiting() == 1; }));
    CHECK(sa.requests() == 1);
    CHECK(sb.requests() == 2);
    CHECK(clock->next_wake() == t0 + 500ms);
    clock->set(t0 + 500ms - 1ns);
    poll();
    CHECK(engine->stats().admitted == 3);
    clock->set(t0 + 500ms);
    REQUIRE(run_until([&] { return done.size() == 4 && clock->waiting() == 1; }));
    CHECK(sb.requests() == 3);
    // At t0 + 1 s both can admit one: a first (fewer routed), then b.
    CHECK(clock->next_wake() == t0 + 1s);
    clock->set(t0 + 1s);
    REQUIRE(run_until([&] { return done.size() == 6; }));
    CHECK(sa.requests() == 2);
    CHECK(sb.requests() == 4);
    // Sent in submission order, whichever endpoint took each: a 0 and 4, b 1, 2, 3 and 5.
    auto sent = [](const test::script_server& server, int n, int question) {
        return server.request(n).find("Question number " + std::to_string(question) + ":") !=
               std::string::npos;
    };
    CHECK(sent(sa, 0, 0));
    CHECK(sent(sa, 1, 4));
    CHECK(sent(sb, 0, 1));
    CHECK(sent(sb, 1, 2));
    CHECK(sent(sb, 2, 3));
    CHECK(sent(sb, 3, 5));
    const auto s = engine->stats();
    CHECK(s.endpoints.at("a").sent == 2);
    CHECK(s.endpoints.at("b").sent == 4);
    engine->stop(false);
    engine.reset();
    ioc.restart();
    ioc.run_for(200ms);
}

TEST_CASE("a request too large for one endpoint's limits goes to another, and one too large "
          "for all fails unsent") {
    stoppable_mock a(mock_options{}), b(mock_options{});
    auto opts = two_endpoints(a, b);
    opts.limits.tpm = 100;
    opts.endpoints[0].limits.tpm = 1'000;
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), opts);
    std::map<std::string, result> results;
    for (const auto& [id, cost] : {std::pair{"fits-b", 500}, std::pair{"fits-none", 5'000}}) {
        request r;
        r.custom_id = id;
        r.body = test::chat_body(1, 16);
        r.token_cost = cost;
        engine.async_complete(std::move(r), [&](error_code, result res) {
            const std::string key = res.custom_id;
            results.emplace(key, std::move(res));
            if (results.size() == 2)
                engine.stop();
        });
    }
    ioc.run_for(20s);
    REQUIRE(results.size() == 2);
    CHECK_FALSE(results.at("fits-b").ec);
    CHECK(results.at("fits-none").ec == errc::request_too_large);
    CHECK(results.at("fits-none").attempts == 0);
    CHECK(a.server().stats().requests == 0);
    CHECK(b.server().stats().requests == 1);
}

} // namespace several_endpoints_test
