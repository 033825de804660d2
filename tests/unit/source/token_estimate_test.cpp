// The admission estimate, computed by hand for each body: prompt = ceil(chars / 4) + 4 per
// message + 3, completion = budget x n, with the defaults of estimate_options.
#include <sluice/source/token_estimate.hpp>

#include <catch2/catch.hpp>

#include <string>

using sluice::estimate_options;
using sluice::estimate_tokens;
using sluice::token_estimate;
using sluice::token_estimator;

TEST_CASE("estimate_tokens counts characters, not bytes, of message text") {
    // "日本語abcde": 8 code points (14 bytes) -> 2 tokens; + 4 (one message) + 3.
    const auto e = estimate_tokens(R"({"messages":[{"role":"user","content":"日本語abcde"}]})");
    CHECK(e.prompt == 9);
    CHECK(e.completion == 1024); // no budget in the body: default_max_tokens
    CHECK(e.total() == 1033);
}

TEST_CASE("estimate_tokens counts text after unescaping") {
    // Five \u00e9 escapes are five characters (30 bytes of JSON) -> 2 tokens.
    const auto e = estimate_tokens(
        R"({"messages":[{"role":"user","content":"\u00e9\u00e9\u00e9\u00e9\u00e9"}],"max_tokens":1})");
    CHECK(e.prompt == 2 + 4 + 3);
    CHECK(e.completion == 1);
}

TEST_CASE("estimate_tokens sums every message with its overhead") {
    // "You are terse." (14) + "Say hi." (7) = 21 chars -> 6 tokens; 2 messages -> 8; + 3.
    const auto e = estimate_tokens(R"({"model":"m","messages":[
        {"role":"system","content":"You are terse."},
        {"role":"user","content":"Say hi."}],"max_tokens":100})");
    CHECK(e.prompt == 17);
    CHECK(e.completion == 100);
}

TEST_CASE("estimate_tokens takes max_completion_tokens over max_tokens, times n") {
    const auto e =
        estimate_tokens(R"({"max_tokens":50,"messages":[],"max_completion_tokens":200,"n":3})");
    CHECK(e.prompt == 3);
    CHECK(e.completion == 600);
    CHECK(estimate_tokens(R"({"messages":[],"max_tokens":50,"n":2})").completion == 100);
}

TEST_CASE("estimate_tokens ignores budgets and n that are not positive integers") {
    CHECK(estimate_tokens(R"({"messages":[],"max_tokens":-5,"n":0})").completion == 1024);
    CHECK(estimate_tokens(R"({"messages":[],"max_tokens":"9","n":"2"})").completion == 1024);
    CHECK(estimate_tokens(R"({"messages":[],"max_tokens":null,"n":2})").completion == 2048);
    // A fractional budget is ignored without losing the rest of the body: "abcd" -> 1 token.
    const auto e = estimate_tokens(
        R"({"max_tokens":100.5,"n":1e300,"messages":[{"role":"user","content":"abcd"}]})");
    CHECK(e.prompt == 1 + 4 + 3);
    CHECK(e.completion == 1024);
    // A number past a double's range is refused as simdjson's DOM parser refuses it (as the
    // input reader does): the body is estimated by its length, 76 characters -> 19 tokens.
    const std::string past =
        R"({"max_tokens":100.5,"n":1e400,"messages":[{"role":"user","content":"abcd"}]})";
    CHECK(estimate_tokens(past).prompt == (past.size() + 3) / 4);
}

TEST_CASE("estimate_tokens counts text parts and charges a fixed 85 per image") {
    // "abcd" + "efgh" = 8 chars -> 2 tokens; one image -> 85; one message -> 4; + 3.
    const auto e = estimate_tokens(R"({"messages":[{"role":"user","content":[
        {"type":"text","text":"abcd"},
        {"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}},
        {"type":"text","text":"efgh"}]}]})");
    CHECK(e.prompt == 2 + 85 + 4 + 3);
}

TEST_CASE("estimate_tokens counts names, tool definitions and tool calls as text") {
    // "bob" (3) + "hi" (2) + raw `[{"type":"function"}]` (21) = 26 chars -> 7; + 4 + 3.
    const auto e = estimate_tokens(
        R"({"tools":[{"type":"function"}],"messages":[{"role":"user","name":"bob","content":"hi"}]})");
    CHECK(e.prompt == 14);
    // null content with tool calls: raw `[{"id":"c1"}]` (13 chars) -> 4; + 4 + 3.
    const auto calls = estimate_tokens(
        R"({"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1"}]}]})");
    CHECK(calls.prompt == 11);
}

TEST_CASE("estimate_tokens falls back to the length of a body that is not JSON") {
    // 15 bytes -> ceil(15 / 4) = 4, completion default_max_tokens (n unknown).
    const auto e = estimate_tokens("not json at all");
    CHECK(e.prompt == 4);
    CHECK(e.completion == 1024);
    // Truncated and trailing-garbage bodies are not JSON either.
    CHECK(estimate_tokens(R"({"messages":[)").prompt == 4); // 13 bytes
    const auto trailing = estimate_tokens(R"({"messages":[],"max_tokens":9} x)");
    CHECK(trailing.prompt == 8); // 32 bytes
    CHECK(trailing.completion == 1024);
    CHECK(estimate_tokens("").prompt == 0);
}

TEST_CASE("estimate_tokens follows its options") {
    estimate_options opts;
    opts.chars_per_token = 2.0;
    opts.per_message_overhead = 0;
    opts.per_request_overhead = 0;
    opts.default_max_tokens = 7;
    const auto e =
        estimate_tokens(R"({"messages":[{"role":"user","content":"abcde"}],"n":2})", opts);
    CHECK(e.prompt == 3); // ceil(5 / 2)
    CHECK(e.completion == 14);
}

TEST_CASE("a reused token_estimator gives what estimate_tokens gives, body after body") {
    estimate_options opts;
    opts.default_max_tokens = 100;
    token_estimator estimator(opts);
    const std::string long_body = R"({"model":"m","messages":[{"role":"user","content":")" +
                                  std::string(4000, 'x') + R"("}],"max_tokens":7})";
    const std::string small_body = R"({"messages":[{"role":"user","content":"hi"}],"n":2})";
    // A prefix of the long body: invalid on its own, though the buffer still holds the rest of
    // the long body beyond it. Only its own bytes may be read.
    const std::string cut_body = long_body.substr(0, 60);
    for (const std::string* body : {&long_body, &small_body, &cut_body, &long_body, &cut_body}) {
        const token_estimate want = estimate_tokens(*body, opts);
        const token_estimate got = estimator(*body);
        CHECK(got.prompt == want.prompt);
        CHECK(got.completion == want.completion);
    }
    CHECK(estimator(long_body).completion == 7);
    CHECK(estimator(small_body).completion == 200);
    CHECK(estimator(cut_body).completion == 100); // not JSON: the default budget, by length
    CHECK(estimator(cut_body).prompt == 15);      // 60 bytes / 4
}
