// Several endpoints from the config file's [[endpoints]] and from --endpoint flags
// (docs/endpoints.md, "Several endpoints and keys"): keys only from named variables, tiers for
// the limits an endpoint leaves out, the one-endpoint settings refused beside them.
#include "cli/run_options.hpp"
#include "support/run_options.hpp"
#include "support/scoped_env.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

using namespace sluice;
using namespace sluice::cli;
using test::refusal;
using test::scoped_env;
using test::with_config;

TEST_CASE("configs/endpoints.toml loads as documented, each key from its own variable") {
    scoped_env k1("OPENAI_API_KEY", "sk-one-111");
    scoped_env k2("OPENAI_API_KEY_2", "sk-two-222");
    scoped_env k3("AZURE_OPENAI_API_KEY", "az-333");
    scoped_env base("OPENAI_BASE_URL", "https://ignored.example/v1"); // endpoints name their own
    run_options o;
    o.config_file = std::string(SLUICE_SOURCE_DIR) + "/configs/endpoints.toml";
    std::string key_env;
    const dispatcher_options d = build_options(o, &key_env);
    CHECK(key_env == "OPENAI_API_KEY");
    CHECK(d.endpoint_name == "primary");
    CHECK(d.base_url == "https://api.openai.com/v1");
    CHECK(d.api_key == "sk-one-111");
    CHECK(d.limits.rpm == 3500);
    CHECK(d.limits.tpm == 90000);
    CHECK(d.models == std::vector<std::string>{"gpt-4o-mini"});
    REQUIRE(d.endpoints.size() == 2);
    const endpoint_options& second = d.endpoints[0];
    CHECK(second.name == "second-key");
    CHECK(second.api_key == "sk-two-222");
    CHECK(second.weight == 2);
    CHECK(second.limits.rpm == 3500); // tier payg
    CHECK(second.limits.tpm == 90000);
    CHECK(second.models.empty());
    const endpoint_options& azure = d.endpoints[1];
    CHECK(azure.api_key == "az-333");
    CHECK(azure.style == api_style::azure);
    CHECK(azure.api_version == "2024-10-21");
    CHECK(azure.limits.rpm == 180);
    CHECK(d.breaker.failure_threshold == 5);
    CHECK(d.breaker.cool_down == std::chrono::milliseconds(5000));
}

TEST_CASE("an endpoint's key is never taken from the file, and a missing one is named") {
    test::temp_dir dir;
    auto o = with_config(dir, R"([[endpoints]]
name = "a"
base_url = "http://127.0.0.1:1/v1"
api_key = "sk-inline"
)");
    CHECK_THAT(refusal(o), Catch::Contains("never written in a file"));
    o = with_config(dir, R"([[endpoints]]
name = "a"
base_url = "http://127.0.0.1:1/v1"
[[endpoints]]
name = "b"
base_url = "https://api.example.com/v1"
api_key_env = "SLUICE_TEST_UNSET_KEY"
)");
    const std::string why = refusal(o);
    CHECK_THAT(why, Catch::Contains("endpoint b"));
    CHECK_THAT(why, Catch::Contains("SLUICE_TEST_UNSET_KEY"));
}

TEST_CASE("beside [[endpoints]], the one endpoint's settings are refused, not dropped") {
    test::temp_dir dir;
    const std::string list = R"(
[[endpoints]]
name = "a"
base_url = "http://127.0.0.1:1/v1"
)";
    for (const std::string& extra : {std::string("base_url = \"http://x/v1\"\n"),
                                     std::string("api_key_env = \"K\"\n"),
                                     std::string("[limits]\nrpm = 5\n")}) {
        INFO(extra);
        CHECK_THAT(refusal(with_config(dir, extra + list)),
                   Catch::Contains("each endpoint gives its own"));
    }
    auto o = with_config(dir, list);
    o.rpm = 10;
    CHECK_THAT(refusal(o), Catch::Contains("--rpm"));
    o = with_config(dir,
                    list + "[[endpoints]]\nname = \"a\"\nbase_url = \"http://127.0.0.1:2/v1\"\n");
    CHECK_THAT(refusal(o), Catch::Contains("given twice"));
    o = with_config(dir, "[[endpoints]]\nbase_url = \"http://127.0.0.1:2/v1\"\n");
    CHECK_THAT(refusal(o), Catch::Contains("name"));
    o = with_config(dir, list + "weight = 0\n");
    CHECK_THAT(refusal(o), Catch::Contains("weight"));
}

TEST_CASE("an endpoint flag is NAME=URL with key=value items, replacing the file's endpoints") {
    scoped_env k("SLUICE_TEST_KEY_B", "sk-bbb");
    const endpoint_entry e = parse_endpoint_flag(
        "b=https://api.example.com/v1?x=1,api_key_env=SLUICE_TEST_KEY_B,rpm=600,tpm=0,"
        "weight=2.5,models=gpt-4o|gpt-4o-mini,tier=free");
    CHECK(e.endpoint.name == "b");
    CHECK(e.endpoint.base_url == "https://api.example.com/v1?x=1");
    CHECK(e.api_key_env == "SLUICE_TEST_KEY_B");
    CHECK(e.endpoint.limits.rpm == 600);
    CHECK(e.rpm_set);
    CHECK(e.tpm_set);
    CHECK(e.endpoint.weight == 2.5);
    CHECK(e.endpoint.models == std::vector<std::string>{"gpt-4o", "gpt-4o-mini"});
    CHECK(e.tier == "free");
    for (const char* bad : {"b",
                            "=http://x",
                            "b=http://x,rpm=-1",
                            "b=http://x,weight=0",
                            "b=http://x,colour=red",
                            "b=http://x,api_key=sk-x"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_endpoint_flag(bad), std::invalid_argument);
    }

    test::temp_dir dir;
    run_options o = with_config(dir, R"([[endpoints]]
name = "from-file"
base_url = "http://127.0.0.1:1/v1"
)");
    o.endpoints = {"a=http://127.0.0.1:5/v1,rpm=60",
                   "b=https://api.example.com/v1,api_key_env=SLUICE_TEST_KEY_B,tier=free"};
    const dispatcher_options d = build_options(o);
    CHECK(d.endpoint_name == "a");
    CHECK(d.base_url == "http://127.0.0.1:5/v1");
    CHECK(d.limits.rpm == 60);
    REQUIRE(d.endpoints.size() == 1);
    CHECK(d.endpoints[0].api_key == "sk-bbb");
    CHECK(d.endpoints[0].limits.rpm == 20); // free
    CHECK(d.endpoints[0].limits.tpm == 40000);
}
