#pragma once

#include <sluice/dispatcher.hpp>
#include <sluice/harness/arrivals.hpp>
#include <sluice/harness/slo.hpp>
#include <sluice/loadgen/bench_results.hpp>
#include <sluice/loadgen/prompt_source.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

namespace sluice {

/// The engine options a benchmark starts from: the dispatcher's defaults, except what would
/// measure the client's politeness instead of the server:
/// - `retry.max_attempts` 1 (no retries) and `retry.max_retry_after` 0 (a 429 does not hold
///   admission): a failure is counted, not hidden;
/// - `limits`: no RPM/TPM limit, and none learned from the server's headers;
/// - `pool.max_connections` 256 (the cap on requests in flight when no concurrency is set);
/// - `pool.reuse_quiet_period` 0 (answers on reused connections trusted at once: the server
///   under test is yours);
/// - `fields` `completion_fields::usage`: the figures need the usage and the timings, not the
///   text (the answer is still checked whole; a streamed one's text is not copied out again).
/// Turn limits or retries on by setting those fields again.
dispatcher_options bench_engine_options();

/// Everything a benchmark run needs. Defaults: vLLM `bench serve`'s (1000 requests, no
/// pacing), streamed synthetic prompts of 1024 tokens asking for 128, no warm-up, no goodput.
struct loadgen_options {
    /// Endpoint, key, TLS, pool, limits and retries; see `bench_engine_options`. Its `clock`
    /// must be null (the steady clock): the figures compare the engine's times with the
    /// transport's. `pool.max_connections` is raised to `load.concurrency` when below it.
    dispatcher_options engine = bench_engine_options();
    /// The load shape: `rate` (requests/s; 0 = no pacing), `concurrency` (most in flight; 0 =
    /// `engine.pool.max_connections`), `process` and `burstiness` of the gaps, `seed` (also
    /// of the prompts), `max_requests` (0 = no count limit) and `max_duration` (0 = no time
    /// limit), counted after the warm-up. See `arrivals_options`.
    arrivals_options load;
    /// Where prompts come from, and whether answers are streamed.
    prompt_options prompts;
    /// At the start, requests are sent on the same schedule for this long but not recorded
    /// (connections opened, caches warmed); 0 (default): no warm-up.
    std::chrono::milliseconds warmup{0};
    /// Objectives of goodput; none set (default): goodput not measured.
    slo_options slo;
    /// Width of the timeline's slices at the start (the report's course of the run over time);
    /// it doubles whenever the run would need more than `timeline_slices` of them, so a short
    /// run is seen in detail and a long one in at most that many points. Default 100 ms.
    std::chrono::milliseconds timeline_width{100};
    /// Most slices of the timeline; at least 2. Default 100.
    std::size_t timeline_slices = 100;
    /// Period of the progress callback. Default 1 s; must be positive.
    std::chrono::milliseconds progress_interval{1000};
    /// A request due sooner than this is waited for by polling the event loop (answers are
    /// still read meanwhile), not with a timer: a timer's wake-up costs the kernel several
    /// system calls, and in a virtual machine more CPU than a whole request, so at high rates
    /// it would decide the highest rate held. Polling keeps the CPU busy for gaps this short
    /// only. Default 20 us; 0: always a timer; must not be negative.
    std::chrono::microseconds busy_wait{20};

    /// Throws std::invalid_argument naming the field when a value is out of range.
    void validate() const;
};

/// A snapshot of a run under way, for a progress display.
struct loadgen_progress {
    /// Since the run started, the warm-up included.
    std::chrono::steady_clock::duration elapsed{};
    /// Still in the warm-up.
    bool warming_up = false;
    /// Requests handed to the engine, the warm-up's included.
    std::uint64_t sent = 0;
    /// Results recorded (after the warm-up): successes and failures.
    std::uint64_t completed = 0;
    std::uint64_t failed = 0;
    /// Requests handed to the engine and not yet back.
    std::uint64_t in_flight = 0;
    /// Requests the run will record, when it has a count limit.
    std::optional<std::uint64_t> total;
    /// Prompt and completion tokens of the successes recorded.
    std::uint64_t tokens = 0;
    /// Medians of TTFT and E2EL and the 99th percentile of send lag so far (0 when none).
    std::chrono::nanoseconds ttft_p50{0};
    std::chrono::nanoseconds e2el_p50{0};
    std::chrono::nanoseconds send_lag_p99{0};
};

/// The load generator of `sluice bench`: sends prompts to a server through a dispatcher of
/// its own, on the schedule of `harness::arrivals` (a closed loop of `concurrency` requests,
/// or an open loop at `rate` with constant, Poisson or gamma gaps, capped at `concurrency`),
/// and records every result into `bench_results`. A request waits in the generator, never in
/// the engine: at most `concurrency` (else `engine.pool.max_connections`) are handed over at
/// once, so the time one waits for its turn shows as send lag (`submitted - scheduled`) and
/// a slow server cannot hide its queueing behind the schedule.
///
/// A run ends when the schedule is over and every request is back; `stop()` ends it early. A
/// fatal error of the server (the key refused, the quota exhausted) stops it too: the engine
/// stops admitting, and the requests it had not sent are counted as cancelled, not failed.
///
/// Thread safety: construct, `async_run`, `stop` and the accessors on the executor's thread;
/// the executor must not run handlers concurrently (a single-threaded io_context, or a
/// strand). Object lifetimes: the generator must outlive the run (until the `async_run`
/// handler has been called).
class load_generator {
public:
    /// Reads or builds the prompts and makes the engine. Throws std::invalid_argument for
    /// options, std::system_error or std::runtime_error for the prompt file, and
    /// boost::system::system_error when the engine's TLS context cannot be set up.
    load_generator(boost::asio::any_io_executor ex, loadgen_options opts);
    ~load_generator();
    load_generator(const load_generator&) = delete;
    load_generator& operator=(const load_generator&) = delete;

    /// Called on the executor every `progress_interval` while the run goes on. Set it before
    /// `async_run`.
    void on_progress(std::function<void(const loadgen_progress&)> callback);

    /// Runs the benchmark once; completes when it is over and the engine has closed its
    /// connections. Handler signature: `void(error_code ec)`: empty when the schedule ran to
    /// its end, `asio::error::operation_aborted` after `stop()`, or the fatal error that
    /// stopped it (`errc::unauthorized`, `errc::quota_exhausted`, ...). The figures are in
    /// `results()` either way. Works with callbacks, `use_future` and `use_awaitable`.
    template <class CompletionToken>
    auto async_run(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code)>(
            [this](auto handler) { async_run_erased(std::move(handler)); }, token);
    }

    /// Stops sending: requests on the wire finish and are recorded (or, `at_once`, are
    /// cancelled and counted as such), then the run completes. Idempotent.
    void stop(bool at_once = false);

    /// The figures so far (all of them once the run has completed).
    const bench_results& results() const noexcept;
    /// A snapshot of the run, as the progress callback gets it.
    loadgen_progress progress() const;
    /// The prompts the run draws from.
    const prompt_source& prompts() const noexcept;
    /// The options, with `engine.pool.max_connections` as the run uses it.
    const loadgen_options& options() const noexcept;

private:
    void async_run_erased(boost::asio::any_completion_handler<void(error_code)> handler);

    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace sluice
