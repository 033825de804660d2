// The plan of a batch job (what `sluice run --dry-run` prints): the input scanned into a plan
// as the run would judge each line, the token sums, the time model with the dispatcher's
// scopes and the cost model at prices the caller gives.
#include "support/temp_dir.hpp"

#include <sluice/batch/batch_plan.hpp>
#include <sluice/sink/jsonl_writer.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace sluice;

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

std::string input_line(const std::string& id, const std::string& model, int max_tokens) {
    return R"({"custom_id":")" + id + R"(","method":"POST","url":"/v1/chat/completions",)" +
           R"("body":{"model":")" + model +
           R"(","messages":[{"role":"user","content":"hi"}],"max_tokens":)" +
           std::to_string(max_tokens) + "}}\n";
}

std::string success_record(const std::string& id) {
    result r;
    r.custom_id = id;
    r.status = 200;
    r.request_id = "req_1";
    r.body = R"({"ok":true})";
    std::string out;
    append_output_record(out, r, "batch_req_" + id);
    return out;
}

const price_table prices{{"gpt-4o", {2.50, 10.00}}, {"gpt-4o-mini", {0.15, 0.60}}};

} // namespace

TEST_CASE("minimum_duration takes the slower of requests/RPM and tokens/TPM") {
    SECTION("RPM binds") {
        const auto d = minimum_duration(1000, 50'000, limits(100, 90'000));
        CHECK(d.binding == binding_limit::rpm);
        CHECK(d.rpm_minutes == Approx(10.0));
        CHECK(d.tpm_minutes == Approx(50'000.0 / 90'000));
        CHECK(d.minutes == Approx(10.0));
    }
    SECTION("TPM binds") {
        const auto d = minimum_duration(1000, 900'000, limits(3500, 90'000));
        CHECK(d.binding == binding_limit::tpm);
        CHECK(d.tpm_minutes == Approx(10.0));
        CHECK(d.rpm_minutes == Approx(1000.0 / 3500));
        CHECK(d.minutes == Approx(10.0));
    }
    SECTION("only one limit set: that one binds, the other counts as zero") {
        const auto t = minimum_duration(10, 600, limits(0, 60));
        CHECK(t.binding == binding_limit::tpm);
        CHECK(t.minutes == Approx(10.0));
        CHECK(t.rpm_minutes == 0);
        const auto r = minimum_duration(10, 600, limits(5, 0));
        CHECK(r.binding == binding_limit::rpm);
        CHECK(r.minutes == Approx(2.0));
        CHECK(r.tpm_minutes == 0);
    }
    SECTION("no limits: no duration and nothing binds") {
        const auto d = minimum_duration(1000, 1'000'000, limits(0, 0));
        CHECK(d.binding == binding_limit::none);
        CHECK(d.minutes == 0);
    }
    SECTION("a tie names RPM") {
        CHECK(minimum_duration(60, 6000, limits(60, 6000)).binding == binding_limit::rpm);
    }
}

TEST_CASE("estimate_cost prices prompt tokens at input and the budget at output") {
    model_plan m;
    m.requests = 10;
    m.prompt_tokens = 2'000'000;
    m.completion_budget = 500'000;
    const auto c = estimate_cost(m, model_price{0.15, 0.60});
    CHECK(c.prompt == Approx(0.30));
    CHECK(c.completion == Approx(0.30));
    CHECK(c.total() == Approx(0.60));
    CHECK(estimate_cost(m, model_price{2.50, 10.00}).total() == Approx(5.0 + 5.0));
}

TEST_CASE("find_price takes the exact name, else the longest prefix at a name boundary") {
    const price_table table{{"gpt-4o", {2.50, 10.00}},
                            {"gpt-4o-mini", {0.15, 0.60}},
                            {"gpt-4.1", {2.00, 8.00}},
                            {"llama3", {0.01, 0.02}}};
    std::string matched;
    REQUIRE(find_price(table, "gpt-4o", &matched));
    CHECK(matched == "gpt-4o");
    // Dated snapshots take their model's price, not a shorter family name's.
    REQUIRE(find_price(table, "gpt-4o-mini-2024-07-18", &matched));
    CHECK(matched == "gpt-4o-mini");
    CHECK(find_price(table, "gpt-4o-mini-2024-07-18")->input == Approx(0.15));
    REQUIRE(find_price(table, "gpt-4o-2024-08-06", &matched));
    CHECK(matched == "gpt-4o");
    REQUIRE(find_price(table, "llama3:8b", &matched));
    CHECK(matched == "llama3");
    // A prefix that does not end at '-' or ':' is another model.
    CHECK_FALSE(find_price(table, "gpt-4.10"));
    CHECK_FALSE(find_price(table, "gpt-4"));
    CHECK_FALSE(find_price(table, "llama3.1"));
    CHECK_FALSE(find_price(table, ""));
    CHECK_FALSE(find_price({}, "gpt-4o"));
}

TEST_CASE("plan_builder splits each estimate into prompt tokens and completion budget") {
    plan_builder builder;
    const request a = make_request("gpt-4o-mini", std::string(400, 'a'), 100);
    const request b = make_request("gpt-4o-mini", std::string(40, 'b'), 10);
    const request c = make_request("gpt-4o", "hi", 5);
    request none = make_request("", "x", 1);
    builder.add(a);
    builder.add(b);
    builder.add(c);
    builder.add(none);
    const batch_plan& plan = builder.plan();
    CHECK(plan.lines == 4);
    CHECK(plan.requests == 4);
    CHECK(plan.bad_lines == 0);
    REQUIRE(plan.models.size() == 3);

    const auto ea = estimate_tokens(a.body);
    const auto eb = estimate_tokens(b.body);
    const model_plan& mini = plan.models.at("gpt-4o-mini");
    CHECK(mini.requests == 2);
    CHECK(mini.prompt_tokens == ea.prompt + eb.prompt);
    CHECK(mini.completion_budget == 110);
    CHECK(mini.largest_request == ea.total());
    CHECK(mini.tokens() == ea.total() + eb.total());
    CHECK(plan.models.at("gpt-4o").completion_budget == 5);
    CHECK(plan.models.at("").requests == 1);

    // The run's estimate options are the ones charged.
    estimate_options coarse;
    coarse.chars_per_token = 1;
    plan_builder other(coarse);
    other.add(a);
    CHECK(other.plan().models.at("gpt-4o-mini").prompt_tokens ==
          estimate_tokens(a.body, coarse).prompt);
}

TEST_CASE("plan_builder counts every bad line and keeps the first reasons") {
    plan_builder builder;
    builder.add(make_request("gpt-4o-mini", "ok", 1));
    for (std::uint64_t i = 0; i < 25; ++i)
        builder.add_bad(i + 2, "not JSON: reason " + std::to_string(i + 2));
    input_record rec;
    rec.line_number = 30;
    rec.ec = errc::bad_input_line;
    rec.message = "prompt line needs a model (--model)";
    builder.add(rec);
    const batch_plan& plan = builder.plan();
    CHECK(plan.lines == 27);
    CHECK(plan.requests == 1);
    CHECK(plan.bad_lines == 26);
    REQUIRE(plan.bad_samples.size() == plan_builder::max_bad_samples);
    CHECK(plan.bad_samples.front().line_number == 2);
    CHECK(plan.bad_samples.front().message == "not JSON: reason 2");
    CHECK(plan.bad_samples.back().line_number == 21);

    // A good record goes to add(request).
    input_record good;
    good.line_number = 31;
    good.request = make_request("gpt-4o", "fine", 3);
    builder.add(good);
    CHECK(builder.plan().models.at("gpt-4o").requests == 1);
    builder.add_skipped();
    CHECK(builder.plan().skipped == 1);
    CHECK(builder.plan().lines == 28); // a skipped line is not planned
}

TEST_CASE("estimate_plan times models with limits of their own in their own scope") {
    plan_builder builder;
    for (int i = 0; i < 60; ++i)
        builder.add(make_request("gpt-4o", "a", 10));
    for (int i = 0; i < 600; ++i)
        builder.add(make_request("gpt-4o-mini", "b", 10));
    builder.add(make_request("", "c", 10));
    dispatcher_options opts;
    opts.limits = limits(600, 0);
    opts.model_limits["gpt-4o"] = limits(6, 0);
    const plan_estimate e = estimate_plan(builder.plan(), opts, prices);

    // The endpoint's scope first: gpt-4o-mini and the request naming no model share it.
    REQUIRE(e.scopes.size() == 2);
    CHECK(e.scopes[0].name.empty());
    CHECK(e.scopes[0].requests == 601);
    CHECK(e.scopes[0].limits.rpm == 600);
    CHECK(e.scopes[1].name == "gpt-4o");
    CHECK(e.scopes[1].requests == 60);
    CHECK(e.scopes[1].limits.rpm == 6);
    CHECK(e.scopes[1].duration.minutes == Approx(10.0));
    REQUIRE(e.slowest_scope() != nullptr);
    CHECK(e.slowest_scope()->name == "gpt-4o");
    CHECK(e.slowest_scope()->duration.binding == binding_limit::rpm);

    SECTION("per_model_limits: every named model gets the endpoint's limits on its own") {
        dispatcher_options each;
        each.limits = limits(60, 0);
        each.per_model_limits = true;
        const plan_estimate p = estimate_plan(builder.plan(), each, prices);
        REQUIRE(p.scopes.size() == 3);
        CHECK(p.scopes[0].name.empty());
        CHECK(p.scopes[0].requests == 1);
        CHECK(p.scopes[1].name == "gpt-4o");
        CHECK(p.scopes[2].name == "gpt-4o-mini");
        CHECK(p.scopes[2].limits.rpm == 60);
        CHECK(p.scopes[2].duration.minutes == Approx(10.0));
        CHECK(p.slowest_scope()->name == "gpt-4o-mini");
    }
    SECTION("no limits anywhere: no scope is slowest") {
        const plan_estimate p = estimate_plan(builder.plan(), dispatcher_options{}, prices);
        CHECK_FALSE(p.slowest);
        CHECK(p.slowest_scope() == nullptr);
    }
}

TEST_CASE("estimate_plan flags a scope whose largest request exceeds its TPM") {
    plan_builder builder;
    builder.add(make_request("gpt-4o", std::string(396, 'x'), 1000)); // 106 + 1000 tokens
    builder.add(make_request("gpt-4o-mini", "y", 10));
    dispatcher_options opts;
    opts.limits = limits(0, 1000);
    opts.model_limits["gpt-4o"] = limits(0, 2000);
    const plan_estimate e = estimate_plan(builder.plan(), opts, prices);
    REQUIRE(e.scopes.size() == 2);
    CHECK_FALSE(e.scopes[1].too_large); // 1,106 fits gpt-4o's own 2,000
    opts.model_limits["gpt-4o"] = limits(0, 1100);
    const plan_estimate tight = estimate_plan(builder.plan(), opts, prices);
    CHECK(tight.scopes[1].largest_request == 1106);
    CHECK(tight.scopes[1].too_large);
    CHECK_FALSE(tight.scopes[0].too_large);
    // No TPM: nothing is too large.
    CHECK_FALSE(estimate_plan(builder.plan(), dispatcher_options{}, prices).scopes[0].too_large);
}

TEST_CASE("estimate_plan prices the models it can and lists the others") {
    plan_builder builder;
    for (int i = 0; i < 100; ++i)
        builder.add(make_request("gpt-4o-mini-2024-07-18", std::string(396, 'x'), 1000));
    builder.add(make_request("my-model", "hello", 10));
    const plan_estimate e = estimate_plan(builder.plan(), dispatcher_options{}, prices);
    const model_cost& mini = e.models.at("gpt-4o-mini-2024-07-18");
    CHECK(mini.priced_as == "gpt-4o-mini");
    REQUIRE(mini.cost);
    // 10,600 x 0.15 + 100,000 x 0.60 per million
    CHECK(mini.cost->prompt == Approx(10'600 * 0.15 / 1e6));
    CHECK(mini.cost->completion == Approx(0.06));
    const model_cost& mine = e.models.at("my-model");
    CHECK(mine.priced_as.empty());
    CHECK_FALSE(mine.cost);
    REQUIRE(e.unpriced.size() == 1);
    CHECK(e.unpriced[0] == "my-model");
    CHECK(e.total_cost.total() == Approx(mini.cost->total()));
}

TEST_CASE("plan_batch plans a half-finished job for what is left, as the run judges it") {
    test::temp_dir dir;
    batch_files files;
    files.input = dir.file("in.jsonl");
    files.output = dir.file("out.jsonl");
    test::write_file(files.input,
                     input_line("a", "gpt-4o", 10) + input_line("b", "gpt-4o", 20) + "not json\n" +
                         input_line("c", "gpt-4o-mini", 30) +
                         input_line("a", "gpt-4o", 40)); // a repeated custom_id
    const std::string done = success_record("b");
    test::write_file(files.output, done);
    batch_options opts;

    const batch_plan plan = plan_batch(files, opts);
    CHECK(plan.skipped == 1); // b's record is in the output
    CHECK(plan.lines == 4);
    CHECK(plan.requests == 2); // a and c
    CHECK(plan.bad_lines == 2);
    REQUIRE(plan.bad_samples.size() == 2);
    CHECK(plan.bad_samples[0].line_number == 3);
    CHECK(plan.bad_samples[1].line_number == 5);
    REQUIRE(plan.models.count("gpt-4o") == 1);
    CHECK(plan.models.at("gpt-4o").completion_budget == 10);
    CHECK(plan.models.at("gpt-4o-mini").completion_budget == 30);
    CHECK(test::read_file(files.output) == done); // only read

    // Without an output (or with stdout) every line is planned.
    files.output.clear();
    const batch_plan fresh = plan_batch(files, opts);
    CHECK(fresh.skipped == 0);
    CHECK(fresh.requests == 3);
    CHECK(fresh.models.at("gpt-4o").completion_budget == 30);
}
