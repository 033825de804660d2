// How `sluice run` and `sluice bench` read what reaches providers as they are: custom headers
// from --header and [headers] (docs/endpoints.md).
#include "cli/run_options.hpp"
#include "support/run_options.hpp"
#include "support/scoped_env.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>

using namespace sluice;
using namespace sluice::cli;
using test::refusal;
using test::scoped_env;
using test::with_config;

namespace {

constexpr const char* header_secret = "tok-HEADER-SECRET-42";

} // namespace

TEST_CASE("a --header 'Name: value' flag is split at the first colon, the value trimmed") {
    CHECK(parse_header_flag("X-Tenant: blue") ==
          std::pair<std::string, std::string>{"X-Tenant", "blue"});
    CHECK(parse_header_flag("X-Url:  http://a:b/c \t").second == "http://a:b/c");
    CHECK(parse_header_flag("X-Empty:").second.empty());
    for (const char* bad : {"X-Tenant blue", ": blue", "X Tenant: blue", "X-Tenant\n: blue"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_header_flag(bad), std::invalid_argument);
    }
    try {
        parse_header_flag(std::string("X-Token: ") + header_secret + "\r\nX-Injected: 1");
        FAIL("accepted");
    } catch (const std::invalid_argument& e) {
        const std::string why = e.what();
        CHECK(why.find("--header X-Token") != std::string::npos);
        CHECK(why.find("HEADER-SECRET") == std::string::npos);
    }
}

TEST_CASE("[headers] in the file and --header flags add up, a flag replacing its name") {
    test::temp_dir dir;
    const scoped_env env("SLUICE_TEST_HEADER_TOKEN", header_secret);
    run_options o = with_config(dir,
                                "[headers]\n\"X-Tenant\" = \"blue\"\n"
                                "X-Token = { env = \"SLUICE_TEST_HEADER_TOKEN\" }\n");
    dispatcher_options opts = build_options(o);
    REQUIRE(opts.headers.size() == 2);
    CHECK(opts.headers[0] == std::pair<std::string, std::string>{"X-Tenant", "blue"});
    CHECK(opts.headers[1] == std::pair<std::string, std::string>{"X-Token", header_secret});

    o.headers = {"x-tenant: green", "X-Extra: 1"};
    opts = build_options(o);
    REQUIRE(opts.headers.size() == 3);
    CHECK(opts.headers[0].second == "green");
    CHECK(opts.headers[2] == std::pair<std::string, std::string>{"X-Extra", "1"});
}

TEST_CASE("[headers] refuses bad names, twice-given names, unset variables and line ends") {
    test::temp_dir dir;
    const scoped_env env("SLUICE_TEST_HEADER_BAD", std::string(header_secret) + "\nX: 1");
    for (const auto& [toml, says] : {
             std::pair<std::string, std::string>{"[headers]\n\"X Bad\" = \"v\"\n",
                                                 "not a header name"},
             {"[headers]\nX-A = \"1\"\nx-a = \"2\"\n", "given twice"},
             {"[headers]\nX-A = { env = \"SLUICE_TEST_UNSET_VARIABLE\" }\n", "is not set"},
             {"[headers]\nX-A = { env = \"SLUICE_TEST_HEADER_BAD\" }\n", "control character"},
             {"[headers]\nX-A = { file = \"x\" }\n", "expected a string or"},
             {"[headers]\nX-A = 3\n", "expected a string"},
             {"[headers]\nX-A = \"a\\r\\nX-Injected: 1\"\n", "control character"},
             {"[headers]\nContent-Type = \"text/plain\"\n", "sluice writes this header"},
         }) {
        INFO(toml);
        const std::string why = refusal(with_config(dir, toml));
        CHECK(why.find(says) != std::string::npos);
        CHECK(why.find("HEADER-SECRET") == std::string::npos);
        CHECK(why.find("Injected") == std::string::npos);
    }
}

TEST_CASE("an Authorization header is refused while a key is set, and stands for one without") {
    run_options o;
    o.api_key_env = "SLUICE_TEST_HEADER_KEY";
    o.headers = {"Authorization: Basic dXNlcjpwYXNz"};
    dispatcher_options opts = build_options(o);
    CHECK(opts.api_key.empty());
    opts.base_url = "https://gateway.example.com/v1";
    CHECK(missing_key_error(opts, "SLUICE_TEST_HEADER_KEY").empty()); // the user's own auth

    const scoped_env key("SLUICE_TEST_HEADER_KEY", "sk-test-key-0123456789");
    const std::string why = refusal(o);
    CHECK(why.find("Authorization would replace the API key") != std::string::npos);
    CHECK(why.find("dXNlcjpwYXNz") == std::string::npos);
    CHECK(why.find("sk-test-key") == std::string::npos);
}

TEST_CASE("Azure from the command line or a file: style, api-version and the key's variable") {
    const scoped_env openai_key("OPENAI_API_KEY", "sk-openai-0123456789");
    const scoped_env azure_key("AZURE_OPENAI_API_KEY", "azure-key-0123456789");
    run_options o;
    o.base_url = "https://res.openai.azure.com/openai/deployments/d";
    o.api_version = "2024-10-21";
    std::string env;
    dispatcher_options opts = build_options(o, &env);
    CHECK(opts.effective_style() == api_style::azure);
    CHECK(env == "AZURE_OPENAI_API_KEY"); // never the OpenAI key to Azure
    CHECK(opts.api_key == "azure-key-0123456789");
    o.api_key_env = "OPENAI_API_KEY"; // unless told so
    CHECK(build_options(o, &env).api_key == "sk-openai-0123456789");
    o.api_key_env.reset();

    o.api_version.reset();
    CHECK(refusal(o).find("Azure OpenAI needs an api-version") != std::string::npos);
    {
        const scoped_env version("OPENAI_API_VERSION", "2025-01-01-preview");
        CHECK(build_options(o).api_version == "2025-01-01-preview");
    }
    o.api_style = "openai";
    opts = build_options(o, &env);
    CHECK(opts.effective_style() == api_style::openai);
    CHECK(env == "OPENAI_API_KEY");

    test::temp_dir dir;
    run_options f =
        with_config(dir,
                    std::string("api_style = \"azure\"\napi_version = \"2024-10-21\"\n") +
                        "base_url = \"https://x.example/v1\"\n");
    opts = build_options(f, &env);
    CHECK(opts.style == api_style::azure);
    CHECK(env == "AZURE_OPENAI_API_KEY");
    CHECK(refusal(with_config(dir, "api_style = \"azur\"\n")).find("expected \"openai\"") !=
          std::string::npos);
    CHECK(refusal(with_config(dir, "api_version = \"a\\nb\"\n")).find("control character") !=
          std::string::npos);
}

TEST_CASE("the proxy: flags over the environment over the file, the scheme's variable") {
    test::temp_dir dir;
    run_options o = with_config(dir,
                                "proxy = \"http://file-proxy:3128\"\nno_proxy = \"a.test\"\n"
                                "[pool]\ntunnel_timeout_ms = 2500\n");
    o.base_url = "https://api.example.com/v1";
    dispatcher_options opts = build_options(o);
    CHECK(opts.proxy.url == "http://file-proxy:3128");
    CHECK(opts.proxy.no_proxy == "a.test");
    CHECK(opts.pool.tunnel_timeout == std::chrono::milliseconds(2500));
    {
        const scoped_env https("HTTPS_PROXY", "http://env-proxy:8080");
        const scoped_env none("NO_PROXY", "b.test");
        const scoped_env plain("HTTP_PROXY", "http://plain-proxy:80");
        opts = build_options(o);
        CHECK(opts.proxy.url == "http://env-proxy:8080");
        CHECK(opts.proxy.no_proxy == "b.test");
        o.base_url = "http://api.example.com/v1"; // an http server takes HTTP_PROXY
        CHECK(build_options(o).proxy.url == "http://plain-proxy:80");
        o.proxy = "http://flag-proxy:1";
        CHECK(build_options(o).proxy.url == "http://flag-proxy:1");
        o.proxy = "";
        CHECK(build_options(o).proxy.url.empty()); // --proxy '': none
        o.proxy.reset();
        o.no_proxy = true;
        CHECK(build_options(o).proxy.url.empty());
    }
    // The documented example loads as it says.
    run_options example;
    example.config_file = std::string(SLUICE_SOURCE_DIR) + "/configs/proxy.toml";
    opts = build_options(example);
    CHECK(opts.proxy.url == "http://proxy.corp.example:3128");
    CHECK(opts.proxy.no_proxy == "localhost,127.0.0.1,.corp.example");
}

TEST_CASE("a bad proxy URL is refused naming where it came from, never shown") {
    test::temp_dir dir;
    const std::string bad = "https://user:PROXY-SECRET@proxy:3128";
    run_options o;
    o.base_url = "https://api.example.com/v1";
    o.proxy = bad;
    std::string why = refusal(o);
    CHECK(why.rfind("--proxy: not an http:// proxy URL", 0) == 0);
    CHECK(why.find("PROXY-SECRET") == std::string::npos);
    o.proxy.reset();
    {
        const scoped_env env("https_proxy", bad);
        why = refusal(o);
        CHECK(why.rfind("https_proxy: not an http:// proxy URL", 0) == 0);
        CHECK(why.find("PROXY-SECRET") == std::string::npos);
    }
    why = refusal(with_config(dir, "proxy = \"" + bad + "\"\n"));
    CHECK(why.find("proxy: not an http:// proxy URL") != std::string::npos);
    CHECK(why.find("PROXY-SECRET") == std::string::npos);
}
