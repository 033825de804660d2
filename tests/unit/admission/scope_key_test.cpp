// Which scope admits a request: the one rule the dispatcher and the batch plan share.
#include <sluice/admission/scope.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>

using namespace sluice;

namespace {

limit_options rpm(double value) {
    limit_options l;
    l.rpm = value;
    return l;
}

} // namespace

TEST_CASE("scope_key sends a model with limits of its own to its own scope, the rest to the "
          "endpoint's") {
    const std::map<std::string, limit_options> own{{"gpt-4o", rpm(6)}};
    const std::string gpt4o = "gpt-4o";
    const std::string mini = "gpt-4o-mini";
    const std::string none;
    CHECK(scope_key(gpt4o, own, false) == "gpt-4o");
    CHECK(&scope_key(gpt4o, own, false) == &gpt4o); // the model itself: nothing allocated
    CHECK(scope_key(mini, own, false).empty());
    CHECK(scope_key(none, own, false).empty());
    CHECK(scope_key(mini, {}, false).empty());
    // A name is matched whole: a dated snapshot is another model with no limits of its own.
    CHECK(scope_key("gpt-4o-2024-08-06", own, false).empty());
}

TEST_CASE("scope_key with per_model_limits gives every named model its own scope") {
    const std::map<std::string, limit_options> own{{"gpt-4o", rpm(6)}};
    CHECK(scope_key("gpt-4o-mini", own, true) == "gpt-4o-mini");
    CHECK(scope_key("gpt-4o", own, true) == "gpt-4o");
    CHECK(scope_key("gpt-4o-mini", {}, true) == "gpt-4o-mini");
    // A request naming no model still has only the endpoint to be limited by.
    CHECK(scope_key("", own, true).empty());
}

TEST_CASE("scope_limits gives a model's own limits, else the endpoint's") {
    const std::map<std::string, limit_options> own{{"gpt-4o", rpm(6)}};
    const limit_options endpoint = rpm(600);
    CHECK(scope_limits("gpt-4o", endpoint, own).rpm == 6);
    CHECK(&scope_limits("", endpoint, own) == &endpoint);
    // A model's own scope under per_model_limits starts from the endpoint's limits.
    CHECK(&scope_limits("gpt-4o-mini", endpoint, own) == &endpoint);
    // Both together, as the dispatcher and the plan use them.
    const std::string model = "gpt-4o";
    CHECK(scope_limits(scope_key(model, own, false), endpoint, own).rpm == 6);
    CHECK(scope_limits(scope_key("other", own, false), endpoint, own).rpm == 600);
}
