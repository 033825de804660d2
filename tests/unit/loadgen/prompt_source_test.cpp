#include "support/temp_dir.hpp"

#include <sluice/loadgen/prompt_source.hpp>
#include <sluice/source/stream_request.hpp>
#include <sluice/source/token_estimate.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <set>
#include <stdexcept>
#include <string>

using namespace sluice;

namespace {

struct body_fields {
    std::string model;
    std::string content;
    std::int64_t max_tokens = -1;
    bool stream = false;
    bool include_usage = false;
    bool ignore_eos = false;
};

body_fields read_body(const std::string& body) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    REQUIRE(parser.parse(body).get(root) == simdjson::SUCCESS);
    body_fields f;
    f.model = std::string(std::string_view(root["model"]));
    f.content = std::string(std::string_view(root["messages"].at(0)["content"]));
    if (root["max_tokens"].error() == simdjson::SUCCESS)
        f.max_tokens = std::int64_t(root["max_tokens"]);
    f.stream = bool(root["stream"]);
    bool usage = false;
    if (root["stream_options"]["include_usage"].get(usage) == simdjson::SUCCESS)
        f.include_usage = usage;
    bool eos = false;
    if (root["ignore_eos"].get(eos) == simdjson::SUCCESS)
        f.ignore_eos = eos;
    return f;
}

std::size_t words(const std::string& text) {
    std::size_t n = text.empty() ? 0 : 1;
    for (char c : text)
        n += c == ' ';
    return n;
}

prompt_options synthetic(const char* in, const char* out) {
    prompt_options o;
    o.model = "m";
    o.input_tokens = parse_token_range(in, "--input-tokens");
    o.output_tokens = parse_token_range(out, "--output-tokens");
    return o;
}

} // namespace

TEST_CASE("token ranges are N or N-M") {
    const token_range fixed = parse_token_range("128", "x");
    CHECK(fixed.min == 128);
    CHECK(fixed.fixed());
    const token_range range = parse_token_range("10-20", "x");
    CHECK(range.min == 10);
    CHECK(range.max == 20);
    CHECK_FALSE(range.fixed());
    for (const char* bad : {"", "0", "-5", "5-", "20-10", "1.5", "abc", "99999999999"})
        CHECK_THROWS_AS(parse_token_range(bad, "--input-tokens"), std::invalid_argument);
}

TEST_CASE("synthetic prompts have the asked length, max_tokens and stream") {
    prompt_source src(synthetic("100", "32"), 5, 42);
    CHECK(src.size() == 5); // no more than the run needs
    for (int i = 0; i < 5; ++i) {
        const prompt& p = src.next();
        const body_fields f = read_body(p.body);
        CHECK(f.model == "m");
        CHECK(words(f.content) == 100);
        CHECK(f.max_tokens == 32);
        CHECK(f.stream);
        CHECK(f.include_usage);
        CHECK_FALSE(f.ignore_eos);
        CHECK(p.input_tokens == 100);
        CHECK(p.model == "m");
    }
    CHECK(src.describe() == "synthetic: 100 input tokens, 32 output tokens");
}

TEST_CASE("synthetic ranges are drawn within bounds, the same for the same seed") {
    prompt_options o = synthetic("10-20", "5-8");
    o.stream = false;
    o.ignore_eos = true;
    prompt_source a(o, 0, 7), b(o, 0, 7), c(o, 0, 8);
    CHECK(a.size() == 1000); // the default number of distinct prompts without a count
    std::set<std::size_t> lengths;
    bool differs = false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const prompt& p = a.next();
        const body_fields f = read_body(p.body);
        CHECK(words(f.content) == p.input_tokens);
        CHECK(p.input_tokens >= 10);
        CHECK(p.input_tokens <= 20);
        CHECK(f.max_tokens >= 5);
        CHECK(f.max_tokens <= 8);
        CHECK_FALSE(f.stream);
        CHECK_FALSE(f.include_usage);
        CHECK(f.ignore_eos);
        lengths.insert(p.input_tokens);
        CHECK(b.next().body == p.body);
        differs = differs || c.next().body != p.body;
    }
    CHECK(lengths.size() == 11);
    CHECK(differs);
}

TEST_CASE("synthetic prompts need a model") {
    prompt_options o;
    CHECK_THROWS_AS(prompt_source(o, 1, 0), std::invalid_argument);
}

TEST_CASE("with_stream sets the top-level stream and keeps every other byte") {
    CHECK(with_stream(R"({"model":"m"})", true) == R"({"stream":true,"model":"m"})");
    CHECK(with_stream(R"( { } )", false) == R"( {"stream":false } )");
    CHECK(with_stream(R"({"a":{"stream":false},"stream" : false ,"n":1.0e0})", true) ==
          R"({"a":{"stream":false},"stream" : true ,"n":1.0e0})");
    CHECK(with_stream(R"({"stream":true,"x":[1,2]})", false) == R"({"stream":false,"x":[1,2]})");
    CHECK_THROWS_AS(with_stream("[1]", true), std::invalid_argument);
    CHECK_THROWS_AS(with_stream(R"({"stream":"yes"})", true), std::invalid_argument);
    CHECK_THROWS_AS(with_stream("not json", true), std::invalid_argument);
}

TEST_CASE("a JSONL file's prompts are cycled in order, bad lines skipped and counted") {
    test::temp_dir dir;
    const std::string path = dir.file("prompts.jsonl");
    test::write_file(
        path,
        R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"x","messages":[{"role":"user","content":"one"}]}})"
        "\n"
        "not json\n"
        R"({"model":"y","messages":[{"role":"user","content":"two"}],"stream":false})"
        "\n"
        R"({"prompt":"three"})"
        "\n");
    prompt_options o;
    o.input_file = path;
    o.model = "fallback";
    o.system = "be brief";
    prompt_source src(o, 0, 1);
    REQUIRE(src.size() == 3);
    CHECK(src.bad_lines() == 1);
    CHECK_THAT(src.first_bad_line(), Catch::StartsWith("line 2: "));
    const std::string first = src.next().body;
    CHECK(read_body(first).content == "one");
    CHECK(read_body(first).stream);
    const prompt& second = src.next();
    CHECK(read_body(second.body).stream); // set whatever the line said
    CHECK(second.model == "y");
    const prompt& third = src.next();
    CHECK(third.model == "fallback");
    CHECK(third.input_tokens > 0);
    CHECK(src.next().body == first); // cycled
    CHECK_THAT(src.describe(), Catch::Contains("3 prompts, in order"));

    prompt_source counted(o, 2, 1); // a run of two requests reads no further
    CHECK(counted.size() == 2);
}

TEST_CASE("prepared prompts carry the engine's estimate and bodies it takes as they are") {
    test::temp_dir dir;
    const std::string path = dir.file("prompts.jsonl");
    test::write_file(path,
                     R"({"model":"y","messages":[{"role":"user","content":"two words"}]})"
                     "\n"
                     R"({"prompt":"three","max_tokens":5})"
                     "\n");
    for (const bool stream : {true, false}) {
        INFO("stream " << stream);
        prompt_options o;
        o.input_file = path;
        o.model = "m";
        o.stream = stream;
        prompt_source src(o, 0, 1);
        std::vector<std::string> before;
        for (const prompt& p : src.all()) {
            CHECK_FALSE(p.token_cost); // nothing until prepared
            before.push_back(p.body);
        }
        estimate_options e;
        e.chars_per_token = 2;
        e.default_max_tokens = 40;
        src.prepare(e);
        for (std::size_t i = 0; i < src.size(); ++i) {
            const prompt& p = src.all()[i];
            std::string engine_body = before[i]; // what the engine would have sent
            CHECK(p.streams == prepare_stream_request(engine_body));
            CHECK(p.streams == stream);
            CHECK(p.body == engine_body);
            CHECK(read_body(p.body).include_usage == stream);
            REQUIRE(p.token_cost);
            CHECK(*p.token_cost == estimate_tokens(engine_body, e).total());
        }
    }
}

TEST_CASE("sampling draws lines at random with the seed") {
    test::temp_dir dir;
    const std::string path = dir.file("prompts.jsonl");
    std::string text;
    for (int i = 0; i < 10; ++i)
        text += R"({"prompt":"p)" + std::to_string(i) + "\"}\n";
    test::write_file(path, text);
    prompt_options o;
    o.input_file = path;
    o.model = "m";
    o.sample = true;
    o.stream = false;
    prompt_source a(o, 3, 5), b(o, 3, 5);
    CHECK(a.size() == 10); // sampling reads every line whatever the count
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        const std::string body = a.next().body;
        CHECK(b.next().body == body);
        CHECK_FALSE(read_body(body).stream);
        seen.insert(body);
    }
    CHECK(seen.size() == 10);
}

TEST_CASE("a file without a usable line, or that cannot be opened, is refused") {
    test::temp_dir dir;
    const std::string path = dir.file("bad.jsonl");
    test::write_file(path, "nope\n\n");
    prompt_options o;
    o.input_file = path;
    CHECK_THROWS_AS(prompt_source(o, 0, 0), std::runtime_error);
    o.input_file = dir.file("missing.jsonl");
    CHECK_THROWS_AS(prompt_source(o, 0, 0), std::system_error);
}

TEST_CASE("a model with a CR, LF or NUL is refused by the prompt options") {
    prompt_options p;
    p.model = "gpt-4o-mini";
    CHECK_NOTHROW(p.validate());
    for (const std::string& bad :
         {std::string("m\n"), std::string("m\r\nX: 1"), std::string("m\0", 2)}) {
        p.model = bad;
        CHECK_THROWS_WITH(p.validate(), Catch::Contains("prompts.model"));
    }
}
