// `sluice run --dry-run` as printed: the text for people and the JSON for scripts, and the
// built-in price table with a config file's prices over it. The plan's own arithmetic (scan,
// scopes, duration, cost) is the library's: tests/unit/batch/batch_plan_test.cpp.
#include "cli/config_file.hpp"
#include "cli/dry_run.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <sstream>
#include <string>
#include <utility>

using namespace sluice;
using namespace sluice::cli;

namespace {

request make_request(std::string model, std::string content, int max_tokens) {
    request r;
    r.model = model;
    r.body = R"({"model":")" + model + R"(","messages":[{"role":"user","content":")" + content +
             R"("}],"max_tokens":)" + std::to_string(max_tokens) + "}";
    return r;
}

limit_options limits(double rpm, double tpm) {
    limit_options l;
    l.rpm = rpm;
    l.tpm = tpm;
    return l;
}

// The plan printed with every request timed against `l`, as one scope.
std::string printed(const batch_plan& plan, const limit_options& l, const price_table& prices) {
    dispatcher_options opts;
    opts.limits = l;
    std::ostringstream os;
    print_plan(os, plan, estimate_plan(plan, opts, prices));
    return os.str();
}

std::string
json_of(const batch_plan& plan, const dispatcher_options& opts, const price_table& prices) {
    std::ostringstream os;
    write_plan_json(os, plan, estimate_plan(plan, opts, prices));
    return os.str();
}

} // namespace

TEST_CASE("the built-in prices are compiled in") {
    const price_table prices = builtin_prices();
    auto check = [&](const std::string& model, double input, double output) {
        INFO(model);
        REQUIRE(prices.count(model) == 1);
        CHECK(prices.at(model).input == Approx(input));
        CHECK(prices.at(model).output == Approx(output));
    };
    check("gpt-4o-mini", 0.15, 0.60);
    check("gpt-4o", 2.50, 10.00);
    check("gpt-4.1", 2.00, 8.00);
    check("gpt-4.1-mini", 0.40, 1.60);
    check("gpt-4.1-nano", 0.10, 0.40);
    check("gpt-3.5-turbo", 0.50, 1.50);
    check("o3-mini", 1.10, 4.40);
    CHECK(load_prices("").size() == prices.size());
}

// The matching rule itself is batch_plan_test's; here, that the built-in table holds the
// names it must so that the snapshots users send find their model.
TEST_CASE("the built-in prices find dated snapshots of their models") {
    const price_table prices = builtin_prices();
    const std::pair<const char*, const char*> snapshots[] = {
        {"gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
        {"gpt-4o-2024-08-06", "gpt-4o"},
        {"gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"},
        {"o3-mini-2025-01-31", "o3-mini"},
        {"gpt-3.5-turbo-0125", "gpt-3.5-turbo"},
    };
    for (const auto& [model, family] : snapshots) {
        INFO(model);
        std::string matched;
        REQUIRE(find_price(prices, model, &matched));
        CHECK(matched == family);
    }
    CHECK(find_price(prices, "gpt-4o-mini-2024-07-18")->input == Approx(0.15));
    // No family entry so short that it would price another model.
    CHECK_FALSE(find_price(prices, "gpt-4"));
    CHECK_FALSE(find_price(prices, "o3"));
    CHECK_FALSE(find_price(prices, "llama-3.1-8b"));
}

TEST_CASE("a config file's [prices] tables override and extend the built-in prices") {
    test::temp_dir dir;
    const std::string path = dir.file("c.toml");
    test::write_file(path,
                     "[limits]\n"
                     "rpm = 500\n"
                     "\n"
                     "[prices.\"gpt-4o-mini\"]\n"
                     "input = 0.075\n"
                     "\n"
                     "[prices.\"my-model\"]\n"
                     "input = 1\n"
                     "output = 2.5\n");
    const price_table prices = load_prices(path);
    CHECK(prices.at("gpt-4o-mini").input == Approx(0.075));
    CHECK(prices.at("gpt-4o-mini").output == Approx(0.60)); // left out: the built-in value
    CHECK(prices.at("my-model").input == Approx(1.0));
    CHECK(prices.at("my-model").output == Approx(2.5));
    CHECK(prices.at("gpt-4o").input == Approx(2.50));
    // The snapshot follows its model's new price.
    CHECK(find_price(prices, "gpt-4o-mini-2024-07-18")->input == Approx(0.075));

    // The same file is a valid config for every command.
    dispatcher_options opts;
    CHECK_NOTHROW(apply_config_file(path, opts));
    CHECK(opts.limits.rpm == 500);

    auto error_of = [&](const std::string& text) {
        test::write_file(path, text);
        std::string from_load;
        std::string from_apply;
        try {
            load_prices(path);
        } catch (const config_error& e) {
            from_load = e.what();
        }
        try {
            dispatcher_options o;
            apply_config_file(path, o);
        } catch (const config_error& e) {
            from_apply = e.what();
        }
        CHECK(from_load == from_apply);
        return from_load;
    };
    CHECK_THAT(error_of("[prices.\"new-model\"]\ninput = 1\n"),
               Catch::Contains("c.toml:1") && Catch::Contains("new-model") &&
                   Catch::Contains("output"));
    CHECK_THAT(error_of("[prices.\"gpt-4o\"]\ninptu = 1\n"),
               Catch::Contains("c.toml:2") && Catch::Contains("inptu") &&
                   Catch::Contains("unknown key"));
    CHECK_THAT(error_of("[prices.\"gpt-4o\"]\ninput = -1\n"),
               Catch::Contains("input") && Catch::Contains(">= 0"));
    CHECK_THAT(error_of("[prices.\"gpt-4o\"]\ninput = \"cheap\"\n"),
               Catch::Contains("expected a number"));
    CHECK_THAT(error_of("prices = 3\n"), Catch::Contains("prices"));
}

TEST_CASE("print_plan lists the first bad lines and counts the rest") {
    plan_builder builder;
    builder.add(make_request("gpt-4o-mini", "ok", 1));
    for (std::uint64_t i = 0; i < 25; ++i)
        builder.add_bad(i + 2, "not JSON: reason " + std::to_string(i + 2));
    input_record rec;
    rec.line_number = 30;
    rec.ec = errc::bad_input_line;
    rec.message = "prompt line needs a model (--model)";
    builder.add(rec);
    builder.add_skipped();
    builder.add_skipped();
    const batch_plan& plan = builder.plan();
    const std::string text = printed(plan, limits(0, 0), builtin_prices());
    CHECK_THAT(text, Catch::Contains("27 lines: 1 requests, 26 bad lines"));
    CHECK_THAT(text, Catch::Contains("bad lines (first 20 of 26):"));
    CHECK_THAT(text, Catch::Contains("    line 2: not JSON: reason 2\n"));
    CHECK_THAT(text, Catch::Contains("    line 21: not JSON: reason 21\n"));
    CHECK_THAT(text, !Catch::Contains("line 22:"));
    CHECK_THAT(text, !Catch::Contains("line 30:")); // counted, not listed
    CHECK_THAT(text,
               Catch::Contains("  2 more lines already have their record in the output: a "
                               "resumed run skips them\n"));
}

TEST_CASE("print_plan names the binding limit and prices what it can") {
    plan_builder builder;
    for (int i = 0; i < 100; ++i)
        builder.add(make_request("gpt-4o-mini-2024-07-18", std::string(396, 'x'), 1000));
    builder.add(make_request("my-model", "hello", 10));
    const batch_plan& plan = builder.plan();
    const model_plan& mini = plan.models.at("gpt-4o-mini-2024-07-18");
    // 396 chars / 4 + 4 per message + 3 per request: round numbers to check against.
    REQUIRE(mini.prompt_tokens == 100 * 106);
    REQUIRE(mini.completion_budget == 100 * 1000);
    const price_table prices = builtin_prices();

    SECTION("TPM-bound") {
        // 110,600 + my-model's tokens at 10,000 TPM: about 11 minutes; 101 requests at 500 RPM
        // would take 12 s.
        const std::string text = printed(plan, limits(500, 10'000), prices);
        INFO(text);
        CHECK_THAT(text, Catch::Contains("sluice run --dry-run: nothing sent"));
        CHECK_THAT(text,
                   Catch::Contains("minimum duration at the limits: 11.1 min, bound by "
                                   "tokens per minute (TPM)"));
        CHECK_THAT(text, Catch::Contains("101 requests at 500 RPM = 12 s"));
        CHECK_THAT(text, Catch::Contains("at 10,000 TPM = 11.1 min"));
        CHECK_THAT(text, Catch::Contains("refunded from usage"));
        // 10,600 x 0.15 + 100,000 x 0.60 per million = $0.0016 + $0.06
        CHECK_THAT(text, Catch::Contains("$0.06 (priced as gpt-4o-mini)"));
        CHECK_THAT(text, Catch::Contains("not priced: my-model"));
        CHECK_THAT(text, Catch::Contains("upper bound"));
        CHECK_THAT(text, Catch::Contains("    gpt-4o-mini-2024-07-18       100         10,600"));
    }
    SECTION("RPM-bound") {
        const std::string text = printed(plan, limits(25, 1'000'000), prices);
        INFO(text);
        CHECK_THAT(text,
                   Catch::Contains("minimum duration at the limits: 4.0 min, bound by "
                                   "requests per minute (RPM)"));
        CHECK_THAT(text, !Catch::Contains("refunded"));
    }
    SECTION("unlimited") {
        const std::string text = printed(plan, limits(0, 0), prices);
        INFO(text);
        CHECK_THAT(text, Catch::Contains("no limits configured"));
    }
    SECTION("a request larger than the TPM limit is called out") {
        const std::string text = printed(plan, limits(0, 1000), prices);
        INFO(text);
        CHECK_THAT(text, Catch::Contains("exceeds its 1,000 TPM"));
    }
    SECTION("long runs in hours") {
        const std::string text = printed(plan, limits(1, 0), prices);
        INFO(text);
        CHECK_THAT(text, Catch::Contains("1 h 41 min"));
    }
}

TEST_CASE("print_plan times models with limits of their own in their own scope") {
    plan_builder builder;
    for (int i = 0; i < 60; ++i)
        builder.add(make_request("gpt-4o", "a", 10));
    for (int i = 0; i < 600; ++i)
        builder.add(make_request("gpt-4o-mini", "b", 10));
    dispatcher_options opts;
    opts.limits = limits(600, 0);
    opts.model_limits["gpt-4o"] = limits(6, 0);
    std::ostringstream os;
    print_plan(os, builder.plan(), estimate_plan(builder.plan(), opts, builtin_prices()));
    const std::string text = os.str();
    INFO(text);
    // gpt-4o: 60 at 6 RPM = 10 min; everything else shares the endpoint: 600 at 600 = 1 min.
    CHECK_THAT(text,
               Catch::Contains("10.0 min, bound by requests per minute (RPM) of the model "
                               "gpt-4o scope"));
    CHECK_THAT(text, Catch::Contains("endpoint: 600 requests at 600 RPM = 1.0 min"));
    CHECK_THAT(text, Catch::Contains("model gpt-4o: 60 requests at 6 RPM = 10.0 min"));

    // per_model_limits: every named model gets the endpoint's limits on its own.
    dispatcher_options each;
    each.limits = limits(60, 0);
    each.per_model_limits = true;
    const std::string json = json_of(builder.plan(), each, builtin_prices());
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    REQUIRE_FALSE(parser.parse(json).get(root));
    CHECK(double(root["duration"]["minimum_minutes"]) == Approx(10.0));
    CHECK(std::string_view(root["duration"]["scope"]) == "gpt-4o-mini");
    CHECK(simdjson::dom::array(root["duration"]["scopes"]).size() == 2);
}

TEST_CASE("write_plan_json states the plan as one JSON object") {
    plan_builder builder;
    builder.add(make_request("gpt-4o", std::string(396, 'x'), 1000));
    builder.add(make_request("odd\\\"name", "y", 1));
    builder.add_bad(3, "not JSON: \"quoted\"\n");
    dispatcher_options opts;
    opts.limits = limits(100, 0);
    const std::string json = json_of(builder.plan(), opts, builtin_prices());
    INFO(json);
    REQUIRE(json.back() == '\n');
    REQUIRE(json.find('\n') == json.size() - 1); // one line

    simdjson::dom::parser parser;
    simdjson::dom::element root;
    REQUIRE_FALSE(parser.parse(json).get(root));
    CHECK(std::uint64_t(root["lines"]) == 3);
    CHECK(std::uint64_t(root["requests"]) == 2);
    CHECK(std::uint64_t(root["bad_lines"]) == 1);
    CHECK(std::uint64_t(root["bad_line_samples"].at(0)["line"]) == 3);
    CHECK(std::string_view(root["bad_line_samples"].at(0)["message"]) == "not JSON: \"quoted\"\n");

    const auto gpt4o = root["models"]["gpt-4o"];
    CHECK(std::uint64_t(gpt4o["requests"]) == 1);
    CHECK(std::uint64_t(gpt4o["prompt_tokens"]) == 106);
    CHECK(std::uint64_t(gpt4o["completion_budget"]) == 1000);
    CHECK(std::uint64_t(gpt4o["largest_request"]) == 1106);
    CHECK(std::string_view(gpt4o["priced_as"]) == "gpt-4o");
    CHECK(double(gpt4o["cost_usd"]["prompt"]) == Approx(106 * 2.50 / 1e6));
    CHECK(double(gpt4o["cost_usd"]["completion_max"]) == Approx(1000 * 10.00 / 1e6));
    CHECK(double(gpt4o["cost_usd"]["total_max"]) == Approx(0.010265));

    // A model name is any string the user wrote: escaped, and not priced.
    const auto odd = root["models"]["odd\\\"name"];
    CHECK(std::uint64_t(odd["requests"]) == 1);
    CHECK(odd["priced_as"].is_null());
    CHECK(odd["cost_usd"].is_null());

    CHECK(double(root["duration"]["minimum_minutes"]) == Approx(0.02));
    CHECK(std::string_view(root["duration"]["binding"]) == "rpm");
    CHECK(std::string_view(root["duration"]["scope"]).empty());
    CHECK(double(root["cost_usd"]["total_max"]) == Approx(0.010265));
    CHECK(std::string_view(root["cost_usd"]["unpriced_models"].at(0)) == "odd\\\"name");

    const std::string unlimited = json_of(builder.plan(), dispatcher_options{}, builtin_prices());
    REQUIRE_FALSE(parser.parse(unlimited).get(root));
    CHECK(std::string_view(root["duration"]["binding"]) == "none");
    CHECK(root["duration"]["scope"].is_null());
}
