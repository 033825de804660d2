// Values that go into the request line or a header (base URL, key, organization, project) and
// the model: a CR, LF or NUL in any of them is refused before anything is sent, and the error
// names where the value came from, never the value (it may be the key). The config file's keys
// are checked in config_file_test.cpp.
#include "cli/bench_options.hpp"
#include "cli/config_file.hpp"
#include "cli/run_options.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <stdexcept>
#include <string>

using namespace sluice;
using namespace sluice::cli;

namespace {

constexpr const char* secret = "sk-HYGIENE-0123456789";

// What apply_environment throws with `env` as the environment; empty when it does not.
std::string environment_error(const std::map<std::string, std::string>& env) {
    auto getenv = [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    dispatcher_options o;
    try {
        apply_environment(o, "OPENAI_API_KEY", getenv);
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("a key with a line end in the environment is refused naming the variable only") {
    for (const std::string& bad : {std::string(secret) + "\n",
                                   std::string(secret) + "\r\nX-Injected: 1",
                                   std::string("\r") + secret}) {
        const std::string e = environment_error({{"OPENAI_API_KEY", bad}});
        INFO(e);
        CHECK(e.find("OPENAI_API_KEY") != std::string::npos);
        CHECK(e.find("API key") != std::string::npos);
        CHECK(e.find("HYGIENE") == std::string::npos);
    }
    CHECK(environment_error({{"OPENAI_API_KEY", secret}}).empty());
}

TEST_CASE("the base URL, organization and project variables refuse CR and LF") {
    for (const char* name : {"OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"}) {
        INFO(name);
        const std::string e =
            environment_error({{name, "http://127.0.0.1:9/v1\r\nX-Evil: 1"}, {"K", secret}});
        CHECK(e.find(name) != std::string::npos);
        CHECK(e.find("X-Evil") == std::string::npos);
        CHECK(environment_error({{name, "http://127.0.0.1:9/v1\nX-Evil: 1"}}).find(name) !=
              std::string::npos);
    }
}

TEST_CASE("the flags --base-url and --model refuse CR, LF and NUL naming the flag") {
    run_options o;
    o.base_url = "http://127.0.0.1:9/v1\r\nX-Evil: 1";
    try {
        build_options(o);
        FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        CHECK(what.find("--base-url") != std::string::npos);
        CHECK(what.find("X-Evil") == std::string::npos);
    }
    o.base_url = "http://127.0.0.1:9/v1";
    const dispatcher_options engine = build_options(o);
    for (const std::string& model :
         {std::string("m\n"), std::string("m\r"), std::string("m\0x", 3)}) {
        o.model = model;
        CHECK_THROWS_WITH(make_batch_options(o, engine), Catch::Contains("--model"));
        bench_options b;
        b.base_url = "http://127.0.0.1:9/v1";
        b.model = model;
        CHECK_THROWS_WITH(make_loadgen_options(b), Catch::Contains("--model"));
    }
    o.model = "gpt-4o-mini";
    CHECK_NOTHROW(make_batch_options(o, engine));
}
