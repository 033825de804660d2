#include <sluice/loadgen/load_generator.hpp>

#include <algorithm>
#include <stdexcept>

namespace sluice {

dispatcher_options bench_engine_options() {
    dispatcher_options o;
    o.retry.max_attempts = 1;
    o.retry.max_retry_after = std::chrono::milliseconds(0);
    o.limits.rpm = 0;
    o.limits.tpm = 0;
    o.limits.learn_from_headers = false;
    o.pool.max_connections = 256;
    o.pool.reuse_quiet_period = std::chrono::milliseconds(0);
    o.fields = completion_fields::usage;
    o.streamed_body = false;
    return o;
}

void loadgen_options::validate() const {
    engine.validate();
    if (engine.clock)
        throw std::invalid_argument(
            "engine.clock: a benchmark needs the steady clock (leave the clock null)");
    // The generator caps requests in flight at the connections when no concurrency is set,
    // so a schedule without a rate or count limit is still a closed loop.
    arrivals_options shape = load;
    if (shape.concurrency == 0)
        shape.concurrency = std::max<std::size_t>(1, engine.pool.max_connections);
    shape.validate();
    prompts.validate();
    slo.validate();
    if (warmup.count() < 0)
        throw std::invalid_argument("bench.warmup: must not be negative");
    if (timeline_width.count() <= 0)
        throw std::invalid_argument("bench.timeline_width: must be positive");
    if (timeline_slices < 2)
        throw std::invalid_argument("bench.timeline_slices: must be at least 2");
    if (progress_interval.count() <= 0)
        throw std::invalid_argument("bench.progress_interval: must be positive");
    if (busy_wait.count() < 0)
        throw std::invalid_argument("bench.busy_wait: must not be negative");
}

} // namespace sluice
