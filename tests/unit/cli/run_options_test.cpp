#include "cli/run_command.hpp"
#include "support/run_options.hpp"
#include "support/temp_dir.hpp"

#include <sluice/admission/scope.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::cli;
using test::with_config;

TEST_CASE("a config file's rpm and tpm override the same file's tier") {
    test::temp_dir dir;
    const run_options o = with_config(dir, "[limits]\ntier = \"free\"\nrpm = 500\n");
    const dispatcher_options opts = build_options(o);
    CHECK(opts.limits.rpm == 500);    // the file's own number
    CHECK(opts.limits.tpm == 40'000); // the tier's, which the file left alone
}

TEST_CASE("flags outrank the config file: --tier over its numbers, --rpm over --tier") {
    test::temp_dir dir;
    run_options o = with_config(dir, "[limits]\nrpm = 500\ntpm = 1000\n");
    o.tier = "payg";
    dispatcher_options opts = build_options(o);
    CHECK(opts.limits.rpm == 3'500);
    CHECK(opts.limits.tpm == 90'000);
    o.rpm = 42;
    opts = build_options(o);
    CHECK(opts.limits.rpm == 42);
    CHECK(opts.limits.tpm == 90'000);
}

TEST_CASE("without a config file the flags alone set the limits") {
    run_options o;
    o.tier = "payg-first-48h";
    o.concurrency = 7;
    const dispatcher_options opts = build_options(o);
    CHECK(opts.limits.rpm == 60);
    CHECK(opts.limits.tpm == 60'000);
    CHECK(opts.pool.max_connections == 7);
}

TEST_CASE("a usage tier limits each model it names in a scope of its own") {
    test::temp_dir dir;
    // The file's own limits for gpt-4o outrank the tier's; its burst is the models' too.
    run_options o = with_config(dir,
                                "[limits]\n"
                                "burst_seconds = 2.0\n"
                                "[limits.models.\"gpt-4o\"]\n"
                                "rpm = 7\n");
    o.tier = "tier-2";
    const dispatcher_options opts = build_options(o);
    CHECK(opts.limits.rpm == 0); // no endpoint limit: other models learn the server's
    CHECK(opts.limits.tpm == 0);
    REQUIRE(opts.model_limits.count("gpt-4o-mini") == 1);
    const limit_options& mini = opts.model_limits.at("gpt-4o-mini");
    CHECK(mini.rpm == 5'000);
    CHECK(mini.tpm == 2'000'000);
    CHECK(mini.burst.count() == 2.0);
    CHECK(opts.model_limits.at("gpt-4o").rpm == 7);
    CHECK(opts.model_limits.at("gpt-4o").tpm == 0);
    // The dispatcher's rule: a model the tier names has its own scope and limits, another
    // model the endpoint's.
    CHECK(scope_key("gpt-4o-mini", opts.model_limits, opts.per_model_limits) == "gpt-4o-mini");
    CHECK(scope_limits("gpt-4o-mini", opts.limits, opts.model_limits).tpm == 2'000'000);
    CHECK(scope_key("llama-3", opts.model_limits, opts.per_model_limits).empty());
}

TEST_CASE("a tiers file from --tiers or the config's tiers_file gives --tier more names") {
    test::temp_dir dir;
    const std::string tiers = dir.file("tiers.toml");
    test::write_file(tiers,
                     "[tiers.gateway]\nrpm = 120\n[tiers.gateway.models]\n"
                     "\"llama\" = { rpm = 30, tpm = 9_000 }\n");
    run_options o;
    o.tier = "gateway";
    CHECK_THROWS_WITH(build_options(o),
                      Catch::Contains("unknown tier \"gateway\"") && Catch::Contains("tier-1"));
    o.tiers_file = tiers;
    dispatcher_options opts = build_options(o);
    CHECK(opts.limits.rpm == 120);
    CHECK(opts.model_limits.at("llama").tpm == 9'000);

    run_options f =
        with_config(dir, "[limits]\ntier = \"gateway\"\ntiers_file = \"" + tiers + "\"\n");
    opts = build_options(f);
    CHECK(opts.limits.rpm == 120);
    CHECK(opts.model_limits.at("llama").rpm == 30);
    // A broken tiers file is an error even when no tier is chosen.
    test::write_file(tiers, "[tiers.gateway]\nrpm = \"many\"\n");
    run_options plain;
    plain.tiers_file = tiers;
    CHECK_THROWS_WITH(build_options(plain), Catch::Contains("tiers.toml:2: [tiers.gateway] rpm"));
}

TEST_CASE("the no-adaptive flag turns adaptive admission off for the endpoint and every model") {
    test::temp_dir dir;
    run_options o = with_config(dir, "[limits.models.\"m\"]\nrpm = 5\n");
    CHECK(build_options(o).limits.adaptive.enabled);
    o.no_adaptive = true;
    const dispatcher_options opts = build_options(o);
    CHECK_FALSE(opts.limits.adaptive.enabled);
    CHECK_FALSE(opts.model_limits.at("m").adaptive.enabled);
    // And the config key, per scope.
    const run_options f = with_config(dir, "[limits]\nadaptive = false\n");
    CHECK_FALSE(build_options(f).limits.adaptive.enabled);
}

TEST_CASE("a run to a remote https endpoint without an API key is refused, naming the variable") {
    dispatcher_options opts;
    opts.base_url = "https://api.example.com/v1";
    const std::string why = missing_key_error(opts, "MY_KEY");
    CHECK(why.find("no API key") != std::string::npos);
    CHECK(why.find("MY_KEY") != std::string::npos);

    opts.api_key = "sk-x";
    CHECK(missing_key_error(opts, "MY_KEY").empty());

    // Local peers (the mock, a server under test) often take no key.
    opts.api_key.clear();
    for (const char* url :
         {"https://127.0.0.1:8443/v1", "https://localhost/v1", "http://10.1.2.3:8000/v1"}) {
        INFO(url);
        opts.base_url = url;
        CHECK(missing_key_error(opts, "MY_KEY").empty());
    }
}

TEST_CASE("a retry budget of 0 turns retries of failures off with their floor") {
    run_options o;
    o.retry_budget = 0.5;
    CHECK(build_options(o).retry.budget_min_per_second > 0);
    o.retry_budget = 0;
    const dispatcher_options opts = build_options(o);
    CHECK(opts.retry.budget_ratio == 0);
    CHECK(opts.retry.budget_min_per_second == 0);
}

TEST_CASE("build_options names the variable the key was read from") {
    test::temp_dir dir;
    std::string env;
    run_options o = with_config(dir, "api_key_env = \"FROM_FILE_KEY\"\n");
    build_options(o, &env);
    CHECK(env == "FROM_FILE_KEY");
    o.api_key_env = "FROM_FLAG_KEY";
    build_options(o, &env);
    CHECK(env == "FROM_FLAG_KEY");
    build_options(run_options{}, &env);
    CHECK(env == "OPENAI_API_KEY");
}

TEST_CASE("the config file's [run] section sets what the flags leave out") {
    test::temp_dir dir;
    run_options o = with_config(dir,
                                "[run]\nthreads = 2\nordered = true\nreorder_window = 99\n"
                                "flush_interval_ms = 0\nfsync_interval_ms = 5000\n"
                                "grace_period_s = 2.5\nprogress_interval_s = 1\n"
                                "model = \"gpt-4o-mini\"\nsystem = \"Be brief.\"\n");
    o.threads = 3; // given on the command line: it wins
    o.given.insert("--threads");
    run_settings file;
    build_options(o, nullptr, &file);
    apply_run_settings(o, file);
    CHECK(o.threads == 3);
    CHECK(o.ordered);
    CHECK(o.reorder_window == 99);
    CHECK(o.flush_interval_ms == 0);
    CHECK(o.fsync_interval_ms == 5000);
    CHECK(o.grace_period_s == 2.5);
    CHECK(o.progress_interval_s == 1);
    CHECK(o.model == "gpt-4o-mini");
    CHECK(o.system == "Be brief.");
}

TEST_CASE("the [run] section refuses unknown keys and values out of range") {
    test::temp_dir dir;
    for (const char* bad : {"[run]\nthreads = 65\n",
                            "[run]\nthreads = 0\n",
                            "[run]\nordred = true\n",
                            "[run]\nprogress_interval_s = 0\n",
                            "[run]\nmodel = 4\n"}) {
        INFO(bad);
        const run_options o = with_config(dir, bad);
        CHECK_THROWS_AS(build_options(o), config_error);
    }
}
