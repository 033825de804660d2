// Streamed answers end to end: the engine reads the event stream as it arrives, times every
// event carrying content, and delivers the same result a whole answer gives; a stream that
// fails midway (an error event, a cut, a stall) fails its request by the retry rules, naming
// what had arrived.
#include "support/loopback.hpp"
#include "support/sse_server.hpp"

#include <sluice/dispatcher.hpp>

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace stream_test {

using namespace sluice;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

std::string streaming(std::string body) {
    body.insert(body.size() - 1, R"(,"stream":true)");
    return body;
}

// Runs one request to its result.
result complete_one(dispatcher_options opts, request req) {
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), std::move(opts));
    result out;
    engine.async_complete(std::move(req), [&](error_code, result r) {
        out = std::move(r);
        engine.stop();
    });
    ioc.run();
    return out;
}

request make_request(std::string body) {
    request req;
    req.custom_id = "s1";
    req.body = std::move(body);
    return req;
}

dispatcher_options quick_retries(const std::string& base_url, unsigned attempts) {
    dispatcher_options o;
    o.base_url = base_url;
    o.retry.max_attempts = attempts;
    o.retry.initial_backoff = 1ms;
    o.retry.max_backoff = 1ms;
    return o;
}

} // namespace

TEST_CASE("a streamed answer is delivered as the same completion a whole answer gives") {
    test::loopback_mock mock;
    const result whole = complete_one(mock.client_options(), make_request(test::chat_body(1)));
    REQUIRE(whole.ok());
    REQUIRE_FALSE(whole.streamed);

    request req = make_request(streaming(test::chat_body(1)));
    std::string deltas;
    int delta_calls = 0;
    req.on_delta = [&](const stream_delta& d) {
        deltas.append(d.content);
        ++delta_calls;
    };
    const result r = complete_one(mock.client_options(), std::move(req));
    INFO(r.message);
    REQUIRE(r.ok());
    CHECK(r.streamed);
    CHECK(r.status == 200);
    REQUIRE(r.completion.choices.size() == 1);
    CHECK(r.completion.choices[0].content == whole.completion.choices[0].content);
    CHECK(r.completion.choices[0].finish_reason == whole.completion.choices[0].finish_reason);
    // The engine asked for the usage chunk; the server's count arrived with it.
    REQUIRE(r.completion.usage);
    CHECK(r.completion.usage->completion_tokens == whole.completion.usage->completion_tokens);
    CHECK(r.completion.body_is_json);
    CHECK(r.body.find(R"("object":"chat.completion")") != std::string::npos);
    // The mock's answer is 16 words, one content event each.
    CHECK(delta_calls == 16);
    CHECK(deltas == *whole.completion.choices[0].content);
    CHECK(r.times.first_token >= r.times.first_byte);
    CHECK(r.times.first_byte >= r.times.sent);
    CHECK(r.times.token_gaps.size() == 15);
}

TEST_CASE("without streamed_body a streamed answer gives the same fields and no text") {
    test::loopback_mock mock;
    const result whole = complete_one(mock.client_options(), make_request(test::chat_body(1)));
    REQUIRE(whole.ok());
    dispatcher_options opts = mock.client_options();
    opts.streamed_body = false;
    const result r = complete_one(opts, make_request(streaming(test::chat_body(1))));
    INFO(r.message);
    REQUIRE(r.ok());
    CHECK(r.streamed);
    CHECK(r.body.empty());
    REQUIRE(r.completion.choices.size() == 1);
    CHECK(r.completion.choices[0].content == whole.completion.choices[0].content);
    REQUIRE(r.completion.usage);
    CHECK(r.completion.usage->completion_tokens == whole.completion.usage->completion_tokens);
    CHECK(r.times.token_gaps.size() == 15);

    // An error event still fails the request, with the server's message.
    test::sse_server server({{0ms, test::content_event("partial")},
                             {0ms,
                              "data: {\"error\":{\"message\":\"engine overloaded\","
                              "\"type\":\"server_error\",\"code\":null}}\n\n"}},
                            test::stream_end::done);
    dispatcher_options failing = quick_retries(server.base_url(), 1);
    failing.streamed_body = false;
    const result e = complete_one(failing, make_request(streaming("{\"a\":1}")));
    CHECK(e.ec == errc::server_error);
    CHECK(e.message.find("engine overloaded") != std::string::npos);
    CHECK(e.body.empty());
}

TEST_CASE("the request sent asks for the usage chunk, and the first token is timed on arrival") {
    test::sse_server server({{0ms,
                              "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                              "\"assistant\"}}]}\n\n"},
                             {150ms, test::content_event("Hel")},
                             {50ms, test::content_event("lo")},
                             {0ms, "data: [DONE]\n\n"}},
                            test::stream_end::done);
    const result r = complete_one(quick_retries(server.base_url(), 1),
                                  make_request(streaming("{\"model\":\"m\"}")));
    INFO(r.message);
    REQUIRE(r.ok());
    CHECK(server.last_body() ==
          R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})");
    CHECK(r.completion.choices[0].content == "Hello");
    CHECK_FALSE(r.completion.usage); // none came: the limiter keeps the estimate
    // Lower bounds only, from a moment before the write (`sent` is taken when the write's
    // handler runs, which a loaded machine can delay): events can only arrive later. A single
    // gap has no such bound (a late read of one event brings it closer to the next).
    CHECK(r.times.first_token - r.times.admitted >= 150ms);
    REQUIRE(r.times.token_gaps.size() == 1);
    CHECK(r.times.first_token + r.times.token_gaps[0] - r.times.admitted >= 200ms);
}

TEST_CASE("a request whose caller says it streams is sent as written and read as a stream") {
    test::sse_server server({{0ms, test::content_event("Hi")}, {0ms, "data: [DONE]\n\n"}},
                            test::stream_end::done);
    // The caller's word (request::streams): the body is not parsed or prepared again, so no
    // stream_options is added, and the answer is still read event by event.
    request req = make_request(R"({"model":"m","stream":true})");
    req.streams = true;
    const result r = complete_one(quick_retries(server.base_url(), 1), std::move(req));
    INFO(r.message);
    REQUIRE(r.ok());
    CHECK(server.last_body() == R"({"model":"m","stream":true})");
    CHECK(r.streamed);
    CHECK(r.completion.choices[0].content == "Hi");
}

TEST_CASE("an error event mid-stream fails the request as a server error, retried") {
    test::sse_server server({{0ms, test::content_event("partial")},
                             {0ms,
                              "data: {\"error\":{\"message\":\"engine overloaded\","
                              "\"type\":\"server_error\",\"code\":null}}\n\n"}},
                            test::stream_end::done);
    const result r =
        complete_one(quick_retries(server.base_url(), 2), make_request(streaming("{\"a\":1}")));
    CHECK(r.ec == errc::server_error);
    CHECK(r.attempts == 2);
    CHECK(server.requests() == 2);
    CHECK(r.message.find("engine overloaded") != std::string::npos);
    CHECK(r.message.find("stream: 2 events") != std::string::npos);
    REQUIRE(r.completion.error);
    CHECK(r.completion.error->message == "engine overloaded");
}

TEST_CASE("a stream cut mid-event is retried and fails naming what had arrived") {
    test::sse_server server({{0ms, test::content_event("one")},
                             {0ms, test::content_event("two")},
                             {0ms, "data: {\"id\":\"c1\",\"obj"}},
                            test::stream_end::cut);
    const result r =
        complete_one(quick_retries(server.base_url(), 3), make_request(streaming("{\"a\":1}")));
    CHECK_FALSE(r.ok());
    CHECK(is_retryable(r.ec));
    CHECK(r.attempts == 3);
    CHECK(server.requests() == 3);
    INFO(r.message);
    CHECK(r.message.find("stream: 2 events, 6 bytes of content, no [DONE]") != std::string::npos);
}

TEST_CASE("a stream that stalls longer than stream_idle_timeout is cut") {
    test::sse_server server({{0ms, test::content_event("one")}}, test::stream_end::stall);
    dispatcher_options o = quick_retries(server.base_url(), 1);
    o.pool.stream_idle_timeout = 200ms;
    const auto start = std::chrono::steady_clock::now();
    const result r = complete_one(o, make_request(streaming("{\"a\":1}")));
    CHECK(std::chrono::steady_clock::now() - start >= 200ms);
    CHECK(error_kind(r.ec) == std::string("timeout"));
    INFO(r.message);
    CHECK(r.message.find("stream_idle_timeout") != std::string::npos);
    CHECK(r.message.find("stream: 1 event,") != std::string::npos);
}

TEST_CASE("a long event stream is read a TLS record's worth at a time, not 512 bytes") {
    // Each read is a trip through the TLS engine and a handler; events that come in one
    // read share its arrival time. 200 events (about 30 KB) sent in one write arrive in a
    // few reads of up to 16 KiB; at the 512 bytes the head's read leaves room for, it
    // would take some 60.
    std::string events;
    for (int i = 0; i < 200; ++i)
        events += test::content_event("word" + std::to_string(i) + " of a long answer");
    test::sse_server server({{0ms, events}, {0ms, "data: [DONE]\n\n"}}, test::stream_end::done);
    const result r = complete_one(quick_retries(server.base_url(), 1),
                                  make_request(streaming("{\"model\":\"m\"}")));
    INFO(r.message);
    REQUIRE(r.ok());
    REQUIRE(r.times.token_gaps.size() == 199);
    const auto reads = 1 + std::count_if(r.times.token_gaps.begin(),
                                         r.times.token_gaps.end(),
                                         [](auto gap) { return gap.count() > 0; });
    INFO("events arrived in " << reads << " reads");
    CHECK(reads <= 12);
}

TEST_CASE("streams one after another on one engine each assemble their own answer") {
    // The engine keeps the readers of delivered streams for the next ones: a short answer
    // after a long one must hold nothing of it (text, timings, usage).
    test::loopback_mock mock;
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), mock.client_options());
    std::vector<result> whole, streamed;
    const std::vector<int> lengths = {40, 3, 17, 1, 40, 8};
    std::function<void(std::size_t)> next = [&](std::size_t i) {
        if (i == 2 * lengths.size())
            return engine.stop();
        const std::size_t k = i / 2;
        std::string body = test::chat_body(static_cast<int>(k), lengths[k]);
        if (i % 2 == 1)
            body = streaming(body);
        engine.async_complete(make_request(body), [&, i](error_code, result r) {
            (i % 2 == 1 ? streamed : whole).push_back(std::move(r));
            next(i + 1);
        });
    };
    next(0);
    ioc.run();
    REQUIRE(streamed.size() == lengths.size());
    for (std::size_t k = 0; k < lengths.size(); ++k) {
        INFO("answer " << k << " of " << lengths[k] << " tokens: " << streamed[k].message);
        REQUIRE(whole[k].ok());
        REQUIRE(streamed[k].ok());
        REQUIRE(streamed[k].completion.choices.size() == 1);
        CHECK(streamed[k].completion.choices[0].content == whole[k].completion.choices[0].content);
        REQUIRE(streamed[k].completion.usage);
        CHECK(streamed[k].completion.usage->completion_tokens ==
              whole[k].completion.usage->completion_tokens);
        CHECK(streamed[k].times.token_gaps.size() + 1 ==
              static_cast<std::size_t>(whole[k].completion.usage->completion_tokens));
    }
}

TEST_CASE("more streams than connections, in flight at once, each get their own answer") {
    // The readers of one engine share its chunk parsers, the streams on the wire arrive
    // interleaved, and the requests waiting for a connection take a reader only when sent:
    // every answer and every request's deltas must still be its own.
    test::loopback_mock mock;
    const std::vector<int> lengths = {40, 3, 17, 1, 25, 8, 33, 12};
    std::vector<result> whole(lengths.size()), streamed(lengths.size());
    std::vector<std::string> deltas(lengths.size());
    {
        asio::io_context ioc;
        dispatcher engine(ioc.get_executor(), mock.client_options());
        std::size_t left = lengths.size();
        for (std::size_t k = 0; k < lengths.size(); ++k)
            engine.async_complete(make_request(test::chat_body(static_cast<int>(k), lengths[k])),
                                  [&, k](error_code, result r) {
                                      whole[k] = std::move(r);
                                      if (--left == 0)
                                          engine.stop();
                                  });
        ioc.run();
    }
    asio::io_context ioc;
    dispatcher_options opts = mock.client_options();
    opts.pool.max_connections = 3;
    dispatcher engine(ioc.get_executor(), opts);
    std::size_t left = lengths.size();
    for (std::size_t k = 0; k < lengths.size(); ++k) {
        request req = make_request(streaming(test::chat_body(static_cast<int>(k), lengths[k])));
        req.on_delta = [&deltas, k](const stream_delta& d) {
            deltas[k] += d.content;
        };
        engine.async_complete(std::move(req), [&, k](error_code, result r) {
            streamed[k] = std::move(r);
            if (--left == 0)
                engine.stop();
        });
    }
    ioc.run();
    for (std::size_t k = 0; k < lengths.size(); ++k) {
        INFO("answer " << k << " of " << lengths[k] << " tokens: " << streamed[k].message);
        REQUIRE(whole[k].ok());
        REQUIRE(streamed[k].ok());
        CHECK(streamed[k].streamed);
        REQUIRE(streamed[k].completion.choices.size() == 1);
        CHECK(streamed[k].completion.choices[0].content == whole[k].completion.choices[0].content);
        CHECK(deltas[k] == whole[k].completion.choices[0].content);
        REQUIRE(streamed[k].completion.usage);
        CHECK(streamed[k].completion.usage->completion_tokens ==
              whole[k].completion.usage->completion_tokens);
    }
}

} // namespace stream_test
