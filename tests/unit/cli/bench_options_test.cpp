// `sluice bench`'s engine: the options the command line builds keep what bench_engine_options
// sets for a benchmark where no flag says otherwise.
#include "cli/bench_options.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::cli;

TEST_CASE("sluice bench's engine keeps only what a benchmark reads of each answer") {
    bench_options b;
    b.base_url = "http://127.0.0.1:9/v1";
    b.model = "m";
    const loadgen_options lo = make_loadgen_options(b);
    // Usage alone from each answer, and a streamed answer's text not written out.
    CHECK(lo.engine.fields == completion_fields::usage);
    CHECK_FALSE(lo.engine.streamed_body);
}

TEST_CASE("the flag --busy-wait-us sets loadgen_options::busy_wait (by default 20 us)") {
    bench_options b;
    b.base_url = "http://127.0.0.1:9/v1";
    b.model = "m";
    CHECK(make_loadgen_options(b).busy_wait == std::chrono::microseconds(20));
    b.busy_wait_us = 0; // always a timer
    CHECK(make_loadgen_options(b).busy_wait == std::chrono::microseconds(0));
    b.busy_wait_us = 150;
    CHECK(make_loadgen_options(b).busy_wait == std::chrono::microseconds(150));
}
