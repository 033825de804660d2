#include <sluice/engine_clock.hpp>
#include <sluice/loadgen/load_generator.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

loadgen_options valid() {
    loadgen_options o;
    o.engine.base_url = "http://127.0.0.1:8000/v1";
    o.prompts.model = "m";
    return o;
}

std::string refusal(const loadgen_options& o) {
    try {
        o.validate();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "valid";
}

} // namespace

TEST_CASE("a benchmark measures the server: no limits, no retries, no hold on a 429") {
    const dispatcher_options e = bench_engine_options();
    CHECK(e.retry.max_attempts == 1);
    CHECK(e.retry.max_retry_after == 0ms);
    CHECK(e.limits.rpm == 0);
    CHECK(e.limits.tpm == 0);
    CHECK_FALSE(e.limits.learn_from_headers);
    CHECK(e.pool.reuse_quiet_period == 0ms);
    CHECK(e.pool.max_connections == 256);
    CHECK(e.fields == completion_fields::usage);
    CHECK_FALSE(e.streamed_body); // the figures need usage and timings, not the text
    const loadgen_options o;
    CHECK(o.engine.retry.max_attempts == 1);
    CHECK(o.load.max_requests == 1000); // vLLM's defaults: 1000 prompts, unpaced
    CHECK(o.load.rate == 0);
    CHECK(o.prompts.stream);
    CHECK(o.prompts.input_tokens.min == 1024);
    CHECK(o.prompts.output_tokens.min == 128);
    CHECK_FALSE(o.slo.any());
    CHECK(o.busy_wait == 20us); // as documented: gaps under 20 us are polled, not slept
}

TEST_CASE("loadgen options validate, naming the field") {
    CHECK(refusal(valid()) == "valid");

    auto o = valid();
    o.load.max_requests = 0; // no count, no rate: still a closed loop at the connections
    CHECK(refusal(o) == "valid");

    o = valid();
    o.load.rate = -1;
    CHECK_THAT(refusal(o), Catch::Contains("bench.rate"));

    o = valid();
    o.load.burstiness = 0;
    CHECK_THAT(refusal(o), Catch::Contains("bench.burstiness"));

    o = valid();
    o.warmup = -1ms;
    CHECK_THAT(refusal(o), Catch::Contains("bench.warmup"));

    o = valid();
    o.progress_interval = 0ms;
    CHECK_THAT(refusal(o), Catch::Contains("bench.progress_interval"));

    o = valid();
    o.busy_wait = -1us;
    CHECK_THAT(refusal(o), Catch::Contains("bench.busy_wait"));

    o = valid();
    o.busy_wait = 0us; // always a timer
    CHECK(refusal(o) == "valid");

    o = valid();
    o.timeline_width = 0ms;
    CHECK_THAT(refusal(o), Catch::Contains("bench.timeline_width"));

    o = valid();
    o.timeline_slices = 1;
    CHECK_THAT(refusal(o), Catch::Contains("bench.timeline_slices"));

    o = valid();
    o.prompts.model.clear();
    CHECK_THAT(refusal(o), Catch::Contains("prompts.model"));

    o = valid();
    o.prompts.output_tokens = {10, 5};
    CHECK_THAT(refusal(o), Catch::Contains("prompts.output_tokens"));

    o = valid();
    o.slo.tpot = slo_options::milliseconds(-2);
    CHECK_THAT(refusal(o), Catch::Contains("slo.tpot"));

    o = valid();
    o.engine.base_url = "ftp://x";
    CHECK_THAT(refusal(o), Catch::Contains("base_url"));

    o = valid();
    o.engine.retry.max_attempts = 0;
    CHECK_THAT(refusal(o), Catch::Contains("retry.max_attempts"));

    o = valid();
    o.engine.clock = std::make_shared<manual_clock>();
    CHECK_THAT(refusal(o), Catch::Contains("engine.clock"));
}
