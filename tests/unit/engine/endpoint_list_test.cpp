// dispatcher_options with several endpoints: each checked as its own options are, naming it;
// endpoint_view gives each endpoint's options over the shared ones.
#include <sluice/dispatcher.hpp>

#include <catch2/catch.hpp>

using namespace sluice;

TEST_CASE("several endpoints' options are checked, naming the endpoint") {
    dispatcher_options o;
    o.base_url = "http://127.0.0.1:1/v1";
    endpoint_options e;
    e.name = "b";
    e.base_url = "ftp://x";
    o.endpoints.push_back(e);
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("endpoints[b]: base_url"));
    o.endpoints[0].base_url = "http://127.0.0.1:2/v1";
    o.endpoints[0].name = "default";
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("given twice"));
    o.endpoints[0].name = "b";
    o.endpoints[0].weight = 0;
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("endpoints[b].weight"));
    o.endpoints[0].weight = 2;
    o.endpoints[0].api_key = "sk-x\r\nX-Evil: 1";
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("endpoints[b]: api_key"));
    o.endpoints[0].api_key = "sk-x";
    CHECK_NOTHROW(o.validate());
}

TEST_CASE("endpoint_view puts an endpoint's own settings over the shared options") {
    dispatcher_options o;
    o.base_url = "https://api.openai.com/v1";
    o.api_key = "sk-default";
    o.model_limits["gpt-4o"].rpm = 10;
    o.per_model_limits = true;
    o.pool.max_connections = 7;
    endpoint_options e;
    e.name = "azure";
    e.base_url = "https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21";
    e.api_key = "azure-key";
    e.limits.rpm = 600;
    e.models = {"gpt-4o"};
    e.weight = 3;
    e.headers = {{"X-Tenant", "t"}};
    o.endpoints.push_back(e);
    REQUIRE_NOTHROW(o.validate());
    const dispatcher_options d = o.endpoint_view(0);
    CHECK(d.base_url == o.base_url);
    CHECK(d.endpoints.empty());
    CHECK(d.model_limits.size() == 1);
    const dispatcher_options v = o.endpoint_view(1);
    CHECK(v.endpoint_name == "azure");
    CHECK(v.base_url == e.base_url);
    CHECK(v.api_key == "azure-key");
    CHECK(v.effective_style() == api_style::azure);
    CHECK(v.limits.rpm == 600);
    CHECK(v.models == e.models);
    CHECK(v.weight == 3);
    CHECK(v.headers.size() == 1);
    CHECK(v.model_limits.empty()); // the default endpoint's alone
    CHECK_FALSE(v.per_model_limits);
    CHECK(v.pool.max_connections == 7); // shared
    CHECK(v.endpoints.empty());
}
