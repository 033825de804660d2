// `sluice tiers`: what it lists of the built-in tiers and of a tiers file, and its refusals.
#include "cli/tiers_command.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

using namespace sluice;
using namespace sluice::cli;

TEST_CASE("sluice tiers lists names, descriptions and limits per model") {
    std::vector<tier> tiers(2);
    tiers[0].name = "payg";
    tiers[0].description = "pay-as-you-go";
    tiers[0].rpm = 3500;
    tiers[0].tpm = 90000;
    tiers[1].name = "tier-1";
    tiers[1].description = "usage tier 1";
    tiers[1].models["gpt-4o"] = {500, 30000};
    tiers[1].models["gpt-4o-mini"] = {500, 2000000.5};
    tiers[1].models["only-tokens"] = {0, 10};
    std::ostringstream out;
    print_tiers(out, tiers);
    CHECK(out.str() == "payg    pay-as-you-go: 3,500 RPM, 90,000 TPM\n"
                       "tier-1  usage tier 1: per model (others: the server's limits)\n"
                       "    gpt-4o       500 RPM, 30,000 TPM\n"
                       "    gpt-4o-mini  500 RPM, 2,000,000.5 TPM\n"
                       "    only-tokens  no request limit, 10 TPM\n");
}

TEST_CASE("sluice tiers shows the built-in tiers and those of --tiers and --config") {
    std::ostringstream out;
    std::ostringstream err;
    REQUIRE(list_tiers({}, out, err) == 0);
    const std::string builtin = out.str();
    CHECK(builtin.find("free            free trial: 20 RPM, 40,000 TPM\n") != std::string::npos);
    CHECK(builtin.find("tier-5") != std::string::npos);
    CHECK(builtin.find("    gpt-4o-mini    30,000 RPM, 150,000,000 TPM\n") != std::string::npos);

    test::temp_dir dir;
    const std::string file = dir.file("t.toml");
    test::write_file(file, "[tiers.gateway]\ndescription = \"ours\"\nrpm = 120\n");
    tiers_command_options o;
    o.tiers_file = file;
    out.str("");
    REQUIRE(list_tiers(o, out, err) == 0);
    CHECK(out.str().find("gateway         ours: 120 RPM, no token limit\n") != std::string::npos);

    const std::string config = dir.file("c.toml");
    test::write_file(config, "[limits]\ntiers_file = \"" + file + "\"\n");
    tiers_command_options c;
    c.config_file = config;
    out.str("");
    REQUIRE(list_tiers(c, out, err) == 0);
    CHECK(out.str().find("gateway ") != std::string::npos);

    test::write_file(file, "[tiers.gateway]\nrpm = -1\n");
    out.str("");
    CHECK(list_tiers(o, out, err) == 2);
    CHECK(err.str().find("t.toml:2: [tiers.gateway] rpm") != std::string::npos);
    CHECK(out.str().empty());
}

TEST_CASE("the tiers file of docs/endpoints.md loads as the text says") {
    // The example a user copies: it must load, add `gateway` and replace tier-2 whole.
    std::ifstream doc(std::string(SLUICE_SOURCE_DIR) + "/docs/endpoints.md");
    const std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
    const std::string open = "```toml\n# my-tiers.toml\n";
    const auto start = text.find(open);
    REQUIRE(start != std::string::npos);
    const auto end = text.find("```", start + open.size());
    REQUIRE(end != std::string::npos);
    test::temp_dir dir;
    const std::string file = dir.file("my-tiers.toml");
    test::write_file(file, text.substr(start + 8, end - start - 8)); // from "# my-tiers.toml"
    const auto tiers = known_tiers({}, file);
    const tier& gateway = find_tier(tiers, "gateway");
    CHECK(gateway.rpm == 600);
    CHECK(gateway.models.at("llama-3.1-70b").tpm == 200'000);
    CHECK(gateway.models.at("qwen2.5-72b").rpm == 60);
    CHECK(gateway.models.at("qwen2.5-72b").tpm == 0);
    const tier& two = find_tier(tiers, "tier-2");
    CHECK(two.models.size() == 1);
    CHECK(two.models.at("gpt-4o-mini").tpm == 4'000'000);
}
