// The options an embedder gives the engine are checked before anything is connected: values
// that go into request headers must not hold a line end (it would inject headers of its own),
// and the error names the field, never the value (it may be the key).
#include <sluice/dispatcher.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace sluice;

namespace {

constexpr const char* secret = "sk-OPTIONS-0123456789";

// What validate() says of `o`; empty when it accepts it.
std::string refusal(const dispatcher_options& o) {
    try {
        o.validate();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("a key, organization or project with CR, LF or NUL is refused naming the field") {
    for (const std::string& tail :
         {std::string("\r\nX-Injected: 1"), std::string("\n"), std::string(1, '\0') + "rest"}) {
        dispatcher_options key, org, project;
        key.api_key = secret + tail;
        org.organization = secret + tail;
        project.project = secret + tail;
        for (const auto& [o, field] :
             {std::pair<const dispatcher_options&, const char*>{key, "api_key"},
              {org, "organization"},
              {project, "project"}}) {
            const std::string why = refusal(o);
            INFO(field << ": " << why);
            CHECK(why.rfind(std::string(field) + ":", 0) == 0);
            CHECK(why.find("sk-OPTIONS") == std::string::npos);
        }
    }
    dispatcher_options fine;
    fine.api_key = secret;
    fine.organization = "org-1";
    fine.project = "proj_1";
    CHECK(refusal(fine).empty());
}

TEST_CASE("a base URL with a line end is refused without printing it") {
    dispatcher_options o;
    o.base_url = "https://api.example.test/v1\r\nX-Injected: 1";
    const std::string why = refusal(o);
    CHECK(why.rfind("base_url:", 0) == 0);
    CHECK(why.find('\n') == std::string::npos);
    CHECK(why.find("X-Injected") == std::string::npos);
    o.base_url = "ftp://example.test";
    CHECK(refusal(o).find("ftp://example.test") != std::string::npos); // said as given
}

TEST_CASE("custom headers: tokens, once each, clean values, none that sluice sends itself") {
    auto with = [](std::vector<std::pair<std::string, std::string>> headers) {
        dispatcher_options o;
        o.headers = std::move(headers);
        return o;
    };
    CHECK(refusal(with({{"X-Tenant", "blue"}, {"User-Agent", "mine"}})).empty());

    std::string why = refusal(with({{"X-Token", std::string(secret) + "\n"}}));
    CHECK(why.rfind("headers: X-Token", 0) == 0);
    CHECK(why.find("sk-OPTIONS") == std::string::npos);
    CHECK(refusal(with({{"X-Tenant", "a"}, {"x-tenant", "b"}})).find("given twice") !=
          std::string::npos);
    CHECK(refusal(with({{"Bad Name", "a"}})).find("not a header name") != std::string::npos);
    CHECK(refusal(with({{"Content-Length", "5"}})).find("sluice writes this header") !=
          std::string::npos);

    // Authorization is the user's own scheme only when no key would send Bearer.
    dispatcher_options own = with({{"Authorization", "Basic dXNlcjpwYXNz"}});
    CHECK(refusal(own).empty());
    own.api_key = secret;
    why = refusal(own);
    CHECK(why.find("Authorization would replace the API key") != std::string::npos);
    CHECK(why.find("sk-OPTIONS") == std::string::npos);
    CHECK(why.find("dXNlcjpwYXNz") == std::string::npos);

    dispatcher_options org = with({{"OpenAI-Organization", "org-2"}});
    CHECK(refusal(org).empty());
    org.organization = "org-1";
    CHECK(refusal(org).find("OpenAI-Organization") != std::string::npos);
    dispatcher_options project = with({{"openai-project", "p-2"}});
    CHECK(refusal(project).empty());
    project.project = "p-1";
    CHECK(refusal(project).find("OpenAI-Project") != std::string::npos);
}

TEST_CASE("Azure: told by its deployment URL, refused without an api-version, api-key guarded") {
    dispatcher_options o;
    o.base_url = "https://res.openai.azure.com/openai/deployments/gpt-4o-mini";
    CHECK(o.effective_style() == api_style::azure);
    CHECK(refusal(o).rfind("api_version: Azure OpenAI needs an api-version", 0) == 0);
    o.base_url += "?api-version=2024-10-21";
    CHECK(refusal(o).empty());
    o.base_url = "https://res.openai.azure.com/openai/deployments/gpt-4o-mini";
    o.api_version = "2024-10-21";
    CHECK(refusal(o).empty());
    o.api_version = "2024-10-21&evil=1";
    CHECK(refusal(o).rfind("api_version:", 0) == 0);
    o.api_version = "2024-10-21";

    // The key goes in api-key: a custom api-key is refused while one is set; Authorization
    // is not sluice's header for Azure.
    o.headers = {{"api-key", "other"}};
    CHECK(refusal(o).empty());
    o.api_key = secret;
    CHECK(refusal(o).find("api-key would replace") != std::string::npos);
    o.headers = {{"Authorization", "Bearer entra-token"}};
    CHECK(refusal(o).empty());

    // Told otherwise, the style is what it is told.
    o.style = api_style::openai;
    CHECK(o.effective_style() == api_style::openai);
    CHECK(refusal(o).find("Authorization would replace") != std::string::npos);
    dispatcher_options plain;
    plain.style = api_style::azure;
    CHECK(refusal(plain).rfind("api_version:", 0) == 0);
    CHECK(dispatcher_options{}.effective_style() == api_style::openai);
}
