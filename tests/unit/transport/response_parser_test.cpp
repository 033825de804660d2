// The pool's response parser fed by hand: body caps per response and across the pool, and
// buffers that never grow past the cap, whatever the server sends.
#include "transport/response_parser.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/buffer.hpp>

#include <algorithm>
#include <cstdio>
#include <string>

using namespace sluice;
using sluice::detail::body_budget;
using sluice::detail::response_parser;

namespace {

// Feeds `bytes` to `p` as a socket would, in pieces of `piece` bytes; returns the first error.
error_code feed(response_parser& p, const std::string& bytes, std::size_t piece = 4096) {
    std::string pending;
    for (std::size_t at = 0; at < bytes.size() && !p.is_done(); at += piece) {
        pending.append(bytes, at, piece);
        // The parser takes a head only whole, and the body in parts: offer what is left
        // until it takes no more.
        while (!pending.empty() && !p.is_done()) {
            error_code ec;
            const std::size_t used = p.put(boost::asio::buffer(pending), ec);
            // need_more may come after the start line was taken: drop what was used either way.
            pending.erase(0, used);
            if (ec == boost::beast::http::error::need_more)
                break;
            if (ec)
                return ec;
            if (used == 0)
                break;
        }
    }
    return {};
}

std::string with_length(std::size_t n) {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(n) + "\r\n\r\n" +
           std::string(n, 'x');
}

std::string chunked(std::size_t n, std::size_t chunk) {
    std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    char size[32];
    for (std::size_t left = n; left > 0;) {
        const std::size_t c = std::min(chunk, left);
        std::snprintf(size, sizeof size, "%zx\r\n", c);
        out += size;
        out.append(c, 'y');
        out += "\r\n";
        left -= c;
    }
    return out + "0\r\n\r\n";
}

} // namespace

TEST_CASE("a chunked body at the cap costs the cap, not twice it") {
    body_budget budget;
    std::size_t charged = 0;
    http_response out;
    const std::size_t cap = 100'000;
    response_parser p(out, budget, charged, cap);
    REQUIRE_FALSE(feed(p, chunked(cap, 1000)));
    REQUIRE(p.is_done());
    CHECK(out.body.size() == cap);
    CHECK(out.body.capacity() >= cap + parse_padding);
    CHECK(out.body.capacity() < cap + cap / 2);
    CHECK(charged == budget.used);
    CHECK(budget.used <= cap + parse_padding + 64);
}

TEST_CASE("a chunked body past the cap fails without growing past it") {
    body_budget budget;
    std::size_t charged = 0;
    http_response out;
    const std::size_t cap = 50'000;
    response_parser p(out, budget, charged, cap);
    const error_code ec = feed(p, chunked(10 * cap, 4096));
    // Refused by the base parser's count of chunk sizes, or by the buffer that would pass the
    // cap, whichever comes first; the pool reports both as body_too_large.
    CHECK((ec == errc::body_too_large || ec == boost::beast::http::error::body_limit));
    CHECK_FALSE(p.over_budget()); // its own cap, not the pool's
    CHECK(out.body.capacity() <= cap + parse_padding + 64);
}

TEST_CASE("responses read at once share the pool's body budget") {
    body_budget budget;
    budget.limit = 12'000;
    std::size_t charged1 = 0, charged2 = 0, charged3 = 0;
    http_response out1, out2, out3;
    response_parser p1(out1, budget, charged1, 10'000);
    response_parser p2(out2, budget, charged2, 10'000);
    // The first head reserves its whole declared body; the second does not fit beside it.
    REQUIRE_FALSE(feed(p1, with_length(8000).substr(0, 100)));
    CHECK(charged1 >= 8000);
    CHECK(feed(p2, with_length(8000)) == errc::body_too_large);
    CHECK(p2.over_budget());
    CHECK(charged2 == 0);
    REQUIRE_FALSE(feed(p1, with_length(8000)));
    CHECK(out1.body.size() == 8000);
    // Once the first response is delivered its share comes back, and the next one fits.
    budget.give(charged1);
    CHECK(budget.used == 0);
    response_parser p3(out3, budget, charged3, 10'000);
    REQUIRE_FALSE(feed(p3, with_length(8000)));
    CHECK(out3.body.size() == 8000);
}

TEST_CASE("a declared length over the cap is refused before any body is read") {
    body_budget budget;
    std::size_t charged = 0;
    http_response out;
    response_parser p(out, budget, charged, 1000);
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n";
    CHECK(feed(p, head) == boost::beast::http::error::body_limit);
    CHECK(charged == 0);
    CHECK(out.body.capacity() < 1000);
}

TEST_CASE("a bad chunk size is a parser error that says so") {
    body_budget budget;
    std::size_t charged = 0;
    http_response out;
    response_parser p(out, budget, charged, 1000);
    const error_code ec = feed(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    REQUIRE(ec);
    CHECK(ec.message().find("chunk") != std::string::npos);
}

namespace {

// Collects what the parser hands over, as the engine's stream reader would take it.
struct collecting_observer final : body_observer {
    std::string bytes;
    std::size_t pieces = 0;
    error_code fail_with;
    error_code on_body(std::string_view piece, std::chrono::steady_clock::time_point) override {
        bytes.append(piece);
        ++pieces;
        return fail_with;
    }
};

std::string event_stream(unsigned status, std::size_t events) {
    std::string out = "HTTP/1.1 " + std::to_string(status) +
                      " X\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
    char size[32];
    for (std::size_t i = 0; i < events; ++i) {
        const std::string event = "data: {\"n\":" + std::to_string(i) + "}\n\n";
        std::snprintf(size, sizeof size, "%zx\r\n", event.size());
        out += size + event + "\r\n";
    }
    return out + "0\r\n\r\n";
}

} // namespace

TEST_CASE("a 2xx event stream goes to the observer piece by piece, never into the body") {
    body_budget budget;
    std::size_t charged = 0;
    http_response out;
    collecting_observer seen;
    response_parser p(out, budget, charged, 1'000'000, &seen);
    REQUIRE_FALSE(feed(p, event_stream(200, 50), 64));
    REQUIRE(p.is_done());
    CHECK(out.streamed);
    CHECK(p.streaming());
    CHECK(out.body.empty());
    CHECK(budget.used == 0); // no body held, none charged
    CHECK(seen.pieces >= 50);
    CHECK(seen.bytes.find("data: {\"n\":0}\n\n") == 0);
    CHECK(seen.bytes.find("data: {\"n\":49}\n\n") != std::string::npos);
}

TEST_CASE("an error answer to a streaming request, or a stream without an observer, is collected") {
    for (const unsigned status : {429u, 500u}) {
        body_budget budget;
        std::size_t charged = 0;
        http_response out;
        collecting_observer seen;
        response_parser p(out, budget, charged, 1'000'000, &seen);
        REQUIRE_FALSE(feed(p, event_stream(status, 3)));
        CHECK_FALSE(out.streamed);
        CHECK(seen.pieces == 0);
        CHECK(out.body.find("data: {\"n\":2}") != std::string::npos);
    }
    body_budget budget;
    std::size_t charged = 0;
    http_response out;
    response_parser p(out, budget, charged, 1'000'000);
    REQUIRE_FALSE(feed(p, event_stream(200, 3)));
    CHECK_FALSE(out.streamed);
    CHECK(out.body.find("data: {\"n\":2}") != std::string::npos);
}

TEST_CASE("the body limit bounds a whole stream, and an observer's error stops the read") {
    {
        body_budget budget;
        std::size_t charged = 0;
        http_response out;
        collecting_observer seen;
        response_parser p(out, budget, charged, 1000, &seen);
        CHECK(feed(p, event_stream(200, 500), 256) == boost::beast::http::error::body_limit);
        CHECK(seen.bytes.size() <= 1000);
    }
    body_budget budget;
    std::size_t charged = 0;
    http_response out;
    collecting_observer seen;
    seen.fail_with = errc::event_too_large;
    response_parser p(out, budget, charged, 1'000'000, &seen);
    CHECK(feed(p, event_stream(200, 5)) == errc::event_too_large);
    CHECK(seen.pieces == 1);
}
