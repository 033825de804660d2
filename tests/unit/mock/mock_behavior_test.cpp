// The mock's decisions without its sockets: mock_behavior maps a request, the options and an
// explicit `now` to a mock_reply, so limits, faults and bodies are checked exactly here, and
// tests/loopback/mock_server_test.cpp only checks that the server sends what was decided.
// Streamed answers are checked in mock_stream_test.cpp.

#include "support/manual_clock.hpp"

#include "mock/mock_behavior.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;
using detail::mock_behavior;
using detail::mock_reply;

namespace {

const std::string path = "/v1/chat/completions";

// `content` is the only message; `extra` is spliced in as more top-level fields.
std::string chat(std::string_view content, std::string_view extra = "") {
    std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")";
    body += content;
    body += "\"}]";
    if (!extra.empty()) {
        body += ',';
        body += extra;
    }
    body += '}';
    return body;
}

std::optional<std::string> header(const mock_reply& r, std::string_view name) {
    for (const auto& [n, v] : r.headers)
        if (n == name)
            return v;
    return std::nullopt;
}

long long header_number(const mock_reply& r, std::string_view name) {
    const auto v = header(r, name);
    REQUIRE(v);
    return std::stoll(*v);
}

simdjson::dom::element parse(simdjson::dom::parser& p, const std::string& body) {
    simdjson::dom::element doc;
    REQUIRE(p.parse(body).get(doc) == simdjson::SUCCESS);
    return doc;
}

} // namespace

TEST_CASE("rate-limit headers count down per request and refill with time") {
    test::manual_clock clock;
    mock_options o;
    o.rpm = 600; // 10 a second, a bucket of one second: capacity 10
    mock_behavior b(o, clock.now());
    const std::string body = chat("hi", R"("max_tokens":5)");

    auto r = b.on_request("POST", path, body, clock.now());
    REQUIRE(r.status == 200);
    CHECK(header(r, "x-ratelimit-limit-requests") == "600");
    CHECK(header_number(r, "x-ratelimit-remaining-requests") == 9);
    CHECK(header(r, "x-ratelimit-reset-requests") == "100ms"); // one request at 10 a second
    r = b.on_request("POST", path, body, clock.now());
    CHECK(header_number(r, "x-ratelimit-remaining-requests") == 8);
    CHECK(header(r, "x-ratelimit-reset-requests") == "200ms");
    r = b.on_request("POST", path, body, clock.now());
    CHECK(header_number(r, "x-ratelimit-remaining-requests") == 7);

    clock.advance(250ms); // 2.5 requests refilled: 9.5, then one taken
    r = b.on_request("POST", path, body, clock.now());
    CHECK(header_number(r, "x-ratelimit-remaining-requests") == 8);

    clock.advance(1h); // full again, never above the capacity
    r = b.on_request("POST", path, body, clock.now());
    CHECK(header_number(r, "x-ratelimit-remaining-requests") == 9);
    // No TPM limit set: no token headers.
    CHECK_FALSE(header(r, "x-ratelimit-limit-tokens"));
}

TEST_CASE("the token headers count what a request costs: its prompt plus its completion budget") {
    test::manual_clock clock;
    mock_options o;
    o.tpm = 60'000; // 1000 a second, capacity 1000
    mock_behavior b(o, clock.now());
    // "hi": ceil(2 / 4) + 4 * 1 + 3 = 8 prompt tokens, plus max_tokens 5 = 13.
    auto r = b.on_request("POST", path, chat("hi", R"("max_tokens":5)"), clock.now());
    REQUIRE(r.status == 200);
    CHECK(header(r, "x-ratelimit-limit-tokens") == "60000");
    CHECK(header_number(r, "x-ratelimit-remaining-tokens") == 987);
    // Without max_tokens the budget is answer_tokens, times n.
    r = b.on_request("POST", path, chat("hi", R"("n":2)"), clock.now());
    CHECK(header_number(r, "x-ratelimit-remaining-tokens") == 987 - (8 + 16 * 2));
    CHECK_FALSE(header(r, "x-ratelimit-limit-requests"));
}

TEST_CASE("no limits set means no rate-limit headers and no 429") {
    test::manual_clock clock;
    mock_behavior b(mock_options{}, clock.now());
    for (int i = 0; i < 1000; ++i) {
        const auto r = b.on_request("POST", path, chat("hi"), clock.now());
        REQUIRE(r.status == 200);
        CHECK_FALSE(header(r, "x-ratelimit-remaining-requests"));
        CHECK_FALSE(header(r, "x-ratelimit-remaining-tokens"));
    }
    CHECK(b.counters().rate_limited == 0);
}

TEST_CASE("over the RPM limit the answer is 429 with the wait in retry-after") {
    test::manual_clock clock;
    mock_options o;
    o.rpm = 60; // one a second, a bucket of one
    mock_behavior b(o, clock.now());
    const std::string body = chat("hi");
    REQUIRE(b.on_request("POST", path, body, clock.now()).status == 200);

    auto r = b.on_request("POST", path, body, clock.now());
    REQUIRE(r.status == 429);
    CHECK(header(r, "retry-after-ms") == "1000");
    CHECK(header(r, "retry-after") == "1");
    CHECK(header(r, "x-ratelimit-remaining-requests") == "0");
    CHECK(header(r, "x-ratelimit-reset-requests") == "1s");
    simdjson::dom::parser p;
    auto doc = parse(p, r.body);
    CHECK(std::string_view(doc["error"]["code"]) == "rate_limit_exceeded");
    CHECK(std::string_view(doc["error"]["type"]) == "requests");
    CHECK(std::string_view(doc["error"]["message"]).find("(RPM): Limit 60.") !=
          std::string_view::npos);

    clock.advance(400ms); // the wait shrinks with time; a refused request costs nothing
    r = b.on_request("POST", path, body, clock.now());
    REQUIRE(r.status == 429);
    const long long ms = header_number(r, "retry-after-ms");
    CHECK(ms >= 600);
    CHECK(ms <= 601);                       // the bucket's arithmetic may round up by a tick
    CHECK(header(r, "retry-after") == "1"); // whole seconds, rounded up
    CHECK(b.counters().rate_limited == 2);

    clock.advance(std::chrono::milliseconds(ms));
    CHECK(b.on_request("POST", path, body, clock.now()).status == 200);
    CHECK(b.counters().ok == 2);
    CHECK(b.counters().requests == 4);
}

TEST_CASE("the wait is in the 429's message too, as OpenAI words it") {
    test::manual_clock clock;
    mock_options o;
    o.rpm = 60;
    mock_behavior b(o, clock.now());
    REQUIRE(b.on_request("POST", path, chat("hi"), clock.now()).status == 200);
    clock.advance(250ms);
    const auto r = b.on_request("POST", path, chat("hi"), clock.now());
    REQUIRE(r.status == 429);
    simdjson::dom::parser p;
    auto doc = parse(p, r.body);
    CHECK(std::string_view(doc["error"]["message"]).find("Please try again in 750ms.") !=
          std::string_view::npos);
}

TEST_CASE("hide_limits enforces the limits with no rate-limit header and no retry hint") {
    test::manual_clock clock;
    mock_options o;
    o.rpm = 60; // one a second, a bucket of one
    o.tpm = 6000;
    o.hide_limits = true;
    mock_behavior b(o, clock.now());
    auto r = b.on_request("POST", path, chat("hi"), clock.now());
    REQUIRE(r.status == 200);
    auto no_hint = [](const mock_reply& reply) {
        for (const auto& [name, value] : reply.headers) {
            INFO(name);
            CHECK(name.rfind("x-ratelimit-", 0) == std::string::npos);
            CHECK(name != "retry-after");
            CHECK(name != "retry-after-ms");
        }
    };
    no_hint(r);
    r = b.on_request("POST", path, chat("hi"), clock.now());
    REQUIRE(r.status == 429);
    no_hint(r);
    simdjson::dom::parser p;
    auto doc = parse(p, r.body);
    CHECK(std::string_view(doc["error"]["code"]) == "rate_limit_exceeded");
    const std::string_view message = doc["error"]["message"];
    CHECK(message.find("(RPM): Limit 60.") != std::string_view::npos);
    CHECK(message.find("try again in") == std::string_view::npos);
    CHECK(b.counters().rate_limited == 1);
    // Still enforced at the limit's pace: one more a second.
    clock.advance(999ms);
    CHECK(b.on_request("POST", path, chat("hi"), clock.now()).status == 429);
    clock.advance(1ms);
    CHECK(b.on_request("POST", path, chat("hi"), clock.now()).status == 200);
    // A 503 fault carries no hint either.
    mock_options f;
    f.hide_limits = true;
    f.faults.http_503 = 1;
    mock_behavior overloaded(f, clock.now());
    r = overloaded.on_request("POST", path, chat("hi"), clock.now());
    REQUIRE(r.status == 503);
    no_hint(r);
}

TEST_CASE("over the TPM limit the answer is 429 naming tokens") {
    test::manual_clock clock;
    mock_options o;
    o.tpm = 6000; // 100 a second, capacity 100
    mock_behavior b(o, clock.now());
    const std::string body = chat("hi", R"("max_tokens":5)"); // 13 tokens
    for (int i = 0; i < 7; ++i)                               // 91 tokens taken, 9 left
        REQUIRE(b.on_request("POST", path, body, clock.now()).status == 200);
    auto r = b.on_request("POST", path, body, clock.now());
    REQUIRE(r.status == 429);
    simdjson::dom::parser p;
    auto doc = parse(p, r.body);
    CHECK(std::string_view(doc["error"]["type"]) == "tokens");
    CHECK(std::string_view(doc["error"]["message"]).find("(TPM): Limit 6000.") !=
          std::string_view::npos);
    // 4 tokens short at 100 a second.
    const long long ms = header_number(r, "retry-after-ms");
    CHECK(ms >= 40);
    CHECK(ms <= 41);
    CHECK(header(r, "x-ratelimit-remaining-tokens") == "9");

    clock.advance(std::chrono::milliseconds(ms));
    CHECK(b.on_request("POST", path, body, clock.now()).status == 200);
}

TEST_CASE("a request above the TPM limit is too large, one above the burst leaves a debt") {
    test::manual_clock clock;
    mock_options o;
    o.tpm = 6000; // 100 a second, capacity 100
    mock_behavior b(o, clock.now());
    simdjson::dom::parser p;

    // 8 prompt tokens + 6000 = 6008 > 6000: never servable, whatever the wait.
    auto r = b.on_request("POST", path, chat("hi", R"("max_tokens":6000)"), clock.now());
    REQUIRE(r.status == 429);
    auto doc = parse(p, r.body);
    CHECK(std::string_view(doc["error"]["code"]) == "rate_limit_exceeded");
    CHECK(std::string_view(doc["error"]["message"]).find("Request too large") == 0);
    CHECK(std::string_view(doc["error"]["message"]).find("Limit 6000, Requested 6008") !=
          std::string_view::npos);
    CHECK_FALSE(header(r, "retry-after-ms"));

    // 8 + 492 = 500 tokens, five times the burst: served from a full bucket and paid in full.
    r = b.on_request("POST", path, chat("hi", R"("max_tokens":492)"), clock.now());
    REQUIRE(r.status == 200);
    CHECK(header_number(r, "x-ratelimit-remaining-tokens") <= 0);
    // The next request waits out the debt: 400 tokens below empty, plus its own 13, at 100/s.
    r = b.on_request("POST", path, chat("hi", R"("max_tokens":5)"), clock.now());
    REQUIRE(r.status == 429);
    const long long ms = header_number(r, "retry-after-ms");
    CHECK(ms >= 4130);
    CHECK(ms <= 4131);
    CHECK(b.counters().rate_limited == 2);
}

TEST_CASE("a request's usage is computed from its messages, max_tokens and n") {
    test::manual_clock clock;
    mock_options o;
    o.answer_tokens = 8;
    mock_behavior b(o, clock.now());
    simdjson::dom::parser p;

    SECTION("max_tokens below answer_tokens caps the answer, which stops for length") {
        // Two messages of 10 and 30 characters: ceil(40 / 4) + 4 * 2 + 3 = 21 prompt tokens.
        const std::string body =
            R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"0123456789"},)"
            R"({"role":"user","content":"012345678901234567890123456789"}]})";
        const auto r = b.on_request("POST", path, body, clock.now());
        REQUIRE(r.status == 200);
        CHECK(r.content_type == "application/json");
        auto doc = parse(p, r.body);
        CHECK(std::int64_t(doc["usage"]["prompt_tokens"]) == 21);
        CHECK(std::int64_t(doc["usage"]["completion_tokens"]) == 5);
        CHECK(std::int64_t(doc["usage"]["total_tokens"]) == 26);
        CHECK(std::string_view(doc["choices"].at(0)["finish_reason"]) == "length");
        CHECK(std::string_view(doc["choices"].at(0)["message"]["content"]) ==
              "lorem ipsum dolor sit amet");
    }
    SECTION("without max_tokens the answer has answer_tokens words and stops") {
        const auto r = b.on_request("POST", path, chat("abcdefgh"), clock.now());
        auto doc = parse(p, r.body);
        CHECK(std::int64_t(doc["usage"]["prompt_tokens"]) == 2 + 4 + 3);
        CHECK(std::int64_t(doc["usage"]["completion_tokens"]) == 8);
        CHECK(std::string_view(doc["choices"].at(0)["finish_reason"]) == "stop");
        CHECK(std::string_view(doc["choices"].at(0)["message"]["content"]) ==
              "lorem ipsum dolor sit amet consectetur adipiscing elit");
    }
    SECTION("n choices each get the answer, and usage counts all of them") {
        const auto r = b.on_request("POST", path, chat("hi", R"("n":3)"), clock.now());
        auto doc = parse(p, r.body);
        simdjson::dom::array choices = doc["choices"];
        REQUIRE(choices.size() == 3);
        std::int64_t index = 0;
        for (auto c : choices)
            CHECK(std::int64_t(c["index"]) == index++);
        CHECK(std::int64_t(doc["usage"]["completion_tokens"]) == 3 * 8);
        CHECK(std::int64_t(doc["usage"]["total_tokens"]) == 8 + 3 * 8);
    }
    SECTION("content given as parts counts the text parts") {
        const std::string body =
            R"({"messages":[{"role":"user","content":[{"type":"text","text":"0123456789ab"},)"
            R"({"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]})";
        const auto r = b.on_request("POST", path, body, clock.now());
        REQUIRE(r.status == 200);
        auto doc = parse(p, r.body);
        CHECK(std::int64_t(doc["usage"]["prompt_tokens"]) == 3 + 4 + 3);
    }
}

TEST_CASE("an answer echoes the request's model and carries ids of its own") {
    test::manual_clock clock;
    mock_behavior b(mock_options{}, clock.now());
    simdjson::dom::parser p;
    const std::string body =
        R"({"model":"my \"quoted\" model","messages":[{"role":"user","content":"hi"}]})";
    std::set<std::string> ids;
    std::set<std::string> request_ids;
    for (int i = 0; i < 3; ++i) {
        const auto r = b.on_request("POST", path, body, clock.now());
        REQUIRE(r.status == 200);
        auto doc = parse(p, r.body);
        CHECK(std::string_view(doc["model"]) == R"(my "quoted" model)");
        CHECK(std::string_view(doc["object"]) == "chat.completion");
        const std::string id{std::string_view(doc["id"])};
        CHECK(id.rfind("chatcmpl-mock", 0) == 0);
        ids.insert(id);
        const auto rid = header(r, "x-request-id");
        REQUIRE(rid);
        // One serial per answer: the request id names the same one as the completion id.
        CHECK(*rid == "req_mock" + id.substr(std::string_view("chatcmpl-mock").size()));
        request_ids.insert(*rid);
    }
    CHECK(ids.size() == 3);
    CHECK(request_ids.size() == 3);

    // No model in the request: the mock names a default one.
    const auto r =
        b.on_request("POST", path, R"({"messages":[{"role":"user","content":"hi"}]})", clock.now());
    CHECK(std::string_view(parse(p, r.body)["model"]) == "gpt-4o-mini");
}

TEST_CASE("each fault at probability 1 has exactly its effect") {
    test::manual_clock clock;
    simdjson::dom::parser p;
    const std::string body = chat("hi");
    mock_options o;

    SECTION("reset") {
        o.faults.reset = 1;
        mock_behavior b(o, clock.now());
        CHECK(b.on_request("POST", path, body, clock.now()).what == mock_reply::action::reset);
        CHECK(b.counters().resets == 1);
    }
    SECTION("500") {
        o.faults.http_500 = 1;
        mock_behavior b(o, clock.now());
        const auto r = b.on_request("POST", path, body, clock.now());
        CHECK(r.status == 500);
        CHECK(std::string_view(parse(p, r.body)["error"]["type"]) == "server_error");
        CHECK(b.counters().server_errors == 1);
    }
    SECTION("503 with a short retry hint") {
        o.faults.http_503 = 1;
        mock_behavior b(o, clock.now());
        const auto r = b.on_request("POST", path, body, clock.now());
        CHECK(r.status == 503);
        CHECK(std::string_view(parse(p, r.body)["error"]["code"]) == "server_is_overloaded");
        CHECK(header(r, "retry-after-ms") == "50");
        CHECK(header(r, "retry-after") == "1");
    }
    SECTION("insufficient_quota") {
        o.faults.insufficient_quota = 1;
        mock_behavior b(o, clock.now());
        const auto r = b.on_request("POST", path, body, clock.now());
        CHECK(r.status == 429);
        CHECK(std::string_view(parse(p, r.body)["error"]["code"]) == "insufficient_quota");
        CHECK_FALSE(header(r, "retry-after")); // no point waiting: the account is out
        CHECK(b.counters().quota == 1);
    }
    SECTION("truncated: the whole body is decided, the server cuts it") {
        o.faults.truncated = 1;
        mock_behavior b(o, clock.now());
        const auto r = b.on_request("POST", path, body, clock.now());
        CHECK(r.what == mock_reply::action::truncate);
        CHECK(r.status == 200);
        simdjson::dom::element doc;
        CHECK(p.parse(r.body).get(doc) == simdjson::SUCCESS);
        CHECK(b.counters().truncated == 1);
        CHECK(b.counters().ok == 0);
    }
    SECTION("malformed: 200 with a body that is not JSON") {
        o.faults.malformed = 1;
        mock_behavior b(o, clock.now());
        const auto r = b.on_request("POST", path, body, clock.now());
        CHECK(r.status == 200);
        CHECK(r.what == mock_reply::action::respond);
        simdjson::dom::element doc;
        CHECK(p.parse(r.body).get(doc) != simdjson::SUCCESS);
        CHECK(b.counters().malformed == 1);
    }
    SECTION("slow: a normal answer after slow_delay") {
        o.faults.slow = 1;
        o.faults.slow_delay = 1500ms;
        o.latency = 3ms; // the slow delay replaces the latency
        mock_behavior b(o, clock.now());
        const auto r = b.on_request("POST", path, body, clock.now());
        CHECK(r.status == 200);
        CHECK(r.delay == 1500ms);
        CHECK(b.counters().slow == 1);
    }
}

TEST_CASE("fault draws are seeded: the same seed gives the same answers, at the set rates") {
    test::manual_clock clock;
    const std::string body = chat("hi");
    auto statuses = [&](std::uint64_t seed) {
        mock_options o;
        o.seed = seed;
        o.faults.http_500 = 0.2;
        o.faults.http_503 = 0.1;
        mock_behavior b(o, clock.now());
        std::vector<unsigned> out;
        for (int i = 0; i < 5000; ++i)
            out.push_back(b.on_request("POST", path, body, clock.now()).status);
        CHECK(b.counters().server_errors ==
              static_cast<std::uint64_t>(std::count_if(
                  out.begin(), out.end(), [](unsigned s) { return s == 500 || s == 503; })));
        return out;
    };
    const auto a = statuses(7);
    CHECK(statuses(7) == a);
    CHECK(statuses(8) != a);
    const auto n500 = std::count(a.begin(), a.end(), 500u);
    const auto n503 = std::count(a.begin(), a.end(), 503u);
    const auto n200 = std::count(a.begin(), a.end(), 200u);
    CHECK(n500 + n503 + n200 == 5000);
    // Well within chance for 5000 draws (the standard deviations are about 28 and 21).
    CHECK(n500 > 850);
    CHECK(n500 < 1150);
    CHECK(n503 > 400);
    CHECK(n503 < 600);
}

TEST_CASE("fault probabilities stack: faults summing to 1 leave no request answered 200") {
    test::manual_clock clock;
    mock_options o;
    o.faults.reset = 0.25;
    o.faults.http_500 = 0.25;
    o.faults.http_503 = 0.25;
    o.faults.insufficient_quota = 0.25;
    mock_behavior b(o, clock.now());
    for (int i = 0; i < 400; ++i) {
        const auto r = b.on_request("POST", path, chat("hi"), clock.now());
        CHECK((r.what == mock_reply::action::reset || r.status != 200));
    }
    const auto& c = b.counters();
    CHECK(c.ok == 0);
    CHECK(c.resets > 0);
    CHECK(c.quota > 0);
    CHECK(c.resets + c.server_errors + c.quota == 400);
}

TEST_CASE("latency is fixed, or exponential around its mean with a seed") {
    test::manual_clock clock;
    mock_options o;
    o.latency = 2000us;
    SECTION("fixed") {
        mock_behavior b(o, clock.now());
        CHECK(b.on_request("POST", path, chat("hi"), clock.now()).delay == 2000us);
    }
    SECTION("exponential") {
        o.exponential_latency = true;
        mock_behavior b(o, clock.now());
        double sum = 0;
        std::set<long long> distinct;
        for (int i = 0; i < 4000; ++i) {
            const auto d = b.on_request("POST", path, chat("hi"), clock.now()).delay;
            sum += static_cast<double>(d.count());
            distinct.insert(d.count());
        }
        CHECK(sum / 4000 == Approx(2000).epsilon(0.1));
        CHECK(distinct.size() > 1000);
    }
}

TEST_CASE("quota_after answers insufficient_quota to every request after the first N") {
    test::manual_clock clock;
    mock_options o;
    o.quota_after = 3;
    mock_behavior b(o, clock.now());
    simdjson::dom::parser p;
    for (int i = 0; i < 3; ++i)
        CHECK(b.on_request("POST", path, chat("hi"), clock.now()).status == 200);
    for (int i = 0; i < 3; ++i) {
        const auto r = b.on_request("POST", path, chat("hi"), clock.now());
        REQUIRE(r.status == 429);
        CHECK(std::string_view(parse(p, r.body)["error"]["type"]) == "insufficient_quota");
    }
    CHECK(b.counters().quota == 3);
}

TEST_CASE("close_every asks for Connection close on every Nth response") {
    test::manual_clock clock;
    mock_options o;
    o.close_every = 3;
    mock_behavior b(o, clock.now());
    std::vector<bool> closes;
    for (int i = 0; i < 7; ++i)
        closes.push_back(b.on_request("POST", path, chat("hi"), clock.now()).close);
    CHECK(closes == std::vector<bool>{false, false, true, false, false, true, false});
}

TEST_CASE("bad requests get OpenAI-shaped errors and are counted apart") {
    test::manual_clock clock;
    mock_behavior b(mock_options{}, clock.now());
    simdjson::dom::parser p;

    auto r = b.on_request("POST", path, "{not json", clock.now());
    CHECK(r.status == 400);
    CHECK(std::string_view(parse(p, r.body)["error"]["type"]) == "invalid_request_error");
    CHECK(b.on_request("POST", path, R"({"model":"m"})", clock.now()).status == 400);
    CHECK(b.on_request("POST", path, chat("hi", R"("n":0)"), clock.now()).status == 400);
    CHECK(b.counters().client_errors == 3);

    r = b.on_request("POST", "/v1/embeddings", chat("hi"), clock.now());
    CHECK(r.status == 404);
    CHECK(std::string_view(parse(p, r.body)["error"]["message"]) == "Unknown path /v1/embeddings");
    CHECK(b.on_request("GET", path, "", clock.now()).status == 405);
    // The path without /v1 is served too.
    CHECK(b.on_request("POST", "/chat/completions", chat("hi"), clock.now()).status == 200);
    // 404 and 405 are not chat-completion requests.
    CHECK(b.counters().requests == 4);
}

TEST_CASE("GET /mock/stats serves the counters as JSON") {
    test::manual_clock clock;
    mock_options o;
    o.rpm = 60;
    mock_behavior b(o, clock.now());
    b.on_request("POST", path, chat("hi"), clock.now());
    b.on_request("POST", path, chat("hi"), clock.now()); // 429
    b.on_request("POST", path, "[]", clock.now());       // 400
    b.counters().connections = 5;                        // kept by the server
    const auto r = b.on_request("GET", "/mock/stats", "", clock.now());
    REQUIRE(r.status == 200);
    simdjson::dom::parser p;
    auto doc = parse(p, r.body);
    CHECK(std::uint64_t(doc["requests"]) == 3);
    CHECK(std::uint64_t(doc["ok"]) == 1);
    CHECK(std::uint64_t(doc["rate_limited"]) == 1);
    CHECK(std::uint64_t(doc["client_errors"]) == 1);
    CHECK(std::uint64_t(doc["connections"]) == 5);
    CHECK(b.counters().requests == 3); // asking for the stats is not a request counted
}

TEST_CASE("reset durations are formatted as OpenAI's x-ratelimit-reset headers are") {
    using detail::format_go_duration;
    CHECK(format_go_duration(20ms) == "20ms");
    CHECK(format_go_duration(400us) == "1ms"); // rounded up: never a wait of zero
    CHECK(format_go_duration(0ns) == "0ms");
    CHECK(format_go_duration(-5ms) == "0ms");
    CHECK(format_go_duration(1500ms) == "1.5s");
    CHECK(format_go_duration(6min) == "6m0s");
    CHECK(format_go_duration(6min + 30s) == "6m30s");
}

TEST_CASE("the Azure route wants the api-key header and an api-version, as Azure does") {
    test::manual_clock clock;
    mock_behavior b(mock_options{}, clock.now());
    simdjson::dom::parser p;
    const std::string body = chat("hi");
    const std::string route = "/openai/deployments/gpt-4o-mini/chat/completions";
    auto code_of = [&](const mock_reply& r) {
        return std::string(std::string_view(parse(p, r.body)["error"]["code"]));
    };

    mock_reply r = b.on_request("POST", route + "?api-version=2024-10-21", body, clock.now());
    CHECK(r.status == 401); // no api-key header
    CHECK(code_of(r) == "401");
    r = b.on_request("POST", route, body, clock.now(), "azure-key");
    CHECK(r.status == 404); // Azure's answer to a missing api-version says nothing of it
    CHECK(code_of(r) == "404");
    r = b.on_request("POST", route + "?api-version=latest", body, clock.now(), "azure-key");
    CHECK(r.status == 400);
    CHECK(code_of(r) == "BadRequest");
    CHECK(b.counters().client_errors == 3);

    for (const std::string version : {"2024-10-21", "2025-01-01-preview"}) {
        r = b.on_request(
            "POST", route + "?x=1&api-version=" + version, body, clock.now(), "azure-key");
        INFO(version << ": " << r.body);
        CHECK(r.status == 200);
        CHECK(std::string_view(parse(p, r.body)["object"]) == "chat.completion");
    }
    // Not a deployment route: a path with more segments, or none.
    CHECK(b.on_request("POST",
                       "/openai/deployments//chat/completions?api-version=2024-10-21",
                       body,
                       clock.now(),
                       "k")
              .status == 404);
    CHECK(b.on_request("POST",
                       "/openai/deployments/a/b/chat/completions?api-version=2024-10-21",
                       body,
                       clock.now(),
                       "k")
              .status == 404);
    // The OpenAI route ignores a query and the api-key header alike.
    CHECK(b.on_request("POST", "/v1/chat/completions?api-version=1", body, clock.now()).status ==
          200);
}
