// The options an embedder gives the engine are checked before anything is connected: values
// that go into request headers must not hold a line end (it would inject headers of its own),
// and the error names the field, never the value (it may be the key).
#include <sluice/dispatcher.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

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
