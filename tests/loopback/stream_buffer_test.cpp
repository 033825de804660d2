// Streams on connections beyond pool_options::tls_buffered_connections give their read buffer
// back while they wait between events and take it again for the next one: the answers must
// arrive as whole and as timed as before, over TLS and over plain HTTP, whole answers on the
// same connections too, and a stream that stalls while it holds no buffer is still cut by
// stream_idle_timeout.
#include "support/loopback.hpp"
#include "support/sse_server.hpp"

#include <sluice/dispatcher.hpp>

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace stream_buffer_test {

using namespace sluice;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

request make_request(int i, int tokens, bool stream) {
    request req;
    req.custom_id = "s" + std::to_string(i);
    req.body = test::chat_body(i, tokens);
    if (stream)
        req.body.insert(req.body.size() - 1, R"(,"stream":true)");
    return req;
}

// Sends each request at once through one engine and returns the results in order.
std::vector<result> complete_all(dispatcher_options opts, std::vector<request> reqs) {
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), std::move(opts));
    std::vector<result> out(reqs.size());
    std::size_t left = reqs.size();
    for (std::size_t k = 0; k < reqs.size(); ++k)
        engine.async_complete(std::move(reqs[k]), [&, k](error_code, result r) {
            out[k] = std::move(r);
            if (--left == 0)
                engine.stop();
        });
    ioc.run();
    return out;
}

} // namespace

TEST_CASE("streams that wait between events without a read buffer arrive whole") {
    const bool tls = GENERATE(false, true);
    INFO((tls ? "TLS" : "plain HTTP"));
    mock_options mo = test::mock_with_tls(tls);
    // Each content chunk on its own, 5 ms apart: every event is read after a wait.
    mo.chunk_interval = 5ms;
    test::loopback_mock mock(mo);
    const std::vector<int> lengths = {12, 3, 20, 7};

    std::vector<request> whole_reqs, stream_reqs;
    for (std::size_t k = 0; k < lengths.size(); ++k) {
        whole_reqs.push_back(make_request(static_cast<int>(k), lengths[k], false));
        stream_reqs.push_back(make_request(static_cast<int>(k), lengths[k], true));
    }
    const auto whole = complete_all(mock.client_options(), std::move(whole_reqs));
    dispatcher_options opts = mock.client_options();
    opts.pool.tls_buffered_connections = 0; // every connection is one beyond it
    const auto streamed = complete_all(opts, std::move(stream_reqs));

    for (std::size_t k = 0; k < lengths.size(); ++k) {
        INFO("answer " << k << " of " << lengths[k] << " tokens: " << streamed[k].message);
        REQUIRE(whole[k].ok());
        REQUIRE(streamed[k].ok());
        CHECK(streamed[k].streamed);
        REQUIRE(streamed[k].completion.choices.size() == 1);
        CHECK(streamed[k].completion.choices[0].content == whole[k].completion.choices[0].content);
        // One gap per content event after the first: each was timed on its own arrival.
        REQUIRE(whole[k].completion.usage);
        CHECK(streamed[k].times.token_gaps.size() + 1 ==
              static_cast<std::size_t>(whole[k].completion.usage->completion_tokens));
    }
}

TEST_CASE("whole answers on connections beyond tls_buffered_connections arrive whole") {
    const bool tls = GENERATE(false, true);
    INFO((tls ? "TLS" : "plain HTTP"));
    mock_options mo = test::mock_with_tls(tls);
    mo.latency = 5ms; // the head is awaited, not found at once
    test::loopback_mock mock(mo);
    std::vector<request> reqs;
    for (int i = 0; i < 12; ++i)
        reqs.push_back(make_request(i, 5 + i, false));
    dispatcher_options opts = mock.client_options();
    opts.pool.max_connections = 3;
    opts.pool.tls_buffered_connections = 0;
    const auto results = complete_all(opts, std::move(reqs));
    for (std::size_t k = 0; k < results.size(); ++k) {
        INFO("answer " << k << ": " << results[k].message);
        REQUIRE(results[k].ok());
        REQUIRE(results[k].completion.usage);
        CHECK(results[k].completion.usage->completion_tokens == 5 + k); // its max_tokens
        REQUIRE(results[k].completion.choices.size() == 1);
        REQUIRE(results[k].completion.choices[0].content);
        CHECK_FALSE(results[k].completion.choices[0].content->empty());
    }
    CHECK(mock.server().stats().connections <= 3);
}

TEST_CASE("a stream that stalls while it holds no read buffer is cut by stream_idle_timeout") {
    test::sse_server server({{0ms, test::content_event("one")}}, test::stream_end::stall);
    dispatcher_options o;
    o.base_url = server.base_url();
    o.retry.max_attempts = 1;
    o.pool.stream_idle_timeout = 200ms;
    o.pool.tls_buffered_connections = 0;
    std::vector<request> reqs;
    reqs.push_back(make_request(1, 4, true));
    const auto start = std::chrono::steady_clock::now();
    const auto results = complete_all(o, std::move(reqs));
    const result& r = results[0];
    CHECK(std::chrono::steady_clock::now() - start >= 200ms);
    CHECK(error_kind(r.ec) == std::string("timeout"));
    INFO(r.message);
    CHECK(r.message.find("stream_idle_timeout") != std::string::npos);
    CHECK(r.message.find("stream: 1 event,") != std::string::npos);
}

} // namespace stream_buffer_test
