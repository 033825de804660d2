#include "support/temp_dir.hpp"

#include <sluice/parse/completion_parser.hpp>

#include <catch2/catch.hpp>

using namespace sluice;

namespace {

std::string fixture(const std::string& name) {
    return test::read_file(std::string(SLUICE_TEST_FIXTURES) + "/responses/" + name);
}

// Parses with spare capacity for the zero-copy path.
completion parse_ok(const std::string& name) {
    std::string body = fixture(name);
    body.reserve(body.size() + parse_padding);
    completion_parser p;
    completion c;
    const error_code ec = p.parse(body, c);
    INFO(name << ": " << ec.message());
    REQUIRE_FALSE(ec);
    return c;
}

error_code parse_error(const std::string& name) {
    const std::string body = fixture(name);
    completion_parser p;
    completion c;
    const error_code ec = p.parse(body, c);
    CHECK(c.choices.empty());
    CHECK_FALSE(c.error.has_value());
    return ec;
}

} // namespace

TEST_CASE("a plain OpenAI answer yields id, model, choice and usage") {
    const completion c = parse_ok("plain.json");
    CHECK(c.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
    CHECK(c.model == "gpt-4.1-2025-04-14");
    REQUIRE(c.choices.size() == 1);
    CHECK(c.choices[0].index == 0);
    CHECK(c.choices[0].content == "Hello! How can I assist you today?");
    CHECK(c.choices[0].finish_reason == "stop");
    CHECK_FALSE(c.choices[0].has_tool_calls);
    CHECK_FALSE(c.choices[0].has_refusal);
    REQUIRE(c.usage);
    CHECK(c.usage->prompt_tokens == 19);
    CHECK(c.usage->completion_tokens == 10);
    CHECK(c.usage->total_tokens == 29);
    CHECK_FALSE(c.error);
}

TEST_CASE("n=3 gives three choices in order") {
    const completion c = parse_ok("n3.json");
    REQUIRE(c.choices.size() == 3);
    CHECK(c.choices[0].content == "Red.");
    CHECK(c.choices[1].index == 1);
    CHECK(c.choices[1].finish_reason == "length");
    CHECK(c.choices[2].content == "Blue.");
}

TEST_CASE("tool calls come with null content") {
    const completion c = parse_ok("tool_calls.json");
    REQUIRE(c.choices.size() == 1);
    CHECK_FALSE(c.choices[0].content.has_value());
    CHECK(c.choices[0].has_tool_calls);
    CHECK_FALSE(c.choices[0].has_refusal);
    CHECK(c.choices[0].finish_reason == "tool_calls");
}

TEST_CASE("a refusal is flagged") {
    const completion c = parse_ok("refusal.json");
    CHECK(c.choices[0].has_refusal);
    CHECK_FALSE(c.choices[0].content.has_value());
}

TEST_CASE("missing usage is allowed") {
    const completion c = parse_ok("no_usage.json");
    CHECK(c.choices[0].content == "Sure.");
    CHECK_FALSE(c.usage.has_value());
}

TEST_CASE("escapes and non-ASCII text come out right") {
    const completion c = parse_ok("unicode.json");
    CHECK(c.choices[0].content ==
          "caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\" \\ back\nline \xE6\x97\xA5\xE6\x9C\xAC \xC3\xBC"
          "ber");
}

TEST_CASE("vLLM and llama.cpp bodies parse, whatever their field order") {
    const completion v = parse_ok("vllm.json");
    CHECK(v.choices[0].content == "Paris is the capital of France.");
    CHECK_FALSE(v.choices[0].has_tool_calls); // an empty array is present but not null
    CHECK(v.usage->completion_tokens == 8);
    const completion l = parse_ok("llamacpp.json");
    CHECK(l.id == "chatcmpl-llama");
    CHECK(l.choices[0].content == "Four.");
    CHECK(l.usage->total_tokens == 23);
    const completion r = parse_ok("reordered.json");
    CHECK(r.id == "x1");
    CHECK(r.choices[0].content == "Reordered.");
    CHECK(r.usage->prompt_tokens == 10);
}

TEST_CASE("error bodies give the provider's message, type, code and param") {
    const completion rl = parse_ok("error_rate_limit.json");
    REQUIRE(rl.error);
    CHECK(rl.error->code == "rate_limit_exceeded");
    CHECK(rl.error->type == "requests");
    CHECK(rl.error->message.rfind("Rate limit reached", 0) == 0);
    CHECK(rl.error->param.empty());
    const completion q = parse_ok("error_quota.json");
    CHECK(q.error->code == "insufficient_quota");
    const completion inv = parse_ok("error_invalid.json");
    CHECK(inv.error->type == "invalid_request_error");
    CHECK(inv.error->param == "messages");
    CHECK(inv.error->code == "empty_array");
    const completion s = parse_ok("error_server.json");
    CHECK(s.error->type == "server_error");
    CHECK(s.error->code == "500"); // a numeric code is kept as its text
    CHECK(s.choices.empty());
}

TEST_CASE("bodies that are not a chat completion are malformed_response, never a crash") {
    for (const char* name : {"truncated.json", "html_502.html", "empty.json", "array.json"}) {
        INFO(name);
        CHECK(parse_error(name) == errc::malformed_response);
    }
}

// The sink embeds a body as JSON only on the parser's word, so the word must hold for every
// byte, also in the fields the fast path does not read.
TEST_CASE("the parse says whether the whole body is valid JSON, read fields or not") {
    const std::string completion_head = R"({"choices":[{"index":0,"message":{"content":"hi"}}],)";
    const std::vector<std::string> not_json = {
        "<html>\r\n<b>502 Bad Gateway</b>\n</html>",
        R"({"a":1} x)",
        R"({"a":tru})",
        R"({"a":01})",
        R"({"a":1,})",
        R"([1 2])",
        R"({"a":"\ud800"})", // lone surrogate
        R"({"a":"\x"})",
        "{\"a\":\"tab\there\"}", // raw control character inside a string
        R"({"a":1)",
        "",
        "   ",
        std::string(2000, '[') + std::string(2000, ']'), // deeper than 1024
        std::string(1'000'000, '['),                     // no recursion that deep
        "[[[[[[",                                        // unclosed, shallow: not read past
        R"([[1,{"a":[)",
        completion_head + R"("x":)" + std::string(100'000, '[') + std::string(100'000, ']') + "}",
        // A valid completion around an invalid field the fast path never reads.
        completion_head + R"("x":[1,2,]})",
        completion_head + R"("x":{"y":nul}})",
        completion_head + R"("x":"\q"})",
        completion_head + R"("\q":1})",
        completion_head + R"("usage":{"total_tokens":3,"details":{"a":-}}})",
        R"({"choices":[{"index":0,"message":{"content":null,"tool_calls":[{"id":tru}]}}]})",
        R"({"choices":[{"index":0,"message":{"refusal":nulx}}]})",
        R"({"choices":[{"index":0,"logprobs":{"content":[1,]}}]})",
        R"({"error":{"message":"m","code":01}})",
        R"({"error":{"message":"m","extra":[}})",
        completion_head + R"("usage":null} {})",
    };
    const std::vector<std::string> json = {
        R"({})",
        R"([])",
        R"("just a string")",
        R"(-0.5e+10)",
        R"(null)",
        R"(true)",
        R"({"big":123456789012345678901234567890})",
        R"({"a":[true,false,null,0,1.5,-2E-3,"x\"\\\/\b\f\n\r\t\u00E9\ud83d\ude00"]})",
        "{\"emoji\":\"\xF0\x9F\x98\x80\",\"deep\":" + std::string(100, '[') +
            std::string(100, ']') + "}",
        "\n{\r\n  \"id\": \"x\",\n  \"n\": [1,\n 2]\n}\n",
        completion_head + R"("x":{"y":[null,true,{"z":"\u00e9"}]},"usage":{"total_tokens":1}})",
    };
    completion_parser p;
    for (const auto& body : not_json) {
        INFO(body.substr(0, 80));
        completion c;
        CHECK(p.parse(body, c) == errc::malformed_response);
        CHECK_FALSE(c.body_is_json);
        CHECK_FALSE(p.is_json(body));
    }
    for (const auto& body : json) {
        INFO(body.substr(0, 80));
        completion c;
        (void)p.parse(body, c);
        CHECK(c.body_is_json);
        CHECK(p.is_json(body));
    }
    for (const char* name : {"plain.json",
                             "n3.json",
                             "tool_calls.json",
                             "refusal.json",
                             "vllm.json",
                             "llamacpp.json",
                             "reordered.json",
                             "unicode.json",
                             "error_quota.json",
                             "error_server.json",
                             "array.json"}) {
        INFO(name);
        completion c;
        (void)p.parse(fixture(name), c);
        CHECK(c.body_is_json);
    }
}

TEST_CASE("the zero-copy and the copying path give the same answer") {
    std::string tight = fixture("n3.json");
    tight.shrink_to_fit();
    std::string roomy = tight;
    roomy.reserve(roomy.size() + parse_padding);
    completion_parser p;
    completion a, b;
    REQUIRE_FALSE(p.parse(tight.data(), tight.size(), tight.size(), a));
    REQUIRE_FALSE(p.parse(roomy, b));
    REQUIRE(a.choices.size() == b.choices.size());
    for (std::size_t i = 0; i < a.choices.size(); ++i)
        CHECK(a.choices[i].content == b.choices[i].content);
    CHECK(a.usage->total_tokens == b.usage->total_tokens);
}

TEST_CASE("one parser serves many bodies in turn") {
    completion_parser p;
    completion c;
    for (int i = 0; i < 3; ++i) {
        for (const char* name : {"plain.json", "error_quota.json", "html_502.html", "n3.json"}) {
            const std::string body = fixture(name);
            const error_code ec = p.parse(body, c);
            if (std::string(name) == "html_502.html")
                CHECK(ec == errc::malformed_response);
            else
                CHECK_FALSE(ec);
        }
    }
    CHECK(c.choices.size() == 3);
}

TEST_CASE("every prefix of an answer parses correctly or fails cleanly") {
    const std::string full = fixture("plain.json");
    completion_parser p;
    for (std::size_t n = 0; n < full.size(); ++n) {
        std::string prefix = full.substr(0, n);
        completion c;
        const error_code ec = p.parse(prefix, c);
        if (!ec) {
            // Only a prefix that is itself a complete document may parse.
            REQUIRE(c.choices.size() == 1);
            CHECK(c.choices[0].content == "Hello! How can I assist you today?");
        } else {
            CHECK(ec == errc::malformed_response);
        }
    }
}

// The batch runner asks only for usage and the error object; the body it writes out must be
// judged exactly as the full parse judges it, or a record would change shape.
TEST_CASE("a usage-only parse accepts, refuses and reads usage and errors as the full parse") {
    const std::string head = R"({"choices":[{"index":0,"message":{"content":"hi"}}],)";
    std::vector<std::string> bodies = {
        R"({"a":1} x)",
        R"({"choices":[]})",
        R"({"choices":[{"index":0,"message":{"content":5}}]})", // content must be a string
        R"({"id":{},"choices":[{"index":0,"message":{"content":"x"}}]})",
        R"({"choices":[{"index":-1,"message":{"content":"x"}}]})",
        R"({"choices":[{"index":0,"finish_reason":[1]}]})",
        R"({"choices":[{"index":0,"message":{"content":"\q"}}]})",
        head + R"("usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})",
        head + R"("usage":{"total_tokens":"7"}})",
        R"({"error":{"message":"m","type":"t","code":429,"param":null}})",
        R"({"id":"chatcmpl-1","model":"m","choices":[{"index":0,"message":{"content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]})",
    };
    for (const char* name : {"plain.json",
                             "n3.json",
                             "tool_calls.json",
                             "refusal.json",
                             "vllm.json",
                             "llamacpp.json",
                             "reordered.json",
                             "unicode.json",
                             "no_usage.json",
                             "error_quota.json",
                             "error_server.json",
                             "error_invalid.json",
                             "truncated.json",
                             "html_502.html",
                             "empty.json",
                             "array.json"})
        bodies.push_back(fixture(name));
    completion_parser full, usage_only;
    for (const auto& body : bodies) {
        INFO(body.substr(0, 100));
        completion a, b;
        const error_code ea = full.parse(body, a);
        const error_code eb = usage_only.parse(body, b, completion_fields::usage);
        CHECK(ea == eb);
        CHECK(a.body_is_json == b.body_is_json);
        REQUIRE(a.usage.has_value() == b.usage.has_value());
        if (a.usage) {
            CHECK(a.usage->prompt_tokens == b.usage->prompt_tokens);
            CHECK(a.usage->completion_tokens == b.usage->completion_tokens);
            CHECK(a.usage->total_tokens == b.usage->total_tokens);
        }
        REQUIRE(a.error.has_value() == b.error.has_value());
        if (a.error) {
            CHECK(a.error->message == b.error->message);
            CHECK(a.error->code == b.error->code);
        }
        // What it was told not to copy, it did not.
        CHECK(b.id.empty());
        CHECK(b.model.empty());
        CHECK(b.choices.empty());
    }
}

// Found by tests/fuzz (corpus/completion/regress-usage-not-null): `"usage": n@` was taken for
// null from its first letter, so the body passed for JSON and the sink would have embedded it
// as is, making an output line that is not JSON (and an output file no resume accepts).
TEST_CASE("a usage that only starts like null is not JSON") {
    completion_parser p;
    for (const std::string body :
         {R"({"usage":n@})",
          R"({"usage":nul})",
          R"({"choices":[{"index":0,"message":{"content":"hi"}}],"usage":nulx})"}) {
        INFO(body);
        completion c;
        CHECK(p.parse(body, c) == errc::malformed_response);
        CHECK_FALSE(c.body_is_json);
        CHECK_FALSE(p.is_json(body));
    }
    completion c;
    CHECK_FALSE(p.parse(R"({"choices":[{"index":0,"message":{"content":"hi"}}],"usage":null})", c));
    CHECK_FALSE(c.usage);
    CHECK(c.body_is_json);
}

TEST_CASE("a deeply nested field nobody reads is accepted past the parsers' depth") {
    // The parsers follow nesting only to 128 levels (simdjson's default of 1,024 costs every
    // parser 9 KB, and a stream reader holds five); the check of the whole body goes to 1,024
    // levels, as it did.
    auto nested = [](int levels) {
        std::string v(static_cast<std::size_t>(levels), '[');
        v += std::string(static_cast<std::size_t>(levels), ']');
        return R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m",)"
               R"("choices":[{"index":0,"message":{"role":"assistant","content":"hi"},)"
               R"("finish_reason":"stop"}],"extra":)" +
               v + "}";
    };
    completion_parser p;
    for (const int levels : {100, 200, 1000}) {
        INFO(levels);
        completion c;
        const std::string body = nested(levels);
        CHECK_FALSE(p.parse(body, c));
        REQUIRE(c.choices.size() == 1);
        CHECK(c.choices[0].content == "hi");
    }
}
