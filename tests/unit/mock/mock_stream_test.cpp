// The mock's streamed answers without sockets: mock_behavior maps a `"stream": true` request to
// a schedule of pieces (SSE events due at offsets from the request) and how the stream ends,
// so the timing is checked here exactly, with the manual clock, and
// tests/loopback/mock_stream_test.cpp only checks that the server keeps to it.

#include "support/manual_clock.hpp"

#include "mock/mock_behavior.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;
using detail::mock_behavior;
using detail::mock_reply;
using detail::stream_end;
using std::chrono::microseconds;

namespace {

const std::string completions_path = "/v1/chat/completions";

std::string stream_request(std::string_view extra = "") {
    std::string body =
        R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}])";
    if (!extra.empty()) {
        body += ',';
        body += extra;
    }
    body += '}';
    return body;
}

// The `data:` payloads of whole SSE events, in order; fails on a partial event.
std::vector<std::string> payloads(const std::string& bytes) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < bytes.size()) {
        REQUIRE(bytes.compare(at, 6, "data: ") == 0);
        const std::size_t end = bytes.find("\n\n", at);
        REQUIRE(end != std::string::npos);
        out.push_back(bytes.substr(at + 6, end - at - 6));
        at = end + 2;
    }
    return out;
}

// A stream's schedule, checked for what every stream keeps to: pieces of whole events, never
// empty (an empty chunk would end the body), due in order, none after the end.
detail::stream_schedule stream_of(const mock_reply& r) {
    REQUIRE(r.what == mock_reply::action::stream);
    REQUIRE(r.status == 200);
    CHECK(r.content_type == "text/event-stream");
    CHECK(r.body.empty());
    const detail::stream_schedule& s = r.stream;
    REQUIRE_FALSE(s.pieces.empty());
    CHECK(s.pieces.front().at == r.delay); // the role chunks go with the head
    for (std::size_t i = 0; i < s.pieces.size(); ++i) {
        CHECK_FALSE(s.pieces[i].bytes.empty());
        CHECK_FALSE(payloads(s.pieces[i].bytes).empty());
        if (i)
            CHECK(s.pieces[i].at >= s.pieces[i - 1].at);
        CHECK(s.pieces[i].at <= s.end_at);
    }
    return s;
}

std::string all_bytes(const detail::stream_schedule& s) {
    std::string out;
    for (const auto& p : s.pieces)
        out += p.bytes;
    return out;
}

// The content of each event of a piece ("" for events without content).
std::vector<std::string> contents(simdjson::dom::parser& p, const std::string& bytes) {
    std::vector<std::string> out;
    for (const auto& e : payloads(bytes)) {
        simdjson::dom::element doc;
        REQUIRE(p.parse(e).get(doc) == simdjson::SUCCESS);
        std::string_view text;
        simdjson::dom::array choices = doc["choices"];
        if (choices.size() == 0 || choices.at(0)["delta"]["content"].get(text))
            text = "";
        out.emplace_back(text);
    }
    return out;
}

std::vector<microseconds> times(const detail::stream_schedule& s) {
    std::vector<microseconds> out;
    for (const auto& p : s.pieces)
        out.push_back(p.at);
    return out;
}

} // namespace

TEST_CASE("without timing options the whole stream is due at once, as before") {
    test::manual_clock clock;
    mock_options o;
    o.answer_tokens = 3;
    mock_behavior b(o, clock.now());
    simdjson::dom::parser p;

    auto check = [&](const mock_reply& r, bool want_usage) {
        const auto& s = stream_of(r);
        CHECK(s.end == stream_end::done);
        CHECK(s.end_at == 0us);
        for (const auto& piece : s.pieces)
            CHECK(piece.at == 0us);
        const std::string body = all_bytes(s);
        CHECK(body.substr(body.size() - 14) == "data: [DONE]\n\n");
        const auto events = payloads(body);
        // A role chunk, one chunk per token, a finish chunk; then the usage chunk if asked.
        REQUIRE(events.size() == 1 + 3 + 1 + (want_usage ? 1 : 0) + 1);
        std::string text;
        for (std::size_t i = 0; i + 1 < events.size(); ++i) {
            simdjson::dom::element doc;
            REQUIRE(p.parse(events[i]).get(doc) == simdjson::SUCCESS);
            CHECK(std::string_view(doc["object"]) == "chat.completion.chunk");
            simdjson::dom::array choices = doc["choices"];
            if (choices.size() == 0) {
                CHECK(want_usage);
                CHECK(i == events.size() - 2); // the usage chunk comes last
                CHECK(std::int64_t(doc["usage"]["completion_tokens"]) == 3);
                continue;
            }
            std::string_view piece;
            if (choices.at(0)["delta"]["content"].get(piece) == simdjson::SUCCESS)
                text += piece;
        }
        CHECK(text == "lorem ipsum dolor");
        CHECK(body.find(R"("finish_reason":"stop")") != std::string::npos);
    };
    check(b.on_request("POST", completions_path, stream_request(), clock.now()), false);
    check(b.on_request("POST",
                       completions_path,
                       stream_request(R"("stream_options":{"include_usage":true})"),
                       clock.now()),
          true);
    CHECK(b.counters().streamed == 2);
    CHECK(b.counters().ok == 2);
}

TEST_CASE("content is due at first_token, then every chunk_interval, from the request") {
    test::manual_clock clock;
    mock_options o;
    o.answer_tokens = 5;
    o.first_token = 50ms;
    o.chunk_interval = 20ms;
    microseconds head{0};
    SECTION("without latency") {}
    SECTION("latency comes first: the head, then first_token after it") {
        o.latency = 10ms;
        head = 10ms;
    }
    mock_behavior b(o, clock.now());
    simdjson::dom::parser p;
    clock.advance(1h); // offsets are from the request, whenever it comes
    const auto r = b.on_request("POST", completions_path, stream_request(), clock.now());
    CHECK(r.delay == head);
    const auto& s = stream_of(r);
    // Role; five words; the finish chunk and [DONE] with the last word.
    CHECK(
        times(s) ==
        std::vector<microseconds>{
            head, head + 50ms, head + 70ms, head + 90ms, head + 110ms, head + 130ms, head + 130ms});
    CHECK(s.end == stream_end::done);
    CHECK(s.end_at == head + 130ms);
    CHECK(contents(p, s.pieces[0].bytes) == std::vector<std::string>{""});
    CHECK(contents(p, s.pieces[1].bytes) == std::vector<std::string>{"lorem"});
    CHECK(contents(p, s.pieces[2].bytes) == std::vector<std::string>{" ipsum"});
    CHECK(contents(p, s.pieces[5].bytes) == std::vector<std::string>{" amet"});
    CHECK(payloads(s.pieces[6].bytes).back() == "[DONE]");
}

TEST_CASE("tokens_per_chunk groups words, the last chunk has what is left") {
    test::manual_clock clock;
    mock_options o;
    o.answer_tokens = 8;
    o.tokens_per_chunk = 3;
    o.first_token = 5ms;
    o.chunk_interval = 1ms;
    mock_behavior b(o, clock.now());
    simdjson::dom::parser p;
    const auto r = b.on_request("POST",
                                completions_path,
                                stream_request(R"("stream_options":{"include_usage":true})"),
                                clock.now());
    const auto& s = stream_of(r);
    REQUIRE(s.pieces.size() == 1 + 3 + 1);
    CHECK(times(s) == std::vector<microseconds>{0us, 5ms, 6ms, 7ms, 7ms});
    CHECK(contents(p, s.pieces[1].bytes) == std::vector<std::string>{"lorem ipsum dolor"});
    CHECK(contents(p, s.pieces[2].bytes) == std::vector<std::string>{" sit amet consectetur"});
    CHECK(contents(p, s.pieces[3].bytes) == std::vector<std::string>{" adipiscing elit"});
    // Usage counts tokens, not chunks.
    CHECK(all_bytes(s).find(R"("completion_tokens":8,)") != std::string::npos);
}

TEST_CASE("n choices stream interleaved: each content piece has one event per choice") {
    test::manual_clock clock;
    mock_options o;
    o.answer_tokens = 4;
    o.chunk_interval = 1ms;
    mock_behavior b(o, clock.now());
    simdjson::dom::parser p;
    const auto& s =
        stream_of(b.on_request("POST", completions_path, stream_request(R"("n":2)"), clock.now()));
    REQUIRE(s.pieces.size() == 1 + 4 + 1);
    std::string text[2];
    for (const auto& piece : s.pieces) {
        const auto events = payloads(piece.bytes);
        if (events.back() == "[DONE]") {
            CHECK(events.size() == 2 + 1); // two finish chunks, no usage chunk, [DONE]
            continue;
        }
        REQUIRE(events.size() == 2);
        for (std::int64_t i = 0; i < 2; ++i) {
            simdjson::dom::element doc;
            REQUIRE(p.parse(events[i]).get(doc) == simdjson::SUCCESS);
            CHECK(std::int64_t(doc["choices"].at(0)["index"]) == i);
            std::string_view t;
            if (doc["choices"].at(0)["delta"]["content"].get(t) == simdjson::SUCCESS)
                text[i] += t;
        }
    }
    CHECK(text[0] == "lorem ipsum dolor sit");
    CHECK(text[1] == text[0]);
}

TEST_CASE("exponential gaps have the set mean, are seeded, and leave the fault draws alone") {
    test::manual_clock clock;
    mock_options o;
    o.answer_tokens = 4001; // 4000 gaps
    o.first_token = 7ms;
    o.chunk_interval = 1000us;
    o.exponential_chunks = true;
    auto gaps = [&](std::uint64_t seed) {
        o.seed = seed;
        mock_behavior b(o, clock.now());
        const auto& s =
            stream_of(b.on_request("POST", completions_path, stream_request(), clock.now()));
        REQUIRE(s.pieces.size() == 4003);
        CHECK(s.pieces[1].at == 7ms); // no draw before the first token
        std::vector<long long> out;
        for (std::size_t i = 2; i + 1 < s.pieces.size(); ++i)
            out.push_back((s.pieces[i].at - s.pieces[i - 1].at).count());
        return out;
    };
    const auto a = gaps(11);
    double sum = 0;
    for (long long g : a)
        sum += static_cast<double>(g);
    // The mean of 4000 draws is within 6% of 1000 us: about 4 standard deviations (16 us).
    CHECK(sum / 4000 == Approx(1000).epsilon(0.06));
    CHECK(std::set<long long>(a.begin(), a.end()).size() > 1000);
    CHECK(gaps(11) == a);
    CHECK(gaps(12) != a);

    // The gaps have an engine of their own: one seed gives the same faults with or without.
    auto statuses = [&](bool exponential) {
        mock_options f;
        f.seed = 5;
        f.faults.http_500 = 0.3;
        f.answer_tokens = 20;
        f.chunk_interval = 1ms;
        f.exponential_chunks = exponential;
        mock_behavior b(f, clock.now());
        std::vector<unsigned> out;
        for (int i = 0; i < 200; ++i)
            out.push_back(
                b.on_request("POST", completions_path, stream_request(), clock.now()).status);
        return out;
    };
    CHECK(statuses(true) == statuses(false));
}

TEST_CASE("stream_error sends an error event after half the content, and the stream ends") {
    test::manual_clock clock;
    mock_options o;
    o.answer_tokens = 8;
    o.first_token = 50ms;
    o.chunk_interval = 20ms;
    o.faults.stream_error = 1;
    mock_behavior b(o, clock.now());
    simdjson::dom::parser p;
    const auto& s =
        stream_of(b.on_request("POST",
                               completions_path,
                               stream_request(R"("stream_options":{"include_usage":true})"),
                               clock.now()));
    // Role; four of eight words; the error when the fifth word would have been due.
    CHECK(times(s) == std::vector<microseconds>{0us, 50ms, 70ms, 90ms, 110ms, 130ms});
    CHECK(s.end == stream_end::done);
    CHECK(s.end_at == 130ms);
    std::string text;
    for (std::size_t i = 1; i < 5; ++i)
        text += contents(p, s.pieces[i].bytes).at(0);
    CHECK(text == "lorem ipsum dolor sit");

    const auto events = payloads(s.pieces.back().bytes);
    REQUIRE(events.size() == 1);
    simdjson::dom::element doc;
    REQUIRE(p.parse(events[0]).get(doc) == simdjson::SUCCESS);
    CHECK(std::string_view(doc["error"]["type"]) == "server_error");
    CHECK_FALSE(std::string_view(doc["error"]["message"]).empty());
    CHECK(doc["error"]["code"].is_null());
    // Nothing after it: no finish chunk, no usage chunk, no [DONE].
    const std::string body = all_bytes(s);
    CHECK(body.find("[DONE]") == std::string::npos);
    CHECK(body.find(R"("finish_reason":"stop")") == std::string::npos);
    CHECK(body.find(R"("usage")") == std::string::npos);
    CHECK(b.counters().streamed == 1);
    CHECK(b.counters().stream_errors == 1);
    CHECK(b.counters().ok == 0);
}

TEST_CASE("stream_cut is a cut after half the content, when the next piece was due") {
    test::manual_clock clock;
    mock_options o;
    o.answer_tokens = 8;
    o.first_token = 50ms;
    o.chunk_interval = 20ms;
    o.faults.stream_cut = 1;
    mock_behavior b(o, clock.now());
    const auto& s =
        stream_of(b.on_request("POST", completions_path, stream_request(), clock.now()));
    CHECK(times(s) == std::vector<microseconds>{0us, 50ms, 70ms, 90ms, 110ms});
    CHECK(s.end == stream_end::cut);
    CHECK(s.end_at == 130ms);
    CHECK(all_bytes(s).find("[DONE]") == std::string::npos);
    CHECK(b.counters().streamed == 1);
    CHECK(b.counters().stream_cuts == 1);
    CHECK(b.counters().ok == 0);

    SECTION("a one-chunk answer still streams its content before the cut") {
        o.answer_tokens = 1;
        mock_behavior one(o, clock.now());
        const auto& s1 =
            stream_of(one.on_request("POST", completions_path, stream_request(), clock.now()));
        CHECK(times(s1) == std::vector<microseconds>{0us, 50ms});
        CHECK(s1.end_at == 70ms);
    }
}

TEST_CASE("streaming faults are drawn for streams only, body faults for bodies only") {
    test::manual_clock clock;
    mock_options o;
    o.faults.stream_error = 0.5;
    o.faults.stream_cut = 0.5;
    mock_behavior b(o, clock.now());
    const std::string plain = R"({"messages":[{"role":"user","content":"hi"}]})";
    for (int i = 0; i < 50; ++i) {
        const auto r = b.on_request("POST", completions_path, plain, clock.now());
        CHECK(r.what == mock_reply::action::respond);
        CHECK(r.status == 200);
    }
    CHECK(b.counters().ok == 50);
    CHECK(b.counters().stream_errors + b.counters().stream_cuts == 0);

    mock_options t;
    t.faults.truncated = 0.5;
    t.faults.malformed = 0.5;
    mock_behavior bt(t, clock.now());
    for (int i = 0; i < 50; ++i)
        CHECK(
            stream_of(bt.on_request("POST", completions_path, stream_request(), clock.now())).end ==
            stream_end::done);
    CHECK(bt.counters().ok == 50);
}

TEST_CASE("streaming faults stack at their rates, and the stats endpoint counts them") {
    test::manual_clock clock;
    mock_options o;
    o.faults.stream_error = 0.3;
    o.faults.stream_cut = 0.2;
    mock_behavior b(o, clock.now());
    int errors = 0, cuts = 0;
    for (int i = 0; i < 2000; ++i) {
        const auto& s =
            stream_of(b.on_request("POST", completions_path, stream_request(), clock.now()));
        const bool error = all_bytes(s).find(R"({"error")") != std::string::npos;
        errors += error;
        cuts += s.end == stream_end::cut;
        CHECK_FALSE((error && s.end == stream_end::cut));
    }
    const auto& c = b.counters();
    CHECK(c.stream_errors == static_cast<std::uint64_t>(errors));
    CHECK(c.stream_cuts == static_cast<std::uint64_t>(cuts));
    CHECK(c.ok + c.stream_errors + c.stream_cuts == 2000);
    // Standard deviations about 20 and 18.
    CHECK(errors > 500);
    CHECK(errors < 700);
    CHECK(cuts > 320);
    CHECK(cuts < 480);

    simdjson::dom::parser p;
    simdjson::dom::element doc;
    const auto r = b.on_request("GET", "/mock/stats", "", clock.now());
    REQUIRE(p.parse(r.body).get(doc) == simdjson::SUCCESS);
    CHECK(std::uint64_t(doc["streamed"]) == 2000);
    CHECK(std::uint64_t(doc["stream_errors"]) == c.stream_errors);
    CHECK(std::uint64_t(doc["stream_cuts"]) == c.stream_cuts);
}

TEST_CASE("an answer of no tokens streams the role, then the end at first_token") {
    test::manual_clock clock;
    mock_options o;
    o.answer_tokens = 0;
    o.first_token = 3ms;
    mock_behavior b(o, clock.now());
    const auto& s =
        stream_of(b.on_request("POST", completions_path, stream_request(), clock.now()));
    CHECK(times(s) == std::vector<microseconds>{0us, 3ms});
    CHECK(payloads(s.pieces[1].bytes).back() == "[DONE]");
}
