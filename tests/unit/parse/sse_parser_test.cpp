#include "unit/parse/sse_feed.hpp"

#include <sluice/error.hpp>
#include <sluice/parse/sse_parser.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

// Every two-piece split and the byte-by-byte feed give what the whole stream gives.
void check_every_split(std::string_view all,
                       const feed_result& expected,
                       const sse_parser_options& opts = {}) {
    for (std::size_t at = 0; at <= all.size(); ++at) {
        const feed_result r = feed_split(all, at, opts);
        if (!(r == expected)) {
            INFO("split at " << at);
            REQUIRE(r == expected);
        }
    }
    CHECK(feed_bytewise(all, opts) == expected);
}

std::size_t count(std::string_view text, std::string_view what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

recorded_event message(std::string data, std::string id = "") {
    const bool done = data == "[DONE]";
    return {"message", std::move(data), std::move(id), done};
}

} // namespace

TEST_CASE("every fixture gives the same events at every split point and byte by byte") {
    for (const std::string& name : lf_fixtures()) {
        INFO(name);
        const std::string all = sse_fixture(name);
        const feed_result whole = feed_whole(all);
        REQUIRE_FALSE(whole.ec);
        CHECK_FALSE(whole.end);
        // One data line per event in these fixtures.
        CHECK(whole.events.size() == count(all, "data: "));
        for (const auto& e : whole.events)
            CHECK(e.data.rfind(e.done ? "[DONE]" : "{", 0) == 0);
        check_every_split(all, whole);
    }
}

TEST_CASE("CRLF and CR line endings give the events LF gives, split anywhere") {
    for (const std::string& name : lf_fixtures()) {
        INFO(name);
        const std::string lf = sse_fixture(name);
        const feed_result expected = feed_whole(lf);
        for (const char* ending : {"\r\n", "\r"}) {
            INFO((ending[1] ? "CRLF" : "CR"));
            const std::string variant = with_endings(lf, ending);
            check_every_split(variant, expected);
        }
    }
}

TEST_CASE("a CR ending one read and a LF starting the next are one line ending") {
    // Were the LF a line of its own, the blank line would dispatch "a" alone.
    const feed_result r = feed({"data: a\r", "\ndata: b\r", "\n\r", "\n"});
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].data == "a\nb");
    // A LF that follows a CR read earlier, but not at once, is a line ending of its own.
    const feed_result r2 = feed({"data: a\r", "data: b\r\n", "\n"});
    REQUIRE(r2.events.size() == 1);
    CHECK(r2.events[0].data == "a\nb");
}

TEST_CASE("mixed endings, BOM, comments, retry, ids and multi-line data") {
    const std::string all = sse_fixture("proxy_mixed_endings.sse");
    const feed_result whole = feed_whole(all);
    REQUIRE_FALSE(whole.ec);
    const std::vector<recorded_event> expected = {
        message(
            R"({"id":"chatcmpl-px","object":"chat.completion.chunk","created":9,)"
            "\n"
            R"("model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]})",
            "7"),
        message(
            R"({"id":"chatcmpl-px","object":"chat.completion.chunk","created":9,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]})",
            "8"),
        message("[DONE]", "8"),
    };
    CHECK(whole.events == expected);
    CHECK(whole.retry == 2500ms);
    CHECK_FALSE(whole.end);
    check_every_split(all, whole);
}

TEST_CASE("comments and unknown fields are ignored, and a field without a colon has no value") {
    const feed_result r = feed_whole(": hello\nfoo: bar\ndata: x\n:data: y\nDATA: z\n\n"
                                     "data\n\n"
                                     "data\ndata\n\n");
    REQUIRE(r.events.size() == 3);
    CHECK(r.events[0].data == "x");
    CHECK(r.events[1].data.empty()); // dispatched: a data line came, with an empty value
    CHECK(r.events[2].data == "\n");
}

TEST_CASE("one space after the colon is dropped, and no more") {
    const feed_result r = feed_whole("data:x\n\ndata:  two\n\ndata: \t\n\n");
    REQUIRE(r.events.size() == 3);
    CHECK(r.events[0].data == "x");
    CHECK(r.events[1].data == " two");
    CHECK(r.events[2].data == "\t");
}

TEST_CASE("an event without data is dropped, and its type with it") {
    const feed_result r = feed_whole("event: ping\n\nid: 3\n\ndata: x\n\n");
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].type == "message");
    CHECK(r.events[0].id == "3"); // the id is the stream's, kept from the dropped event
}

TEST_CASE("event types are read, and message is the default") {
    const feed_result r = feed_whole("event: delta\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n");
    REQUIRE(r.events.size() == 3);
    CHECK(r.events[0].type == "delta");
    CHECK(r.events[1].type == "message");
    CHECK(r.events[2].type == "message");
}

TEST_CASE("ids persist across events, an id holding NUL is ignored, an empty id clears") {
    using namespace std::string_literals;
    const std::string stream =
        "id: a1\ndata: 1\n\ndata: 2\n\nid: b\0c\ndata: 3\n\n"s + "id\ndata: 4\n\n";
    REQUIRE(stream.find('\0') != std::string::npos);
    const feed_result r = feed_whole(stream);
    REQUIRE(r.events.size() == 4);
    CHECK(r.events[0].id == "a1");
    CHECK(r.events[1].id == "a1");
    CHECK(r.events[2].id == "a1");
    CHECK(r.events[3].id.empty());
}

TEST_CASE("retry takes digits only") {
    CHECK(feed_whole("retry: 1500\n").retry == 1500ms);
    CHECK(feed_whole("retry: 1500\nretry: 15x\nretry: -1\nretry:\nretry: +3\n").retry == 1500ms);
    CHECK(feed_whole("retry: 1 5\n").retry == std::nullopt);
    CHECK(feed_whole("retry: 99999999999999999999999\n").retry == std::nullopt);
}

TEST_CASE("a leading BOM is skipped once, and only at the start") {
    const std::string bom = "\xEF\xBB\xBF";
    const std::string all = bom + "data: x\n\n" + bom + "data: y\n\ndata: z\n\n";
    const feed_result r = feed_whole(all);
    REQUIRE(r.events.size() == 2); // the second BOM makes "\xEF\xBB\xBF" "data" an unknown field
    CHECK(r.events[0].data == "x");
    CHECK(r.events[1].data == "z");
    check_every_split(all, r);
    // Bytes that start like a BOM but are not one are kept.
    const feed_result not_bom = feed({"\xEF\xBB", "x: 1\ndata: q\n\n"});
    REQUIRE(not_bom.events.size() == 1);
    CHECK(not_bom.events[0].data == "q");
    CHECK(feed({"\xEF", "data: q\n\n"}).events.empty()); // "\xEF" "data" is not data
}

TEST_CASE("[DONE] is flagged for exactly [DONE]") {
    const feed_result r = feed_whole("data: [DONE]\n\ndata: [DONE] \n\ndata:[DONE]x\n\n");
    REQUIRE(r.events.size() == 3);
    CHECK(r.events[0].done);
    CHECK_FALSE(r.events[1].done);
    CHECK_FALSE(r.events[2].done);
}

TEST_CASE("an event past max_event_bytes fails at every split point, smaller ones pass") {
    sse_parser_options opts;
    opts.max_event_bytes = 100;
    // The bound is on one event's data plus the line being read: "data: " + 94 bytes fits.
    const std::string fits = "data: " + std::string(94, 'x') + "\n\n";
    std::string many;
    for (int i = 0; i < 50; ++i)
        many += fits;
    const feed_result ok = feed_whole(many, opts);
    REQUIRE_FALSE(ok.ec);
    CHECK(ok.events.size() == 50);
    check_every_split(many, ok, opts);

    for (const std::string& big :
         {"data: " + std::string(95, 'x') + "\n\n",
          std::string(200, 'y'), // one endless line, never ended
          "data: " + std::string(60, 'x') + "\ndata: " + std::string(60, 'x') + "\n\n",
          ": " + std::string(120, 'c') + "\n\n"}) {
        INFO(big.substr(0, 20));
        const std::string all = fits + big + fits;
        const feed_result r = feed_whole(all, opts);
        CHECK(r.ec == errc::event_too_large);
        CHECK(r.end == errc::event_too_large); // stays failed
        CHECK(r.events.size() == 1);
        check_every_split(all, r, opts);
    }
}

TEST_CASE("a failed parser fails every put until reset, then reads a new stream") {
    sse_parser_options opts;
    opts.max_event_bytes = 8;
    sse_parser p(opts);
    error_code ec;
    p.put("data: 123456789", ec);
    CHECK(ec == errc::event_too_large);
    CHECK(p.put("\n\ndata: 1\n\n", ec) == 0);
    CHECK(ec == errc::event_too_large);
    CHECK_FALSE(p.has_event());
    p.reset();
    CHECK_FALSE(p.finish());
    const std::string_view again = "\xEF\xBB\xBF"
                                   "data: 1\n\n";
    CHECK(p.put(again, ec) == again.size());
    CHECK_FALSE(ec);
    REQUIRE(p.has_event());
    CHECK(p.event().data == "1");
}

TEST_CASE("a stream cut inside an event is reported by finish") {
    struct row {
        const char* stream;
        bool truncated;
    };
    const row rows[] = {
        {"", false},
        {"data: 1\n\n", false},
        {"data: 1\n\n: keep-alive\n", false},
        {"data: 1\n\n: keep-al", false}, // a comment never makes an event
        {"data: 1\n\nevent: x\n", false},
        {"data: [DONE]\n\n", false},
        {"data: {\"id\":", true}, // a partial line
        {"data: 1\n", true},      // data without its blank line
        {"data: 1\r", true},
        {"data: 1\n\nda", true},
        {"\xEF\xBB", true},
    };
    for (const row& r : rows) {
        INFO(r.stream);
        const std::string_view all = r.stream;
        const feed_result whole = feed_whole(all);
        CHECK((whole.end == errc::event_stream_truncated) == r.truncated);
        CHECK((!whole.end) == !r.truncated);
        check_every_split(all, whole);
    }
}

TEST_CASE("an event lying in one read is a view into it, one spanning reads is whole") {
    sse_parser p;
    error_code ec;
    const std::string read1 = "data: first\n\ndata: sec";
    std::size_t n = p.put(read1, ec);
    REQUIRE(p.has_event());
    CHECK(n == 13);
    CHECK(p.event().data.data() == read1.data() + 6); // no copy
    n += p.put(std::string_view(read1).substr(n), ec);
    CHECK(n == read1.size());
    CHECK_FALSE(p.has_event());
    std::string read2 = "ond\n\n";
    p.put(read2, ec);
    REQUIRE(p.has_event());
    CHECK(p.event().data == "second");
}

// One-line events lying whole in a read take a shortcut past the line walk: next to events
// that must take the walk (a type, an id, two data lines, a CR, no space, a blank data) they
// give what the walk gives, fed whole, split anywhere and byte by byte.
TEST_CASE("one-line events read whole agree with the line walk beside every other shape") {
    const std::string all = "data: a\n\n"
                            "event: t\ndata: typed\n\n"
                            "data: untyped\n\n"
                            "id: 7\ndata: b\n\n"
                            "data: keeps id\n\n"
                            "data: one\ndata: two\n\n"
                            "data: crlf\r\n\r\n"
                            "data:nospace\n\n"
                            "data:\n\n"
                            "data:  two spaces\n\n"
                            ": comment\ndata: c\n\n"
                            "data: [DONE]\n\n";
    const feed_result whole = feed_whole(all);
    const std::vector<recorded_event> expected = {message("a"),
                                                  {"t", "typed", "", false},
                                                  message("untyped"),
                                                  message("b", "7"),
                                                  message("keeps id", "7"),
                                                  message("one\ntwo", "7"),
                                                  message("crlf", "7"),
                                                  message("nospace", "7"),
                                                  message("", "7"),
                                                  message(" two spaces", "7"),
                                                  message("c", "7"),
                                                  message("[DONE]", "7")};
    CHECK(whole.events == expected);
    CHECK_FALSE(whole.ec);
    CHECK_FALSE(whole.end);
    check_every_split(all, whole);

    // The bound on one event holds on the shortcut too: a line of exactly max_event_bytes
    // passes, one byte more fails, whole or split.
    sse_parser_options opts;
    opts.max_event_bytes = 16;
    const std::string fits = "data: " + std::string(10, 'x') + "\n\n";
    CHECK(feed_whole(fits, opts).events == std::vector{message(std::string(10, 'x'))});
    check_every_split(fits, feed_whole(fits, opts), opts);
    const std::string over = "data: " + std::string(11, 'x') + "\n\n";
    CHECK(feed_whole(over, opts).ec == errc::event_too_large);
    check_every_split(over, feed_whole(over, opts), opts);
}

TEST_CASE("put_all calls back once per event and reports the failure") {
    sse_parser p;
    std::vector<std::string> seen;
    const auto collect = [&](const sse_event& e) {
        seen.emplace_back(e.data);
    };
    CHECK_FALSE(p.put_all("data: a\n\n: c\ndata: b\n\ndata: [DONE]\n\n", collect));
    CHECK(seen == std::vector<std::string>{"a", "b", "[DONE]"});
    sse_parser_options opts;
    opts.max_event_bytes = 8;
    sse_parser small(opts);
    seen.clear();
    CHECK(small.put_all("data: a\n\ndata: toolong\n\ndata: b\n\n", collect) ==
          errc::event_too_large);
    CHECK(seen == std::vector<std::string>{"a"});
}

TEST_CASE("options are validated") {
    sse_parser_options opts;
    opts.max_event_bytes = 0;
    CHECK_THROWS_AS(sse_parser(opts), std::invalid_argument);
    CHECK_NOTHROW(sse_parser_options{}.validate());
}

TEST_CASE("the stream errors have one meaning for retrying and stopping") {
    const error_code too_large = errc::event_too_large;
    const error_code truncated = errc::event_stream_truncated;
    CHECK_FALSE(is_retryable(too_large)); // the same server sends the same event again
    CHECK(is_retryable(truncated));       // a cut connection, as a truncated body
    CHECK_FALSE(is_fatal(too_large));
    CHECK_FALSE(is_fatal(truncated));
    CHECK(std::string(error_kind(too_large)) == "event_too_large");
    CHECK(std::string(error_kind(truncated)) == "event_stream_truncated");
    CHECK(too_large.message() != truncated.message());
    CHECK(too_large.message().find("unknown") == std::string::npos);
    CHECK(truncated.message().find("unknown") == std::string::npos);
}
