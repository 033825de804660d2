#include <sluice/loadgen/load_generator.hpp>

#include "detail/complete.hpp"
#include "loadgen/pacing.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>

namespace sluice {

namespace asio = boost::asio;

namespace {

using clock = std::chrono::steady_clock;

loadgen_options prepared(loadgen_options o) {
    o.validate();
    o.engine.pool.max_connections = std::max(o.engine.pool.max_connections, o.load.concurrency);
    return o;
}

} // namespace

// The driver: the schedule says when each request is due, the cap says whether it may go;
// a request waits here (timer, poll or cap) and never inside the engine. Everything runs on
// `ex`.
struct load_generator::impl {
    impl(asio::any_io_executor executor, loadgen_options o)
        : ex(std::move(executor))
        , loop_ex(detail::concrete_loop_executor(ex))
        , opts(prepared(std::move(o)))
        , cap(opts.load.concurrency ? opts.load.concurrency : opts.engine.pool.max_connections)
        , prompts(opts.prompts, opts.load.max_requests, opts.load.seed)
        , results(opts.slo, {}, opts.timeline_width, opts.timeline_slices)
        , engine(ex, opts.engine)
        , timer(ex)
        , progress_timer(ex) {
        prompts.prepare(opts.engine.estimate);
    }

    void run(asio::any_completion_handler<void(error_code)> h);
    void begin();
    void pump();
    bool next_due(clock::time_point now);
    void wait_until(clock::time_point due, clock::time_point now);
    void poll();
    void wait_over(bool go_on);
    void submit(clock::time_point due, clock::time_point now);
    void on_result(const sent_request& s, bool warm, const result& r);
    void halt(error_code why, bool at_once);
    void arm_progress();
    void maybe_finish();
    void try_complete();
    void complete(asio::any_completion_handler<void(error_code)> h, error_code ec);
    loadgen_progress snapshot() const;

    asio::any_io_executor ex;
    std::optional<asio::io_context::executor_type> loop_ex; // for posts without a wrapper
    loadgen_options opts;
    std::size_t cap;
    prompt_source prompts;
    bench_results results;
    dispatcher engine;
    asio::steady_timer timer;
    asio::steady_timer progress_timer;
    std::function<void(const loadgen_progress&)> progress_cb;
    // Not assigned: in Asio 1.26 any_completion_handler's move assignment wraps the handler
    // in itself without end. Emplaced and moved out instead.
    std::optional<asio::any_completion_handler<void(error_code)>> handler;

    std::optional<arrivals> schedule;
    std::optional<clock::time_point> due; // taken from the schedule, not yet sent
    clock::time_point started{};
    clock::time_point ended{};
    bool warming = false;
    bool schedule_over = false;
    bool running = false;
    bool stopping = false;
    bool finishing = false;
    bool engine_stopped = false;
    int timers_pending = 0; // waits armed on `timer` and `progress_timer`, and a poll posted
    bool timer_armed = false;
    bool poll_posted = false;
    std::size_t in_flight = 0;
    std::uint64_t sent = 0;
    error_code end_reason;
};

void load_generator::impl::run(asio::any_completion_handler<void(error_code)> h) {
    if (running || finishing) {
        complete(std::move(h), asio::error::already_started);
        return;
    }
    running = true;
    handler.emplace(std::move(h));
    begin();
}

// Starts the schedule: the warm-up's, paced like the run and not recorded, then the run's.
void load_generator::impl::begin() {
    started = clock::now();
    arrivals_options shape = opts.load;
    shape.concurrency = cap;
    if (opts.warmup.count() > 0) {
        arrivals_options warm = shape;
        warm.max_requests = 0;
        warm.max_duration = opts.warmup;
        warm.ramp_duration = {};
        schedule.emplace(warm, started);
        warming = true;
    } else {
        schedule.emplace(shape, started);
    }
    results.restart_timeline(started + opts.warmup);
    arm_progress();
    pump();
}

// Takes the next due time from the schedule into `due`; false once the schedule is over.
bool load_generator::impl::next_due(clock::time_point now) {
    while (!due) {
        due = schedule->next_arrival(now);
        if (due)
            break;
        if (!warming) {
            schedule_over = true;
            return false;
        }
        warming = false;
        arrivals_options shape = opts.load;
        shape.concurrency = cap;
        schedule.emplace(shape, started + opts.warmup);
    }
    return true;
}

// Sends every request that is due and has a free slot; then waits for the next due time
// (the timer, or a poll when it is near) or a free slot (the next result calls this again).
void load_generator::impl::pump() {
    while (!stopping) {
        // The cap first: an unpaced schedule's request is due when it is asked for, so asking
        // before a slot is free would count the wait for the slot as send lag.
        if (in_flight >= cap)
            return;
        const auto now = clock::now();
        if (!next_due(now))
            break;
        if (*due > now) {
            wait_until(*due, now);
            return;
        }
        submit(*due, now);
        due.reset();
    }
    maybe_finish();
}

void load_generator::impl::wait_until(clock::time_point at, clock::time_point now) {
    if (timer_armed || poll_posted)
        return; // armed for this same due time: `due` only changes once it is sent
    if (detail::pace(at, now, opts.busy_wait) == detail::pacing::poll) {
        poll();
        return;
    }
    timer_armed = true;
    ++timers_pending;
    timer.expires_at(at);
    timer.async_wait([this](error_code ec) {
        timer_armed = false;
        wait_over(!ec); // cancelled: stopping or finishing
    });
}

// Looks at the schedule again once the handlers already queued have run, and the loop has
// polled for I/O (Asio runs epoll_wait without a timeout between handlers when more are
// queued): a short wait without a timer's wake-up; see detail::pace.
void load_generator::impl::poll() {
    poll_posted = true;
    ++timers_pending;
    detail::post_on_loop(ex, loop_ex, [this] {
        poll_posted = false;
        wait_over(!finishing); // a poll is not cancelled: it sees the run finishing itself
    });
}

// A wait for the schedule (timer or poll) is over: sending goes on, or the run winds down.
void load_generator::impl::wait_over(bool go_on) {
    --timers_pending;
    if (go_on && !stopping) {
        pump();
    } else {
        maybe_finish();
        try_complete();
    }
}

void load_generator::impl::submit(clock::time_point at, clock::time_point now) {
    const prompt& p = prompts.next();
    request req;
    req.custom_id = "bench-" + std::to_string(sent);
    req.body = p.body;
    req.model = p.model;
    req.token_cost = p.token_cost;
    if (p.token_cost) // prepared: the engine takes the body as it is
        req.streams = p.streams;
    const sent_request s{at, now, p.input_tokens};
    const bool warm = warming;
    if (warm)
        results.count_warmup();
    ++sent;
    ++in_flight;
    engine.async_submit(std::move(req), [this, s, warm](result&& r) { on_result(s, warm, r); });
}

void load_generator::impl::on_result(const sent_request& s, bool warm, const result& r) {
    --in_flight;
    if (is_cancellation(r))
        results.count_cancelled();
    else if (!warm)
        results.record(s, r);
    if (is_fatal(r.ec) && !stopping)
        halt(r.ec, false);
    if (stopping)
        maybe_finish();
    else
        pump();
}

// Stops taking requests from the schedule; the engine sends nothing more (and, `at_once`,
// cancels what is on the wire).
void load_generator::impl::halt(error_code why, bool at_once) {
    if (!stopping) {
        stopping = true;
        end_reason = why;
        timer.cancel();
    }
    if (at_once)
        engine.stop(false);
    maybe_finish();
}

void load_generator::impl::arm_progress() {
    if (!progress_cb || finishing)
        return;
    ++timers_pending;
    progress_timer.expires_after(opts.progress_interval);
    progress_timer.async_wait([this](error_code ec) {
        --timers_pending;
        if (!ec && !finishing) {
            progress_cb(snapshot());
            arm_progress();
        } else {
            try_complete();
        }
    });
}

// Once nothing is due and nothing is out, the engine is stopped (its connections closed)
// and the run completes when that and every timer wait are done.
void load_generator::impl::maybe_finish() {
    if (finishing || !running || in_flight > 0 || !(schedule_over || stopping))
        return;
    finishing = true;
    timer.cancel();
    progress_timer.cancel();
    engine.async_stop(true, [this](error_code) {
        engine_stopped = true;
        try_complete();
    });
}

void load_generator::impl::try_complete() {
    if (!finishing || !engine_stopped || timers_pending > 0 || !handler)
        return;
    running = false;
    ended = clock::now();
    auto h = std::move(*handler);
    handler.reset();
    complete(std::move(h), end_reason);
}

// Calls `h` with `ec` on its associated executor, never from inside the caller's frame.
void load_generator::impl::complete(asio::any_completion_handler<void(error_code)> h,
                                    error_code ec) {
    asio::post(ex, [h = std::move(h), ec]() mutable {
        auto hex = asio::get_associated_executor(h);
        asio::dispatch(hex, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
    });
}

loadgen_progress load_generator::impl::snapshot() const {
    const recorder& rec = results.rec();
    loadgen_progress p;
    if (started != clock::time_point{})
        p.elapsed = (running ? clock::now() : ended) - started;
    p.warming_up = warming;
    p.sent = sent;
    p.completed = rec.completed();
    p.failed = rec.failed();
    p.in_flight = in_flight;
    if (opts.load.max_requests)
        p.total = opts.load.max_requests;
    p.tokens = rec.input_tokens() + rec.output_tokens();
    p.ttft_p50 = rec.ttft().percentile(50);
    p.e2el_p50 = rec.e2e().percentile(50);
    p.send_lag_p99 = rec.send_lag().percentile(99);
    return p;
}

load_generator::load_generator(asio::any_io_executor ex, loadgen_options opts)
    : impl_(std::make_unique<impl>(std::move(ex), std::move(opts))) {}

load_generator::~load_generator() = default;

void load_generator::on_progress(std::function<void(const loadgen_progress&)> callback) {
    impl_->progress_cb = std::move(callback);
}

void load_generator::async_run_erased(asio::any_completion_handler<void(error_code)> handler) {
    asio::post(impl_->ex,
               [i = impl_.get(), h = std::move(handler)]() mutable { i->run(std::move(h)); });
}

void load_generator::stop(bool at_once) {
    asio::post(impl_->ex, [i = impl_.get(), at_once] {
        if (i->running && !i->finishing)
            i->halt(asio::error::operation_aborted, at_once);
    });
}

const bench_results& load_generator::results() const noexcept {
    return impl_->results;
}

loadgen_progress load_generator::progress() const {
    return impl_->snapshot();
}

const prompt_source& load_generator::prompts() const noexcept {
    return impl_->prompts;
}

const loadgen_options& load_generator::options() const noexcept {
    return impl_->opts;
}

} // namespace sluice
