// The mock's timed streams read by a raw synchronous Beast client, event by event with the time
// each arrived: the server keeps to the schedule mock_behavior decides (checked exactly in
// tests/unit/mock/mock_stream_test.cpp), ends a normal stream with [DONE] and the last chunk,
// and cuts a stream by closing the connection mid-body.
//
// Times are checked as lower bounds from the moment the request was sent, never as upper bounds
// and never as gaps between two arrivals: a loaded machine can only make an event later, but a
// late read of one event can bring it close to the next.
#include "support/loopback.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <chrono>
#include <string>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace mock_stream_test {

using namespace sluice;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using steady_clock = std::chrono::steady_clock;

namespace {

struct timed_event {
    std::string data;                // the `data:` payload
    steady_clock::duration after{0}; // from the request's send to the event's arrival
};

// One streamed response as the client saw it.
struct stream_read {
    unsigned status = 0;
    std::string content_type;
    std::vector<timed_event> events;
    bool complete = false;         // the body ended with its last chunk
    error_code ec;                 // why it ended otherwise
    steady_clock::duration end{0}; // when the body ended or failed, from the send
};

std::string stream_body(int max_tokens, std::string_view extra = "") {
    return R"({"model":"m","stream":true,"max_tokens":)" + std::to_string(max_tokens) +
           std::string(extra) + R"(,"messages":[{"role":"user","content":"hi"}]})";
}

// Moves the whole events at the front of `pending` into `out`, stamped `after`.
void take_events(std::string& pending, steady_clock::duration after, stream_read& out) {
    std::size_t end;
    while ((end = pending.find("\n\n")) != std::string::npos) {
        REQUIRE(pending.compare(0, 6, "data: ") == 0);
        out.events.push_back({pending.substr(6, end - 6), after});
        pending.erase(0, end + 2);
    }
}

// Sends one streamed request and reads its response chunk by chunk.
template <class Stream>
stream_read read_stream(Stream& stream, beast::flat_buffer& buffer, const std::string& body) {
    http::request<http::string_body> req{http::verb::post, "/v1/chat/completions", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    stream_read out;
    const auto sent = steady_clock::now(); // before the server can have the request
    http::write(stream, req);

    http::response_parser<http::string_body> parser;
    std::string pending;
    auto on_data = [&](std::uint64_t, beast::string_view data, error_code&) {
        pending.append(data.data(), data.size());
        return data.size();
    };
    parser.on_chunk_body(on_data);
    http::read_header(stream, buffer, parser, out.ec);
    REQUIRE_FALSE(out.ec);
    out.status = parser.get().result_int();
    out.content_type = std::string(parser.get()[http::field::content_type]);
    REQUIRE(parser.get().chunked());
    while (!parser.is_done() && !out.ec) {
        http::read_some(stream, buffer, parser, out.ec);
        take_events(pending, steady_clock::now() - sent, out);
    }
    out.complete = parser.is_done() && !out.ec;
    out.end = steady_clock::now() - sent;
    CHECK(pending.empty()); // no event cut in half, however the body ended
    return out;
}

std::string content_of(simdjson::dom::parser& p, const std::string& event) {
    simdjson::dom::element doc;
    REQUIRE(p.parse(event).get(doc) == simdjson::SUCCESS);
    std::string_view text;
    simdjson::dom::array choices;
    if (doc["choices"].get(choices) || choices.size() == 0 ||
        choices.at(0)["delta"]["content"].get(text))
        return "";
    return std::string(text);
}

// Each content event k (role and finish events have none) arrives no sooner than
// first_token + k * interval after the request; returns the text they carry.
std::string check_schedule(const stream_read& r,
                           steady_clock::duration first_token,
                           steady_clock::duration interval) {
    simdjson::dom::parser p;
    std::string text;
    int k = 0;
    for (const auto& e : r.events) {
        if (e.data == "[DONE]" || e.data.rfind(R"({"error")", 0) == 0)
            continue;
        const std::string piece = content_of(p, e.data);
        if (piece.empty())
            continue;
        INFO("content event " << k << " after " << (e.after / 1us) << " us");
        CHECK(e.after >= first_token + k * interval);
        text += piece;
        ++k;
    }
    return text;
}

} // namespace

TEST_CASE("a timed stream keeps to its schedule and [DONE] ends it, on a kept-alive connection") {
    mock_options o;
    o.first_token = 60ms;
    o.chunk_interval = 25ms;
    test::loopback_mock mock(o);
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), mock.server().port()));
    beast::flat_buffer buffer;

    for (int round = 0; round < 2; ++round) {
        const auto r = read_stream(stream, buffer, stream_body(6));
        CHECK(r.status == 200);
        CHECK(r.content_type == "text/event-stream");
        CHECK(r.complete);
        // Role, six words, finish, [DONE].
        REQUIRE(r.events.size() == 9);
        CHECK(r.events.back().data == "[DONE]");
        CHECK(r.events.back().after >= 60ms + 5 * 25ms);
        CHECK(check_schedule(r, 60ms, 25ms) == "lorem ipsum dolor sit amet consectetur");
    }
    CHECK(mock.server().stats().connections == 1);
    CHECK(mock.server().stats().streamed == 2);
    CHECK(mock.server().stats().ok == 2);
}

TEST_CASE("chunk_tokens groups the words of each chunk on the wire") {
    mock_options o;
    o.chunk_interval = 20ms;
    o.tokens_per_chunk = 4;
    test::loopback_mock mock(o);
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), mock.server().port()));
    beast::flat_buffer buffer;
    const auto r = read_stream(stream, buffer, stream_body(10));
    CHECK(r.complete);
    REQUIRE(r.events.size() == 1 + 3 + 1 + 1);
    simdjson::dom::parser p;
    CHECK(content_of(p, r.events[1].data) == "lorem ipsum dolor sit");
    CHECK(content_of(p, r.events[3].data) == " sed do");
    CHECK(r.events[3].after >= 2 * 20ms);
}

TEST_CASE("a stream cut closes the connection mid-body after half the content") {
    mock_options o;
    o.first_token = 20ms;
    o.chunk_interval = 15ms;
    o.faults.stream_cut = 1;
    test::loopback_mock mock(o);
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), mock.server().port()));
    beast::flat_buffer buffer;

    const auto r = read_stream(stream, buffer, stream_body(8));
    CHECK(r.status == 200);
    CHECK_FALSE(r.complete);
    // A FIN where body bytes were due: the end of the stream in the middle of the message.
    CHECK(r.ec == http::error::partial_message);
    REQUIRE(r.events.size() == 1 + 4); // role, four of eight words
    CHECK(check_schedule(r, 20ms, 15ms) == "lorem ipsum dolor sit");
    CHECK(r.end >= 20ms + 4 * 15ms); // the cut comes when the fifth word was due
    CHECK(mock.server().stats().stream_cuts == 1);
    CHECK(mock.server().stats().ok == 0);
}

TEST_CASE("a stream error sends an error event after half the content and ends the body") {
    mock_options o;
    o.chunk_interval = 10ms;
    o.faults.stream_error = 1;
    test::loopback_mock mock(o);
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), mock.server().port()));
    beast::flat_buffer buffer;

    const auto r = read_stream(stream, buffer, stream_body(6));
    CHECK(r.complete); // the body ends properly: the error is in the events
    REQUIRE(r.events.size() == 1 + 3 + 1);
    CHECK(check_schedule(r, 0ms, 10ms) == "lorem ipsum dolor");
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    REQUIRE(p.parse(r.events.back().data).get(doc) == simdjson::SUCCESS);
    CHECK(std::string_view(doc["error"]["type"]) == "server_error");
    CHECK(r.events.back().after >= 3 * 10ms);
    // The connection stays usable.
    const auto again = read_stream(stream, buffer, stream_body(2));
    CHECK(again.complete);
    CHECK(mock.server().stats().stream_errors == 2);
    CHECK(mock.server().stats().connections == 1);
}

TEST_CASE("over TLS a timed stream keeps to its schedule, and a cut comes without close_notify") {
    mock_options o = test::mock_with_tls();
    o.first_token = 30ms;
    o.chunk_interval = 10ms;
    SECTION("done") {}
    SECTION("cut") {
        o.faults.stream_cut = 1;
    }
    test::loopback_mock mock(o);
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.add_certificate_authority(asio::buffer(mock.server().certificate_pem()));
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    beast::get_lowest_layer(stream).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), mock.server().port()));
    stream.handshake(asio::ssl::stream_base::client);
    beast::flat_buffer buffer;

    const auto r = read_stream(stream, buffer, stream_body(4));
    if (o.faults.stream_cut == 0) {
        CHECK(r.complete);
        REQUIRE(r.events.size() == 1 + 4 + 1 + 1);
        CHECK(r.events.back().data == "[DONE]");
        CHECK(check_schedule(r, 30ms, 10ms) == "lorem ipsum dolor sit");
    } else {
        CHECK_FALSE(r.complete);
        CHECK(r.ec == asio::ssl::error::stream_truncated);
        CHECK(check_schedule(r, 30ms, 10ms) == "lorem ipsum");
        CHECK(r.end >= 30ms + 2 * 10ms);
    }
}

TEST_CASE("stop ends a stream that is still due for an hour") {
    mock_options o;
    o.first_token = 1h;
    auto mock = std::make_unique<test::loopback_mock>(o);
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), mock->server().port()));
    http::request<http::string_body> req{http::verb::post, "/v1/chat/completions", 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = stream_body(3);
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    http::read_header(stream, buffer, parser); // the head goes at once, the content not for 1h
    mock.reset(); // stops the server and joins its thread: a hang here fails by CTest's timeout
    error_code ec;
    while (!ec && !parser.is_done())
        http::read_some(stream, buffer, parser, ec);
    CHECK(ec); // closed mid-body by stop()
    CHECK_FALSE(parser.is_done());
}

} // namespace mock_stream_test
