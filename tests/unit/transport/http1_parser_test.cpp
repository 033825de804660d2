// sluice's HTTP/1.1 response parser against Beast's, the reference it replaces: recorded
// answer shapes and malformed ones, each read whole, cut at every point, and a byte at a
// time, must give what Beast gives (verdict and error, status, fields in order, body,
// keep-alive, bytes used per response); and a head past the limit fails however it is cut.
#include "support/http1_answers.hpp"
#include "support/http1_diff.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace sluice::test::http1_diff;
using namespace sluice::test::http1_answers;

namespace http1_parser_test {

struct shape {
    const char* name;
    std::string bytes;
    limits lim = {};
};

std::vector<shape> good_shapes() {
    return {
        {"nginx, Content-Length", nginx_answer()},
        {"OpenAI with x-ratelimit-* headers", openai_answer()},
        {"OpenAI chunked, extensions and a trailer", openai_chunked()},
        {"100 Continue then 200",
         head("HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\n") + "ok"},
        {"103 Early Hints then 200",
         head("HTTP/1.1 103 Early Hints\nLink: </a.css>; rel=preload\n\n"
              "HTTP/1.1 200 OK\nContent-Length: 0\n\n")},
        {"204 No Content", head("HTTP/1.1 204 No Content\nServer: nginx\n\n")},
        {"304 with a Content-Length and no body",
         head("HTTP/1.1 304 Not Modified\nContent-Length: 99\n\n")},
        {"HTTP/1.0 until the end of the stream",
         head("HTTP/1.0 200 OK\nContent-Type: application/json\n\n") + json_body},
        {"HTTP/1.0 with keep-alive",
         head("HTTP/1.0 200 OK\nConnection: Keep-Alive\nContent-Length: 3\n\n") + "abc"},
        {"Connection: close",
         head("HTTP/1.1 200 OK\nConnection: close\nContent-Length: 3\n\n") + "abc"},
        {"Connection token list",
         head("HTTP/1.1 200 OK\nConnection: upgrade, CLOSE\nContent-Length: 0\n\n")},
        {"two answers back to back (pipelined)",
         head("HTTP/1.1 429 Too Many Requests\nretry-after-ms: 250\nContent-Length: 2\n\n") + "{}" +
             head("HTTP/1.1 200 OK\nContent-Length: 2\n\n") + "{}"},
        {"equal Content-Length fields and a list",
         head("HTTP/1.1 200 OK\nContent-Length: 4\ncontent-length: 4, 4\n\n") + "abcd"},
        {"obs-fold joined",
         head("HTTP/1.1 200 OK\nX-Folded: one\n  two\n\tthree\nX-Empty:\n late\nContent-Length: "
              "0\n\n")},
        {"empty reason, odd spacing",
         head("HTTP/1.1 500 \nX-A:b \t\nX-B:   \nContent-Length: 1\n\n") + "z"},
        {"Transfer-Encoding gzip, chunked",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked\n\n") + "1\r\nq\r\n0\r\n\r\n"},
        {"Transfer-Encoding not ending in chunked: body to the end",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked, gzip\n\n") + "raw bytes"},
        {"chunked body at the body limit",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") +
             "5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n",
         {8192, 10}},
        {"obs-text in a value",
         head("HTTP/1.1 200 OK\nX-Name: caf\xc3\xa9\nContent-Length: 0\n\n")},
    };
}

std::vector<shape> bad_shapes() {
    return {
        {"empty connection", ""},
        {"HTTP/2.0", head("HTTP/2.0 200 OK\n\n")},
        {"not HTTP", head("HTTX/1.1 200 OK\n\n")},
        {"two-digit status", head("HTTP/1.1 20 OK\n\n")},
        {"four-digit status", head("HTTP/1.1 2000 OK\n\n")},
        {"control in the reason", head("HTTP/1.1 200 O\x01K\n\n")},
        {"space in a field name", head("HTTP/1.1 200 OK\nBad Name: x\n\n")},
        {"empty field name", head("HTTP/1.1 200 OK\n: x\n\n")},
        {"fold before any field", head("HTTP/1.1 200 OK\n folded: x\n\n")},
        {"control in a value", head("HTTP/1.1 200 OK\nX-A: a\x7f\n\n")},
        {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
        {"CR without LF in the head", "HTTP/1.1 200 OK\r\nX: y\rz\r\n\r\n"},
        {"CR without LF ending the head", "HTTP/1.1 200 OK\r\n\rx"},
        {"Content-Length not a number", head("HTTP/1.1 200 OK\nContent-Length: abc\n\n")},
        {"Content-Length overflows",
         head("HTTP/1.1 200 OK\nContent-Length: 99999999999999999999\n\n")},
        {"differing Content-Length fields",
         head("HTTP/1.1 200 OK\nContent-Length: 1\nContent-Length: 2\n\nx")},
        {"differing Content-Length list", head("HTTP/1.1 200 OK\nContent-Length: 1, 2\n\nx")},
        {"empty Content-Length list item", head("HTTP/1.1 200 OK\nContent-Length: 1,,1\n\nx")},
        {"Content-Length after chunked",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nContent-Length: 1\n\n")},
        {"chunked after Content-Length",
         head("HTTP/1.1 200 OK\nContent-Length: 1\nTransfer-Encoding: chunked\n\n")},
        {"chunked twice",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n")},
        {"bad Connection list", head("HTTP/1.1 200 OK\nConnection: a b\n\n")},
        {"chunk size not hex", head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") + "zz\r\n"},
        {"chunk size overflows",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") + "11111111111111111\r\n"},
        {"chunk data without CRLF",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") + "2\r\nabXY0\r\n\r\n"},
        {"bad chunk extension",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") + "2;=x\r\nab\r\n0\r\n\r\n"},
        {"bad extension on the last chunk",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") + "0 x\r\n\r\n"},
        {"bad trailer",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") + "0\r\nBad Trailer: 1\r\n\r\n"},
        {"Content-Length over the body limit",
         head("HTTP/1.1 200 OK\nContent-Length: 11\n\n") + "abcdefghijk",
         {8192, 10}},
        {"chunks past the body limit",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") +
             "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n",
         {8192, 10}},
        {"body to the end past the body limit",
         head("HTTP/1.0 200 OK\n\n") + "abcdefghijk",
         {8192, 10}},
        {"chunk extension running past the line, cut short (the line is charged once)",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") + "5;a=\"x\r\nabcde\r\n",
         {8192, 8}},
        {"head cut short", head("HTTP/1.1 200 OK\nContent-Le")},
        {"body cut short", head("HTTP/1.1 200 OK\nContent-Length: 10\n\n") + "abc"},
        {"chunked cut short",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") + "5\r\nabcde\r\n"},
        {"trailers cut short",
         head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n") + "0\r\nX: 1\r\n"},
    };
}

// Every way the check cuts `bytes`: whole, in two at every point, and a byte at a time.
std::vector<std::vector<std::size_t>> cuttings(std::size_t size) {
    std::vector<std::vector<std::size_t>> all{{}};
    for (std::size_t at = 1; at < size; ++at)
        all.push_back({at});
    std::vector<std::size_t> bytes;
    for (std::size_t at = 1; at < size; ++at)
        bytes.push_back(at);
    all.push_back(bytes);
    return all;
}

void check_against_beast(const shape& s) {
    const outcome whole = read_beasts({s.bytes}, s.lim);
    for (const auto& cuts : cuttings(s.bytes.size())) {
        const auto pieces = cut(s.bytes, cuts);
        const outcome mine = read_ours(pieces, s.lim);
        INFO(s.name << ", " << cuts.size() + 1 << " piece(s), first cut at "
                    << (cuts.empty() ? 0 : cuts[0]) << "\nBeast: " << describe(whole)
                    << "\nours: " << describe(mine));
        REQUIRE(agrees(mine, whole, pieces, s.lim));
    }
}

} // namespace http1_parser_test

using namespace http1_parser_test;

TEST_CASE("answers read as Beast reads them, however the bytes are cut") {
    for (const shape& s : good_shapes()) {
        const outcome whole = read_beasts({s.bytes}, s.lim);
        INFO(s.name << ": " << describe(whole));
        REQUIRE_FALSE(whole.ec); // the shape is a good one to Beast too
        check_against_beast(s);
    }
}

TEST_CASE("malformed answers fail as in Beast, with its error") {
    for (const shape& s : bad_shapes()) {
        const outcome whole = read_beasts({s.bytes}, s.lim);
        INFO(s.name << ": " << describe(whole));
        REQUIRE(whole.ec);
        check_against_beast(s);
    }
}

TEST_CASE("the answer's parts as the engine reads them") {
    const outcome o = read_ours({openai_chunked()});
    REQUIRE_FALSE(o.ec);
    REQUIRE(o.messages.size() == 1);
    const message& m = o.messages[0];
    CHECK(m.status == 200);
    CHECK(m.body == json_body);
    CHECK(m.chunked);
    CHECK(m.keep_alive);
    CHECK(m.fields.back() == std::pair<std::string, std::string>("X-Trailer", "done"));
    CHECK(m.fields[9] ==
          std::pair<std::string, std::string>("x-ratelimit-remaining-requests", "9999"));
}

TEST_CASE("the bytes after an answer are left to the caller") {
    const std::string answer = nginx_answer();
    const outcome o = read_ours({answer + "HTTP/1.1 2"});
    CHECK(o.messages[0].used == answer.size());
    CHECK(o.ec == http::error::partial_message); // the second answer never ended
}

TEST_CASE("a head past the header limit fails however it is cut") {
    std::string big = "HTTP/1.1 200 OK\r\n";
    while (big.size() < 20'000)
        big += "x-padding-field: " + std::string(100, 'p') + "\r\n";
    big += "Content-Length: 0\r\n\r\n";
    const limits lim{8192, 1 << 20};
    REQUIRE(read_beasts({big}, lim).ec == http::error::header_limit);
    for (std::size_t piece : {1u, 7u, 100u, 4096u, 8191u, 8192u, 8193u, 20'000u, 30'000u}) {
        std::vector<std::size_t> cuts;
        for (std::size_t at = piece; at < big.size(); at += piece)
            cuts.push_back(at);
        INFO("pieces of " << piece);
        CHECK(read_ours(cut(big, cuts), lim).ec == http::error::header_limit);
    }
    // One line without end: refused once it passes the limit, not held without bound.
    const std::string endless = "HTTP/1.1 200 OK\r\nX: " + std::string(50'000, 'v');
    std::vector<std::size_t> cuts;
    for (std::size_t at = 1000; at < endless.size(); at += 1000)
        cuts.push_back(at);
    CHECK(read_ours(cut(endless, cuts), lim).ec == http::error::header_limit);
}

TEST_CASE("a chunk line or trailers past the header limit fail however they are cut") {
    const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string long_ext = chunked + "1;" + std::string(10'000, 'e') + "\r\nx\r\n0\r\n\r\n";
    const std::string long_trailers = chunked + "0\r\nX: " + std::string(10'000, 't') + "\r\n\r\n";
    const limits lim{8192, 1 << 20};
    for (const std::string& bytes : {long_ext, long_trailers}) {
        for (std::size_t piece : {1u, 100u, 5000u, 50'000u}) {
            std::vector<std::size_t> cuts;
            for (std::size_t at = piece; at < bytes.size(); at += piece)
                cuts.push_back(at);
            INFO("pieces of " << piece);
            CHECK(read_ours(cut(bytes, cuts), lim).ec == http::error::header_limit);
        }
    }
}

TEST_CASE("put_header stops at the end of the head, put goes on from there") {
    for (const std::string& answer : {nginx_answer(), openai_chunked()}) {
        message m;
        ours p(m);
        error_code ec;
        const std::size_t head = answer.find("\r\n\r\n") + 4;
        // In two pieces cut inside the head, so that the split line is kept by the parser.
        std::size_t used = p.put_header(boost::asio::buffer(answer.data(), 10), ec);
        REQUIRE(used == 10);
        used += p.put_header(boost::asio::buffer(answer.data() + 10, answer.size() - 10), ec);
        REQUIRE_FALSE(ec);
        CHECK(used == head);
        CHECK(p.is_header_done());
        CHECK(m.body.empty());
        used += p.put(boost::asio::buffer(answer.data() + used, answer.size() - used), ec);
        REQUIRE_FALSE(ec);
        CHECK(p.is_done());
        CHECK(used == answer.size());
        CHECK(m.body == json_body);
    }
}
