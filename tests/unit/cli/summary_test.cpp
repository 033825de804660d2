// The run summary's per-endpoint lines and JSON object (several endpoints only).
#include "cli/summary.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace sluice;
using namespace sluice::cli;

TEST_CASE("the summary shows each endpoint's counts and breaker state, in text and JSON") {
    stats_snapshot st;
    st.succeeded = 7;
    endpoint_stats& a = st.endpoints["primary"];
    a.sent = 10;
    a.ok = 4;
    a.errors = 5;
    a.rate_limited = 1;
    a.state = "half-open";
    a.opened = 2;
    endpoint_stats& b = st.endpoints["backup"];
    b.sent = 3;
    b.ok = 3;
    const job_counts job{};
    std::ostringstream text;
    print_summary(text, st, job, std::chrono::seconds(1));
    CHECK(text.str().find("  endpoint primary: sent 10, ok 4, errors 5, 429s 1, half-open (taken "
                          "out 2 times)\n") != std::string::npos);
    CHECK(text.str().find("  endpoint backup: sent 3, ok 3, errors 0, 429s 0, closed\n") !=
          std::string::npos);
    std::ostringstream json;
    write_summary_json(json, st, job, std::chrono::seconds(1), 0);
    CHECK(json.str().find(
              "\"endpoints\":{\"backup\":{\"sent\":3,\"ok\":3,\"errors\":0,\"rate_limited\":0,"
              "\"state\":\"closed\",\"opened\":0},\"primary\":{\"sent\":10,\"ok\":4,\"errors\":5,"
              "\"rate_limited\":1,\"state\":\"half-open\",\"opened\":2}}") != std::string::npos);

    // One endpoint: nothing more than before.
    std::ostringstream plain, plain_json;
    print_summary(plain, stats_snapshot{}, job, std::chrono::seconds(1));
    write_summary_json(plain_json, stats_snapshot{}, job, std::chrono::seconds(1), 0);
    CHECK(plain.str().find("endpoint") == std::string::npos);
    CHECK(plain_json.str().find("endpoints") == std::string::npos);
}
