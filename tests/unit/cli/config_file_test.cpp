#include "cli/config_file.hpp"
#include "cli/run_command.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace sluice;
using namespace sluice::cli;

namespace {

std::string write_config(const test::temp_dir& dir, const std::string& text) {
    const std::string path = dir.file("c.toml");
    test::write_file(path, text);
    return path;
}

std::string error_of(const std::string& path) {
    dispatcher_options o;
    try {
        apply_config_file(path, o);
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("configs/default.toml states exactly the defaults of the option structs") {
    // Every key's field starts away from its default: a key missing from the file, or a
    // default changed in one place only, fails here.
    dispatcher_options loaded;
    loaded.base_url = "changed";
    loaded.queue_limit = 1;
    loaded.deadline = std::chrono::milliseconds(1);
    loaded.on_full =
        loaded.on_full == overflow_policy::wait ? overflow_policy::fail : overflow_policy::wait;
    loaded.pool.max_connections = 1;
    loaded.pool.connect_timeout = std::chrono::milliseconds(1);
    loaded.pool.handshake_timeout = std::chrono::milliseconds(1);
    loaded.pool.tunnel_timeout = std::chrono::milliseconds(1);
    loaded.proxy.url = "http://changed:1";
    loaded.proxy.no_proxy = "changed";
    loaded.pool.request_timeout = std::chrono::milliseconds(1);
    loaded.pool.stream_idle_timeout = std::chrono::milliseconds(1);
    loaded.pool.idle_timeout = std::chrono::milliseconds(1);
    loaded.pool.max_body_size = 1;
    loaded.pool.max_body_bytes_in_flight = 1;
    loaded.pool.reuse_quiet_period = std::chrono::milliseconds(1);
    loaded.tls.insecure = !loaded.tls.insecure;
    loaded.tls.ca_file = "changed.pem";
    loaded.organization = "changed";
    loaded.project = "changed";
    loaded.style = api_style::openai;
    loaded.api_version = "changed";
    loaded.per_model_limits = !loaded.per_model_limits;
    loaded.limits.rpm = 1;
    loaded.limits.tpm = 1;
    loaded.limits.burst = std::chrono::duration<double>(7);
    loaded.limits.learn_from_headers = !loaded.limits.learn_from_headers;
    loaded.limits.adaptive.enabled = !loaded.limits.adaptive.enabled;
    loaded.retry.max_attempts = 9;
    loaded.retry.initial_backoff = std::chrono::milliseconds(1);
    loaded.retry.max_backoff = std::chrono::milliseconds(1);
    loaded.retry.max_retry_after = std::chrono::milliseconds(1);
    loaded.retry.budget_ratio = 0.9;
    loaded.retry.budget_min_per_second = 0.5;
    loaded.retry.budget_window = std::chrono::seconds(1);
    loaded.estimate.chars_per_token = 1;
    loaded.estimate.per_message_overhead = 99;
    loaded.estimate.per_request_overhead = 99;
    loaded.estimate.default_max_tokens = 1;
    loaded.shared_budget.url = "redis://changed";
    loaded.shared_budget.key = "changed";
    loaded.shared_budget.optional = !loaded.shared_budget.optional;
    loaded.breaker.failure_threshold = 99;
    loaded.breaker.cool_down = std::chrono::milliseconds(1);
    loaded.breaker.max_cool_down = std::chrono::milliseconds(1);
    const auto settings =
        apply_config_file(std::string(SLUICE_SOURCE_DIR) + "/configs/default.toml", loaded);
    const dispatcher_options d;
    CHECK(loaded.base_url == d.base_url);
    CHECK(loaded.shared_budget.url == d.shared_budget.url);
    CHECK(loaded.shared_budget.key == d.shared_budget.key);
    CHECK(loaded.shared_budget.optional == d.shared_budget.optional);
    CHECK(loaded.style == d.style);
    CHECK(loaded.proxy.url == d.proxy.url);
    CHECK(loaded.proxy.no_proxy == d.proxy.no_proxy);
    CHECK(loaded.pool.tunnel_timeout == d.pool.tunnel_timeout);
    CHECK(loaded.api_version == d.api_version);
    CHECK(loaded.queue_limit == d.queue_limit);
    CHECK(loaded.on_full == d.on_full);
    CHECK(loaded.deadline == d.deadline);
    CHECK(loaded.pool.max_connections == d.pool.max_connections);
    CHECK(loaded.pool.connect_timeout == d.pool.connect_timeout);
    CHECK(loaded.pool.handshake_timeout == d.pool.handshake_timeout);
    CHECK(loaded.pool.request_timeout == d.pool.request_timeout);
    CHECK(loaded.pool.stream_idle_timeout == d.pool.stream_idle_timeout);
    CHECK(loaded.pool.idle_timeout == d.pool.idle_timeout);
    CHECK(loaded.pool.max_body_size == d.pool.max_body_size);
    CHECK(loaded.pool.max_body_bytes_in_flight == d.pool.max_body_bytes_in_flight);
    CHECK(loaded.pool.reuse_quiet_period == d.pool.reuse_quiet_period);
    CHECK(loaded.tls.insecure == d.tls.insecure);
    CHECK(loaded.tls.ca_file == d.tls.ca_file);
    CHECK(loaded.breaker.failure_threshold == d.breaker.failure_threshold);
    CHECK(loaded.breaker.cool_down == d.breaker.cool_down);
    CHECK(loaded.breaker.max_cool_down == d.breaker.max_cool_down);
    CHECK(loaded.organization == d.organization);
    CHECK(loaded.project == d.project);
    CHECK(loaded.per_model_limits == d.per_model_limits);
    CHECK(loaded.model_limits.empty());
    CHECK(loaded.limits.rpm == d.limits.rpm);
    CHECK(loaded.limits.tpm == d.limits.tpm);
    CHECK(loaded.limits.burst == d.limits.burst);
    CHECK(loaded.limits.learn_from_headers == d.limits.learn_from_headers);
    CHECK(loaded.limits.adaptive.enabled == d.limits.adaptive.enabled);
    CHECK(loaded.limits.share == d.limits.share); // not a key: --threads sets it
    CHECK(loaded.retry.max_attempts == d.retry.max_attempts);
    CHECK(loaded.retry.initial_backoff == d.retry.initial_backoff);
    CHECK(loaded.retry.max_backoff == d.retry.max_backoff);
    CHECK(loaded.retry.max_retry_after == d.retry.max_retry_after);
    CHECK(loaded.retry.budget_ratio == d.retry.budget_ratio);
    CHECK(loaded.retry.budget_min_per_second == d.retry.budget_min_per_second);
    CHECK(loaded.retry.budget_window == d.retry.budget_window);
    CHECK(loaded.estimate.chars_per_token == d.estimate.chars_per_token);
    CHECK(loaded.estimate.per_message_overhead == d.estimate.per_message_overhead);
    CHECK(loaded.estimate.per_request_overhead == d.estimate.per_request_overhead);
    CHECK(loaded.estimate.default_max_tokens == d.estimate.default_max_tokens);
    CHECK(settings.api_key_env == "OPENAI_API_KEY");
    CHECK(settings.tier.empty());
    CHECK(settings.tiers_file.empty());
    // [run] states the defaults of `sluice run`'s own options.
    const run_options r;
    CHECK(settings.run.threads == r.threads);
    CHECK(settings.run.ordered == r.ordered);
    CHECK(settings.run.reorder_window == r.reorder_window);
    CHECK(settings.run.flush_interval_ms == r.flush_interval_ms);
    CHECK(settings.run.fsync_interval_ms == r.fsync_interval_ms);
    CHECK(settings.run.grace_period_s == r.grace_period_s);
    CHECK(settings.run.max_duration_s == r.max_duration_s);
    CHECK(settings.run.progress_interval_s == r.progress_interval_s);
    CHECK(settings.run.model == r.model);
    CHECK(settings.run.system == r.system);
}

TEST_CASE("the tiers compiled in are the provider's numbers") {
    const auto tiers = builtin_tiers();
    std::map<std::string, std::pair<double, double>> by_name;
    for (const auto& t : tiers)
        by_name[t.name] = {t.rpm, t.tpm};
    CHECK(by_name.at("free") == std::pair<double, double>(20, 40000));
    CHECK(by_name.at("payg-first-48h") == std::pair<double, double>(60, 60000));
    CHECK(by_name.at("payg") == std::pair<double, double>(3500, 90000));
    // The original three limit the endpoint; OpenAI's usage tiers limit each model.
    CHECK(find_tier(tiers, "payg").models.empty());
    for (const char* name : {"tier-1", "tier-2", "tier-3", "tier-4", "tier-5"}) {
        INFO(name);
        const tier& t = find_tier(tiers, name);
        CHECK(t.rpm == 0);
        CHECK(t.tpm == 0);
        CHECK(t.description.find("OpenAI usage tier") == 0);
        for (const char* model : {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"}) {
            INFO(model);
            REQUIRE(t.models.count(model) == 1);
            CHECK(t.models.at(model).rpm > 0);
            CHECK(t.models.at(model).tpm > 0);
        }
    }
    CHECK(find_tier(tiers, "tier-1").models.at("gpt-4o").rpm == 500);
    CHECK(find_tier(tiers, "tier-1").models.at("gpt-4o").tpm == 30'000);
    CHECK(find_tier(tiers, "tier-5").models.at("gpt-4o-mini").rpm == 30'000);
    CHECK(find_tier(tiers, "tier-5").models.at("gpt-4o-mini").tpm == 150'000'000);
    CHECK(load_tiers(std::string(SLUICE_SOURCE_DIR) + "/configs/tiers.toml").size() ==
          tiers.size());
    CHECK_THROWS_WITH(find_tier(tiers, "gold"),
                      Catch::Contains("gold") && Catch::Contains("free") &&
                          Catch::Contains("payg"));
}

TEST_CASE("a config file sets what it names and nothing else") {
    test::temp_dir dir;
    const auto path = write_config(dir, R"(
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "MY_KEY"
[pool]
max_connections = 8
request_timeout_ms = 5000
[limits]
tier = "free"
tpm = 1000
burst_seconds = 2.5
[retry]
max_attempts = 2
)");
    dispatcher_options o;
    const auto s = apply_config_file(path, o);
    CHECK(o.base_url == "http://127.0.0.1:8000/v1");
    CHECK(o.pool.max_connections == 8);
    CHECK(o.pool.request_timeout == std::chrono::milliseconds(5000));
    CHECK(o.pool.connect_timeout == pool_options{}.connect_timeout);
    CHECK(o.limits.tpm == 1000);
    CHECK(o.limits.burst == std::chrono::duration<double>(2.5));
    CHECK(o.retry.max_attempts == 2);
    CHECK(s.api_key_env == "MY_KEY");
    CHECK(s.tier == "free");
}

TEST_CASE("config errors name the file, the line and the key") {
    test::temp_dir dir;
    auto e = error_of(write_config(dir, "[pool]\nmax_conections = 3\n"));
    CHECK_THAT(e,
               Catch::Contains("c.toml:2") && Catch::Contains("max_conections") &&
                   Catch::Contains("unknown key"));
    e = error_of(write_config(dir, "\n\n[pool]\nmax_connections = \"many\"\n"));
    CHECK_THAT(e,
               Catch::Contains("c.toml:4") && Catch::Contains("[pool] max_connections") &&
                   Catch::Contains("integer"));
    e = error_of(write_config(dir, "[retry]\nmax_attempts = 0\n"));
    CHECK_THAT(e, Catch::Contains("c.toml:2") && Catch::Contains(">= 1"));
    e = error_of(write_config(dir, "[limitz]\nrpm = 1\n"));
    CHECK_THAT(e, Catch::Contains("unknown section [limitz]"));
    e = error_of(write_config(dir, "on_full = \"drop\"\n"));
    CHECK_THAT(e, Catch::Contains("on_full") && Catch::Contains("wait"));
    e = error_of(write_config(dir, "base_url = \"ftp://x\"\n"));
    CHECK_THAT(e, Catch::Contains("base_url"));
    e = error_of(write_config(dir, "[pool\nmax_connections = 3\n"));
    CHECK_THAT(e, Catch::Contains("c.toml:1"));
    e = error_of(dir.file("missing.toml"));
    CHECK_THAT(e, Catch::Contains("missing.toml"));
}

TEST_CASE("the environment overrides the file the way the SDKs read it") {
    std::map<std::string, std::string> env{{"OPENAI_BASE_URL", "http://127.0.0.1:9/v1"},
                                           {"MY_KEY", "sk-from-env"},
                                           {"OPENAI_ORG_ID", "org-1"},
                                           {"OPENAI_PROJECT_ID", ""}};
    auto getenv = [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    dispatcher_options o;
    o.project = "proj-from-file";
    apply_environment(o, "MY_KEY", getenv);
    CHECK(o.base_url == "http://127.0.0.1:9/v1");
    CHECK(o.api_key == "sk-from-env");
    CHECK(o.organization == "org-1");
    CHECK(o.project == "proj-from-file"); // an empty variable does not erase a setting
    dispatcher_options untouched;
    apply_environment(
        untouched, "OPENAI_API_KEY", [](const char*) -> const char* { return nullptr; });
    CHECK(untouched.base_url == "https://api.openai.com/v1");
    CHECK(untouched.api_key.empty());
}

TEST_CASE("limits per model are read from [limits.models.NAME]") {
    test::temp_dir dir;
    const auto path = write_config(dir, R"(
[limits]
rpm = 3500
per_model = true
[limits.models."gpt-4o"]
rpm = 500
tpm = 30000
[limits.models.o1]
tpm = 10000
burst_seconds = 2
)");
    dispatcher_options o;
    apply_config_file(path, o);
    CHECK(o.limits.rpm == 3500);
    CHECK(o.per_model_limits);
    REQUIRE(o.model_limits.size() == 2);
    CHECK(o.model_limits.at("gpt-4o").rpm == 500);
    CHECK(o.model_limits.at("gpt-4o").tpm == 30000);
    CHECK(o.model_limits.at("o1").burst == std::chrono::duration<double>(2));
    const auto e = error_of(write_config(dir, "[limits.models.x]\nrmp = 1\n"));
    CHECK_THAT(e, Catch::Contains("limits.models.x") && Catch::Contains("rmp"));
}

TEST_CASE("learn_from_headers is read from [limits] and from a model's table") {
    test::temp_dir dir;
    const auto path = write_config(dir, R"(
[limits]
learn_from_headers = false
[limits.models."gpt-4o"]
rpm = 500
[limits.models.o1]
learn_from_headers = false
)");
    dispatcher_options o;
    REQUIRE(o.limits.learn_from_headers);
    apply_config_file(path, o);
    CHECK_FALSE(o.limits.learn_from_headers);
    CHECK(o.model_limits.at("gpt-4o").learn_from_headers); // not inherited, like burst_seconds
    CHECK_FALSE(o.model_limits.at("o1").learn_from_headers);
    const auto e = error_of(write_config(dir, "[limits]\nlearn_from_headers = 1\n"));
    CHECK_THAT(e, Catch::Contains("learn_from_headers") && Catch::Contains("true or false"));
    const auto share = error_of(write_config(dir, "[limits]\nshare = 0.5\n"));
    CHECK_THAT(share, Catch::Contains("share") && Catch::Contains("unknown key"));
}

TEST_CASE("a key of [limits] reads and checks the same in a model's table") {
    test::temp_dir dir;
    const auto path = write_config(dir, R"(
[limits]
rpm = 100
tpm = 2000
burst_seconds = 3
learn_from_headers = false
[limits.models.m]
rpm = 100
tpm = 2000
burst_seconds = 3
learn_from_headers = false
)");
    dispatcher_options o;
    apply_config_file(path, o);
    const limit_options& m = o.model_limits.at("m");
    CHECK(m.rpm == o.limits.rpm);
    CHECK(m.tpm == o.limits.tpm);
    CHECK(m.burst == o.limits.burst);
    CHECK(m.learn_from_headers == o.limits.learn_from_headers);
    CHECK(m.rpm == 100);
    CHECK(m.burst == std::chrono::duration<double>(3));
    CHECK_FALSE(m.learn_from_headers);

    // The same bad value fails both ways, naming the line and the table it is in.
    const auto complaint = [](const std::string& e) {
        const auto at = e.find(": expected");
        return at == std::string::npos ? std::string() : e.substr(at);
    };
    for (const char* line : {"burst_seconds = 0",
                             "burst_seconds = 61",
                             "rpm = -1",
                             "tpm = \"many\"",
                             "learn_from_headers = 1"}) {
        const std::string bad = line;
        const std::string key = bad.substr(0, bad.find(' '));
        const auto in_limits = error_of(write_config(dir, "[limits]\n" + bad + "\n"));
        CHECK_THAT(in_limits, Catch::Contains("c.toml:2: [limits] " + key + ": expected"));
        const auto in_model =
            error_of(write_config(dir, "[limits]\n[limits.models.m]\n" + bad + "\n"));
        CHECK_THAT(in_model, Catch::Contains("c.toml:3: [limits.models.m] " + key + ": expected"));
        CHECK(complaint(in_model) == complaint(in_limits));
    }
}

TEST_CASE("a model's table refuses keys it does not have, naming them") {
    test::temp_dir dir;
    // Keys of [limits] that are not limits of a model, and a typo.
    for (const std::string& key : std::vector<std::string>{"tier", "per_model", "share", "burst"}) {
        const auto e = error_of(write_config(dir, "[limits.models.\"gpt-4o\"]\n" + key + " = 1\n"));
        CHECK_THAT(e, Catch::Contains("c.toml:2: [limits.models.gpt-4o] " + key + ": unknown key"));
    }
    auto e = error_of(write_config(dir, "[limits]\nmodels = 3\n"));
    CHECK_THAT(e, Catch::Contains("c.toml:2: [limits] models: expected tables"));
    e = error_of(write_config(dir, "[limits.models]\no1 = 3\n"));
    CHECK_THAT(e, Catch::Contains("c.toml:2: [limits.models.o1] o1: expected a table"));
}

TEST_CASE("a value of the wrong type names the file, the line, the section and the key") {
    test::temp_dir dir;
    const std::vector<std::pair<std::string, std::string>> cases{
        {"queue_limit = 1.5\n", "c.toml:1: queue_limit: expected an integer >= 1"},
        {"\nproject = 7\n", "c.toml:2: project: expected a string"},
        {"[run]\nordered = \"yes\"\n", "c.toml:2: [run] ordered: expected true or false"},
        {"[run]\n\ngrace_period_s = \"1s\"\n", "c.toml:3: [run] grace_period_s: expected a number"},
        {"[tls]\nca_file = 3\n", "c.toml:2: [tls] ca_file: expected a string"},
        {"[pool]\nidle_timeout_ms = 1.0\n",
         "c.toml:2: [pool] idle_timeout_ms: expected an integer"},
        {"[estimate]\nchars_per_token = true\n",
         "c.toml:2: [estimate] chars_per_token: expected a number"},
        {"[retry]\nbudget_window_s = [1]\n",
         "c.toml:2: [retry] budget_window_s: expected an integer"},
    };
    for (const auto& [text, message] : cases) {
        INFO(text);
        CHECK_THAT(error_of(write_config(dir, text)), Catch::Contains(message));
    }
}

TEST_CASE("a value out of range is refused") {
    test::temp_dir dir;
    const std::vector<std::pair<std::string, std::string>> cases{
        {"[run]\nthreads = 65\n", "[run] threads: expected at most 64"},
        {"[run]\nthreads = 0\n", "[run] threads: expected an integer >= 1, got 0"},
        {"[run]\nprogress_interval_s = 0\n", "[run] progress_interval_s: expected a number > 0"},
        {"[run]\nflush_interval_ms = -1\n", "[run] flush_interval_ms: expected an integer >= 0"},
        {"[pool]\nmax_body_bytes_in_flight = -1\n",
         "[pool] max_body_bytes_in_flight: expected an integer >= 0"},
        {"[retry]\nbudget_ratio = nan\n", "[retry] budget_ratio: expected a number >= 0"},
        {"[estimate]\nchars_per_token = 0\n",
         "[estimate] chars_per_token: expected a positive number"},
        // Would wrap around in the 32-bit field.
        {"[estimate]\nper_message_overhead = 4294967296\n",
         "[estimate] per_message_overhead: expected an integer <= 4294967295, got 4294967296"},
        {"[retry]\nmax_attempts = 4294967296\n",
         "[retry] max_attempts: expected an integer <= 4294967295"},
    };
    for (const auto& [text, message] : cases) {
        INFO(text);
        CHECK_THAT(error_of(write_config(dir, text)), Catch::Contains("c.toml:2: " + message));
    }
    // The largest value that fits is taken as it is.
    dispatcher_options o;
    apply_config_file(write_config(dir, "[estimate]\nper_message_overhead = 4294967295\n"), o);
    CHECK(o.estimate.per_message_overhead == 4294967295u);
}

TEST_CASE("rpm and tpm count as set only when [limits] itself names them") {
    test::temp_dir dir;
    dispatcher_options o;
    auto s = apply_config_file(write_config(dir, "[limits]\nrpm = 0\n"), o);
    CHECK(s.rpm_set);
    CHECK_FALSE(s.tpm_set);
    s = apply_config_file(write_config(dir, "[limits.models.m]\nrpm = 5\ntpm = 5\n"), o);
    CHECK_FALSE(s.rpm_set);
    CHECK_FALSE(s.tpm_set);
    CHECK(o.model_limits.at("m").tpm == 5);
}

TEST_CASE("a tiers file is read with the same checks") {
    test::temp_dir dir;
    const std::string path = dir.file("tiers.toml");
    test::write_file(path, "[tiers.x]\nrpm = 10\ntpm = 20\ndescription = \"d\"\n");
    const auto tiers = load_tiers(path);
    REQUIRE(tiers.size() == 1);
    CHECK(tiers[0].name == "x");
    CHECK(tiers[0].rpm == 10);
    CHECK(tiers[0].tpm == 20);
    CHECK(tiers[0].description == "d");
    test::write_file(path, "[tiers.x]\nrpm = 10\ncolour = \"red\"\n");
    CHECK_THROWS_WITH(load_tiers(path),
                      Catch::Contains("tiers.toml:3: [tiers.x] colour: unknown key"));
    test::write_file(path, "[tiers.x]\nrpm = -10\n");
    CHECK_THROWS_WITH(load_tiers(path), Catch::Contains("tiers.toml:2: [tiers.x] rpm: expected"));
}

TEST_CASE("a tiers file's per-model limits are read and checked, errors naming the line") {
    test::temp_dir dir;
    const std::string path = dir.file("tiers.toml");
    test::write_file(path,
                     "[tiers.mine]\n"
                     "description = \"our gateway\"\n"
                     "rpm = 100\n"
                     "[tiers.mine.models]\n"
                     "\"llama-3-70b\" = { rpm = 30, tpm = 50_000 }\n"
                     "[tiers.mine.models.\"qwen\"]\n"
                     "tpm = 7\n");
    const auto tiers = load_tiers(path);
    REQUIRE(tiers.size() == 1);
    const tier& t = tiers[0];
    CHECK(t.rpm == 100);
    REQUIRE(t.models.size() == 2);
    CHECK(t.models.at("llama-3-70b").rpm == 30);
    CHECK(t.models.at("llama-3-70b").tpm == 50'000);
    CHECK(t.models.at("qwen").rpm == 0); // left out: no limit
    CHECK(t.models.at("qwen").tpm == 7);

    test::write_file(path, "[tiers.x.models]\n\"m\" = { rpm = 1, colour = 2 }\n");
    CHECK_THROWS_WITH(load_tiers(path),
                      Catch::Contains("tiers.toml:2: [tiers.x.models.\"m\"] colour: unknown key"));
    test::write_file(path, "[tiers.x]\nrpm = 1\n[tiers.x.models]\n\"m\" = { tpm = -5 }\n");
    CHECK_THROWS_WITH(load_tiers(path),
                      Catch::Contains("tiers.toml:4: [tiers.x.models.\"m\"] tpm: expected a "
                                      "number >= 0") &&
                          !Catch::Contains("0.000000"));
    test::write_file(path, "[tiers.x]\nmodels = 3\n");
    CHECK_THROWS_WITH(load_tiers(path),
                      Catch::Contains("tiers.toml:2: [tiers.x] models: expected"));
    test::write_file(path, "[tiers.x.models]\n\"m\" = 500\n");
    CHECK_THROWS_WITH(load_tiers(path),
                      Catch::Contains("tiers.toml:2: [tiers.x.models] m: expected a table"));
}

TEST_CASE("a tiers file adds tiers and replaces a built-in one of the same name whole") {
    test::temp_dir dir;
    const std::string path = dir.file("tiers.toml");
    test::write_file(path,
                     "[tiers.tier-1]\n"
                     "description = \"as our account has it\"\n"
                     "[tiers.tier-1.models]\n"
                     "\"gpt-4o\" = { rpm = 1_000, tpm = 60_000 }\n"
                     "[tiers.mine]\n"
                     "rpm = 5\n");
    const auto builtin = builtin_tiers();
    const auto tiers = known_tiers({}, path);
    CHECK(tiers.size() == builtin.size() + 1);
    const tier& replaced = find_tier(tiers, "tier-1");
    CHECK(replaced.description == "as our account has it");
    REQUIRE(replaced.models.size() == 1); // whole: the built-in's other models are gone
    CHECK(replaced.models.at("gpt-4o").rpm == 1'000);
    CHECK(find_tier(tiers, "mine").rpm == 5);
    CHECK(find_tier(tiers, "payg").rpm == 3'500); // the others stay
    // The config's tiers file first, then --tiers over it.
    const std::string other = dir.file("other.toml");
    test::write_file(other, "[tiers.mine]\nrpm = 6\n");
    CHECK(find_tier(known_tiers(path, other), "mine").rpm == 6);
    CHECK(find_tier(known_tiers(other, path), "mine").rpm == 5);
    CHECK_THROWS_WITH(known_tiers({}, dir.file("absent.toml")), Catch::Contains("absent.toml"));
}

TEST_CASE("config keys sent as headers or in the URL refuse control characters") {
    test::temp_dir dir;
    for (const char* key : {"base_url", "organization", "project", "api_key_env"}) {
        INFO(key);
        const std::string e =
            error_of(write_config(dir, std::string(key) + " = \"x\\r\\nX-Evil: 1\"\n"));
        CHECK(e.find(key) != std::string::npos);
        CHECK(e.find("control character") != std::string::npos);
        CHECK(e.find("X-Evil") == std::string::npos);
    }
    const std::string nul = error_of(write_config(dir, "organization = \"org\\u0000x\"\n"));
    CHECK(nul.find("organization") != std::string::npos);
    const std::string model = error_of(write_config(dir, "[run]\nmodel = \"gpt\\nx\"\n"));
    CHECK(model.find("model") != std::string::npos);
    CHECK(model.find("control character") != std::string::npos);
    // A system message is a message: its line ends are its own.
    CHECK(error_of(write_config(dir, "[run]\nsystem = \"one\\ntwo\"\n")).empty());
}

TEST_CASE("a key written into a config file is refused without being echoed") {
    test::temp_dir dir;
    // The key is read from the environment only (or the variable api_key_env names).
    const std::string e = error_of(write_config(dir, "api_key = \"sk-HYGIENE-0123456789\"\n"));
    INFO(e);
    CHECK(e.find("api_key") != std::string::npos);
    CHECK(e.find("unknown key") != std::string::npos);
    CHECK(e.find("HYGIENE") == std::string::npos);
}

TEST_CASE("the deadlines come from the file, SLUICE_DEADLINE_MS outranks it, and bad values are "
          "refused") {
    test::temp_dir dir;
    const std::string path = dir.file("d.toml");
    test::write_file(path, "deadline_ms = 1500\n[run]\nmax_duration_s = 90.5\n");
    dispatcher_options o;
    const auto settings = apply_config_file(path, o);
    CHECK(o.deadline == std::chrono::milliseconds(1500));
    CHECK(settings.run.max_duration_s == 90.5);

    std::map<std::string, std::string> env{{"SLUICE_DEADLINE_MS", "250"}};
    auto getenv = [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    apply_environment(o, "OPENAI_API_KEY", getenv);
    CHECK(o.deadline == std::chrono::milliseconds(250));
    for (const char* bad : {"-1", "1.5", "soon", "1e400"}) {
        INFO(bad);
        env["SLUICE_DEADLINE_MS"] = bad;
        CHECK_THROWS_WITH(apply_environment(o, "OPENAI_API_KEY", getenv),
                          Catch::Contains("SLUICE_DEADLINE_MS: expected a whole number"));
    }
    test::write_file(path, "deadline_ms = -5\n");
    CHECK_THROWS_WITH(apply_config_file(path, o), Catch::Contains("deadline_ms"));
}

TEST_CASE("the shared budget's Redis: limits.redis, then SLUICE_REDIS_URL, then --redis") {
    test::temp_dir dir;
    const std::string path = dir.file("r.toml");
    test::write_file(path,
                     "[limits]\nredis = \"redis://file:6379\"\nbudget_key = \"team-a\"\n"
                     "redis_optional = true\n");
    dispatcher_options o;
    apply_config_file(path, o);
    CHECK(o.shared_budget.url == "redis://file:6379");
    CHECK(o.shared_budget.key == "team-a");
    CHECK(o.shared_budget.optional);
    std::map<std::string, std::string> env{{"SLUICE_REDIS_URL", "redis://:pw@env:6380/1"}};
    auto getenv = [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    apply_environment(o, "OPENAI_API_KEY", getenv);
    CHECK(o.shared_budget.url == "redis://:pw@env:6380/1");

    run_options flags;
    flags.config_file = path;
    flags.redis = "redis://flag:6381";
    flags.budget_key = "team-b";
    const dispatcher_options built = build_options(flags);
    CHECK(built.shared_budget.url == "redis://flag:6381");
    CHECK(built.shared_budget.key == "team-b");
    // A URL that does not parse is refused before anything runs, its password not shown.
    flags.redis = "redis://:hunter2-secret@host:notaport";
    try {
        build_options(flags);
        FAIL("accepted");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("hunter2-secret") == std::string::npos);
    }
}
