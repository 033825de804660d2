// Which bodies stream, and the one field the engine writes into a body: the request for the
// usage chunk, so that the limiter settles a streamed answer from the server's count.
#include <sluice/source/stream_request.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <string>
#include <vector>

using sluice::prepare_stream_request;

namespace {

// The body after preparation, checked to be one valid JSON object still.
std::string prepared(std::string body, bool expect_stream) {
    CHECK(prepare_stream_request(body) == expect_stream);
    simdjson::dom::parser p;
    simdjson::dom::object o;
    CHECK(p.parse(body).get(o) == simdjson::SUCCESS);
    return body;
}

} // namespace

TEST_CASE("a streaming body without stream_options gets include_usage") {
    CHECK(prepared(R"({"model":"m","messages":[],"stream":true})", true) ==
          R"({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}})");
    // Trailing blanks after the object stay where they were.
    CHECK(prepared("{\"stream\": true}\n ", true) ==
          "{\"stream\": true,\"stream_options\":{\"include_usage\":true}}\n ");
}

TEST_CASE("stream_options without include_usage gets it, with it the user's word stands") {
    CHECK(prepared(R"({"stream":true,"stream_options":{}})", true) ==
          R"({"stream":true,"stream_options":{"include_usage":true}})");
    CHECK(prepared(R"({"stream_options":{ "x":1 },"stream":true})", true) ==
          R"({"stream_options":{"include_usage":true, "x":1 },"stream":true})");
    const std::string off = R"({"stream":true,"stream_options":{"include_usage":false}})";
    CHECK(prepared(off, true) == off);
    const std::string on = R"({"stream":true,"stream_options":{"include_usage":true}})";
    CHECK(prepared(on, true) == on);
}

TEST_CASE("bodies that do not stream are left alone") {
    for (const std::string body : {
             R"({"model":"m","messages":[]})",
             R"({"model":"m","stream":false})",
             R"({"model":"m","stream":"true"})",
             R"({"messages":[{"role":"user","content":"stream"}],"metadata":{"stream":true}})",
             R"(["stream",true])",
             R"(not json "stream")",
         }) {
        INFO(body);
        std::string copy = body;
        CHECK_FALSE(prepare_stream_request(copy));
        CHECK(copy == body);
    }
}

TEST_CASE("one preparer reused over bodies long and short prepares each as a new one would") {
    // The engine keeps one preparer; its buffer grows to the longest body and stays. A short
    // body after a long one must not see the long one's bytes behind its own.
    std::string long_prompt(5000, 'x');
    const std::vector<std::string> bodies = {
        R"({"model":"m","messages":[{"role":"user","content":")" + long_prompt +
            R"("}],"stream":true})",
        R"({"stream":true})",
        R"({"model":"m"})",
        R"({"stream":true,"stream_options":{}})",
        R"({"stream":tru)",
        R"({"stream":true,"stream_options":{"include_usage":false}})",
    };
    sluice::stream_request_preparer reused;
    for (const std::string& body : bodies) {
        INFO(body.substr(0, 80));
        std::string a = body;
        std::string b = body;
        const bool fresh = prepare_stream_request(a);
        CHECK(reused(b) == fresh);
        CHECK(b == a);
    }
}
