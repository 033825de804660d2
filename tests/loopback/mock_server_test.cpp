// The mock server, driven by a small synchronous Beast client: bodies, keep-alive, limits,
// every fault kind, SSE and the stats endpoint.
#include "support/loopback.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace mock_server_test {

using namespace sluice;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// One plain keep-alive client connection to the mock.
class client {
public:
    explicit client(std::uint16_t port)
        : stream_(ioc_) {
        stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    }

    http::response<http::string_body> post(const std::string& body,
                                           const std::string& target = "/v1/chat/completions") {
        error_code ec;
        auto r = post(body, target, ec);
        REQUIRE_FALSE(ec);
        return r;
    }

    http::response<http::string_body>
    post(const std::string& body, const std::string& target, error_code& ec) {
        http::request<http::string_body> req{http::verb::post, target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::content_type, "application/json");
        req.body() = body;
        req.prepare_payload();
        http::write(stream_, req, ec);
        http::response<http::string_body> res;
        if (!ec)
            http::read(stream_, buffer_, res, ec);
        return res;
    }

    http::response<http::string_body> get(const std::string& target) {
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "127.0.0.1");
        http::write(stream_, req);
        http::response<http::string_body> res;
        http::read(stream_, buffer_, res);
        return res;
    }

private:
    asio::io_context ioc_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
};

simdjson::dom::element parse(simdjson::dom::parser& p, const std::string& body) {
    return p.parse(body);
}

mock_options with_fault(double mock_faults::*which) {
    mock_options o;
    o.faults.*which = 1.0;
    return o;
}

} // namespace

TEST_CASE("a completion's usage is computed from the request") {
    test::loopback_mock mock;
    client c(mock.server().port());
    // 40 characters of content in two messages: ceil(40 / 4) + 4 * 2 + 3 = 21 prompt tokens.
    const std::string body =
        R"({"model":"my-model","max_tokens":5,"messages":[{"role":"system","content":"0123456789"},)"
        R"({"role":"user","content":"012345678901234567890123456789"}]})";
    const auto res = c.post(body);
    CHECK(res.result_int() == 200);
    CHECK(res[http::field::content_type] == "application/json");
    CHECK_FALSE(res["x-request-id"].empty());
    simdjson::dom::parser p;
    auto doc = parse(p, res.body());
    CHECK(std::string_view(doc["object"]) == "chat.completion");
    CHECK(std::string_view(doc["model"]) == "my-model");
    CHECK(std::int64_t(doc["usage"]["prompt_tokens"]) == 21);
    CHECK(std::int64_t(doc["usage"]["completion_tokens"]) == 5); // capped by max_tokens
    CHECK(std::int64_t(doc["usage"]["total_tokens"]) == 26);
    CHECK(std::string_view(doc["choices"].at(0)["finish_reason"]) == "length");
    CHECK(std::string_view(doc["choices"].at(0)["message"]["content"]) ==
          "lorem ipsum dolor sit amet");
}

TEST_CASE("n choices and keep-alive on one connection") {
    test::loopback_mock mock;
    client c(mock.server().port());
    simdjson::dom::parser p;
    for (int i = 0; i < 50; ++i) {
        const auto res =
            c.post(R"({"model":"m","n":3,"messages":[{"role":"user","content":"hi"}]})");
        REQUIRE(res.result_int() == 200);
        CHECK(res.keep_alive());
        CHECK(simdjson::dom::array(parse(p, res.body())["choices"]).size() == 3);
    }
    CHECK(mock.server().stats().connections == 1);
    CHECK(mock.server().stats().ok == 50);
}

TEST_CASE("over its RPM limit the mock answers 429 with OpenAI's headers") {
    mock_options o;
    o.rpm = 60; // one a second, bucket of one
    test::loopback_mock mock(o);
    client c(mock.server().port());
    const std::string body = test::chat_body(1);
    CHECK(c.post(body).result_int() == 200);
    const auto res = c.post(body);
    REQUIRE(res.result_int() == 429);
    simdjson::dom::parser p;
    auto doc = parse(p, res.body());
    CHECK(std::string_view(doc["error"]["code"]) == "rate_limit_exceeded");
    CHECK(std::string_view(doc["error"]["type"]) == "requests");
    CHECK_FALSE(res["retry-after-ms"].empty());
    CHECK(res["retry-after"] == "1");
    CHECK(res["x-ratelimit-limit-requests"] == "60");
    CHECK(res["x-ratelimit-remaining-requests"] == "0");
    CHECK_FALSE(res["x-ratelimit-reset-requests"].empty());
    CHECK(mock.server().stats().rate_limited == 1);
}

TEST_CASE("each fault at probability 1 has exactly its effect") {
    const std::string body = test::chat_body(1);
    simdjson::dom::parser p;
    SECTION("500") {
        test::loopback_mock mock(with_fault(&mock_faults::http_500));
        client c(mock.server().port());
        const auto res = c.post(body);
        CHECK(res.result_int() == 500);
        CHECK(std::string_view(parse(p, res.body())["error"]["type"]) == "server_error");
        CHECK(mock.server().stats().server_errors == 1);
    }
    SECTION("503 with a retry hint") {
        test::loopback_mock mock(with_fault(&mock_faults::http_503));
        client c(mock.server().port());
        const auto res = c.post(body);
        CHECK(res.result_int() == 503);
        CHECK(res["retry-after-ms"] == "50");
    }
    SECTION("reset") {
        test::loopback_mock mock(with_fault(&mock_faults::reset));
        client c(mock.server().port());
        error_code ec;
        c.post(body, "/v1/chat/completions", ec);
        CHECK(ec == asio::error::connection_reset);
        CHECK(mock.server().stats().resets == 1);
    }
    SECTION("truncated") {
        test::loopback_mock mock(with_fault(&mock_faults::truncated));
        client c(mock.server().port());
        error_code ec;
        c.post(body, "/v1/chat/completions", ec);
        CHECK(ec == http::error::partial_message);
        CHECK(mock.server().stats().truncated == 1);
    }
    SECTION("malformed") {
        test::loopback_mock mock(with_fault(&mock_faults::malformed));
        client c(mock.server().port());
        const auto res = c.post(body);
        CHECK(res.result_int() == 200);
        CHECK(p.parse(res.body()).error());
        CHECK(mock.server().stats().malformed == 1);
    }
    SECTION("insufficient_quota") {
        test::loopback_mock mock(with_fault(&mock_faults::insufficient_quota));
        client c(mock.server().port());
        const auto res = c.post(body);
        CHECK(res.result_int() == 429);
        CHECK(std::string_view(parse(p, res.body())["error"]["code"]) == "insufficient_quota");
    }
    SECTION("slow") {
        mock_options o = with_fault(&mock_faults::slow);
        o.faults.slow_delay = std::chrono::milliseconds(10);
        test::loopback_mock mock(o);
        client c(mock.server().port());
        CHECK(c.post(body).result_int() == 200);
        CHECK(mock.server().stats().slow == 1);
    }
}

TEST_CASE("close_every closes the connection after every Nth response") {
    mock_options o;
    o.close_every = 2;
    test::loopback_mock mock(o);
    client c(mock.server().port());
    const std::string body = test::chat_body(1);
    CHECK(c.post(body).keep_alive());
    const auto second = c.post(body);
    CHECK_FALSE(second.keep_alive());
    error_code ec;
    c.post(body, "/v1/chat/completions", ec);
    CHECK(ec); // the server closed it
}

TEST_CASE("stream true is answered as server-sent events ending in [DONE]") {
    test::loopback_mock mock;
    client c(mock.server().port());
    const auto res = c.post(
        R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":3,)"
        R"("messages":[{"role":"user","content":"hi"}]})");
    CHECK(res.result_int() == 200);
    CHECK(res[http::field::content_type] == "text/event-stream");
    CHECK(res.chunked());
    const std::string& s = res.body();
    CHECK(s.rfind("data: [DONE]\n\n") == s.size() - 14);
    CHECK(s.find("\"object\":\"chat.completion.chunk\"") != std::string::npos);
    CHECK(s.find("\"delta\":{\"content\":\"lorem\"}") != std::string::npos);
    CHECK(s.find("\"choices\":[],\"usage\":{") != std::string::npos);
    CHECK(mock.server().stats().streamed == 1);
}

TEST_CASE("bad requests get OpenAI-shaped errors and the stats endpoint counts") {
    test::loopback_mock mock;
    client c(mock.server().port());
    CHECK(c.post("{not json").result_int() == 400);
    CHECK(c.post(test::chat_body(1), "/v1/embeddings").result_int() == 404);
    CHECK(c.post(test::chat_body(1)).result_int() == 200);
    const auto res = c.get("/mock/stats");
    simdjson::dom::parser p;
    auto doc = parse(p, res.body());
    CHECK(std::int64_t(doc["requests"]) == 2);
    CHECK(std::int64_t(doc["ok"]) == 1);
    CHECK(std::int64_t(doc["client_errors"]) == 1);
    CHECK(std::int64_t(doc["connections"]) == 1);
}

TEST_CASE("stop ends promptly with a client still connected") {
    auto mock = std::make_unique<test::loopback_mock>();
    client c(mock->server().port());
    CHECK(c.post(test::chat_body(1)).result_int() == 200);
    mock.reset(); // stops the server and joins its thread: a hang here fails by CTest's timeout
    error_code ec;
    c.post(test::chat_body(1), "/v1/chat/completions", ec);
    CHECK(ec); // the connection was closed by stop()
}

} // namespace mock_server_test
