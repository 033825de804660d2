// The logger hook: the library's messages reach the embedder's sink, filtered by level.
#include <sluice/logger.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace sluice;

TEST_CASE("a logger passes lines at or above its level and drops the rest") {
    std::vector<std::string> lines;
    logger log;
    log.min_level = log_level::warning;
    log.sink = [&](log_level level, std::string_view m) {
        lines.push_back(std::string(to_string(level)) + ": " + std::string(m));
    };
    log.log(log_level::info, "learned");
    log.log(log_level::warning, "slow");
    log.log(log_level::error, "stopped");
    CHECK(lines == std::vector<std::string>{"warning: slow", "error: stopped"});
    CHECK_FALSE(log.enabled(log_level::debug));
    CHECK(log.enabled(log_level::error));
}

TEST_CASE("a logger without a sink drops everything") {
    logger log;
    log.min_level = log_level::debug;
    CHECK_FALSE(log.enabled(log_level::error));
    log.log(log_level::error, "nobody hears this"); // must not throw or crash
}
