#pragma once

// The dispatcher's state, shared by the files that implement it: dispatcher.cpp (submission,
// admission, attempts), dispatcher_response.cpp (what a response leads to) and
// dispatcher_delivery.cpp (results, stop and drain).
#include <sluice/admission/endpoint_router.hpp>
#include <sluice/admission/scope.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/parse/completion_parser.hpp>
#include <sluice/parse/stream_reader.hpp>
#include <sluice/source/stream_request.hpp>

#include "detail/complete.hpp"
#include "detail/op_memory.hpp"
#include "detail/recycled.hpp"
#include "detail/redact.hpp"
#include "redis/budget_client.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <variant>

namespace sluice {

namespace asio = boost::asio;

namespace detail {

using result_handler = asio::any_completion_handler<void(error_code, result&&)>;

// One request's life inside the engine, from acceptance to delivery. Ownership moves with
// the request: admission queue -> pool completion -> retry timer -> delivery.
struct request_op : recycled<request_op> {
    // Constructed with its handler: Asio 1.26's any_completion_handler move assignment wraps
    // the handler in itself without end, so it is never assigned.
    request_op(request&& r, result_handler h)
        : req(std::move(r))
        , handler(std::move(h)) {}

    request req;
    result_handler handler;
    result res;
    std::uint64_t cost = 0;
    struct engine_scope* scope = nullptr;
    std::unique_ptr<engine_timer> retry_timer;
    std::uint64_t ticket = 0; // the scope limiter's ticket of the attempt on the wire
    struct engine_endpoint* target = nullptr; // the endpoint of the attempt on the wire
    bool probe = false;                       // the attempt is its endpoint's half-open probe
    error_code last_error; // cause of the last failed attempt, for a stop during a retry wait
    // The request's deadline on the engine clock (max: none), its length for messages, and
    // the steady-clock moment the attempt on the wire is cut at.
    engine_clock::time_point deadline = engine_clock::time_point::max();
    std::chrono::milliseconds deadline_length{0};
    std::chrono::steady_clock::time_point not_after = std::chrono::steady_clock::time_point::max();
    // A body with "stream": true; its reader, which reads the event stream of each attempt,
    // is taken at the first attempt: requests waiting for admission hold none.
    bool streams = false;
    std::unique_ptr<stream_reader> stream;
};

using op_ptr = std::unique_ptr<request_op>;

// One rate-limit scope (the endpoint, or the endpoint and one model): its rules, sans I/O,
// and the timer that wakes the first of its waiting requests.
struct engine_scope {
    engine_scope(const limit_options& limits,
                 const retry_options& retry,
                 engine_clock& clock,
                 asio::any_io_executor ex,
                 std::string key)
        : rules(std::move(key), limits, retry, clock.now())
        , timer(clock.make_timer(std::move(ex))) {}

    scope<op_ptr> rules;
    std::unique_ptr<engine_timer> timer;
    bool timer_armed = false;
    scope_stats* stats = nullptr; // its entry in the dispatcher's counters; see stats_of
};

// One endpoint: its options (the dispatcher's, as `endpoint_view` gives them), its connection
// pool and its rate-limit scopes.
struct engine_endpoint {
    engine_endpoint(asio::any_io_executor ex, dispatcher_options o, std::size_t i, bool several);

    // A request's scope here: its model's when that model has limits of its own (or every
    // model does, with per_model_limits), else the endpoint's. With several endpoints the
    // scopes are named after the endpoint ("backup", "backup/gpt-4o") so their stats differ.
    engine_scope& scope_for(const request& r, engine_clock& clock, asio::any_io_executor ex);

    static endpoint parse_endpoint(const std::string& url);
    static std::shared_ptr<budget_client> make_budget_client(const asio::any_io_executor& ex,
                                                             const dispatcher_options& o);
    static proxy_endpoint proxy_for(const dispatcher_options& o, const endpoint& ep);
    request_headers make_headers() const;

    dispatcher_options opts;
    std::size_t index;
    bool several;
    endpoint ep;
    std::optional<asio::ssl::context> tls;
    connection_pool pool;
    // The budget shared with other processes through Redis (the default endpoint's only),
    // before `scopes`, whose limiters point into its leases.
    std::shared_ptr<detail::budget_client> budget;
    std::map<std::string, std::unique_ptr<engine_scope>> scopes; // "" is the endpoint's
    std::size_t on_wire = 0;                                     // handed to its pool
    endpoint_stats* stats = nullptr; // its entry in the counters, with several endpoints
};

// The requests of one model waiting for an endpoint, with several endpoints: in order, the
// first routed first; its timer wakes the head when an endpoint can take it.
struct route_line {
    explicit route_line(std::unique_ptr<engine_timer> t)
        : timer(std::move(t)) {}
    std::deque<op_ptr> ops;
    std::unique_ptr<engine_timer> timer;
    bool armed = false;
    engine_clock::time_point armed_for{};
    std::uint64_t generation = 0; // a cancelled wait's handler sees a newer one and does nothing
};

} // namespace detail

struct dispatcher::impl : std::enable_shared_from_this<impl> {
    using result_handler = detail::result_handler;
    using request_op = detail::request_op;
    using op_ptr = detail::op_ptr;
    using engine_scope = detail::engine_scope;

    using engine_endpoint = detail::engine_endpoint;
    using route_line = detail::route_line;

    impl(asio::any_io_executor executor, dispatcher_options o)
        : opts(std::move(o))
        , clock(opts.clock ? opts.clock : steady_engine_clock())
        , ex(std::move(executor))
        , loop_ex(detail::concrete_loop_executor(ex))
        , several(!opts.endpoints.empty()) {
        std::vector<endpoint_router::endpoint> routes;
        for (std::size_t i = 0; i <= opts.endpoints.size(); ++i) {
            endpoints.push_back(
                std::make_unique<engine_endpoint>(ex, opts.endpoint_view(i), i, several));
            routes.push_back({endpoints.back()->opts.models, endpoints.back()->opts.weight});
            breakers.emplace_back(opts.breaker);
            if (several) {
                std::lock_guard lock(stats_mutex);
                endpoints.back()->stats = &counters.endpoints[endpoints.back()->opts.endpoint_name];
            }
        }
        router.emplace(std::move(routes));
    }

    engine_endpoint& primary() { return *endpoints.front(); }

    ~impl() {
        for (auto& e : endpoints)
            if (e->budget)
                e->budget->close();
    }

    // The shared budget's members start with the first request: each tells the engine when
    // its lease changes, so that the requests waiting for budget go on.
    void start_budget() {
        if (budget_started)
            return;
        budget_started = true;
        for (auto& e : endpoints) {
            if (!e->budget)
                continue;
            e->budget->on_change([weak = weak_from_this()] {
                if (auto self = weak.lock())
                    self->pump();
            });
            e->budget->start();
        }
    }

    engine_scope& scope_for(const request& r) { return primary().scope_for(r, *clock, ex); }

    // What a result must never hold: every endpoint's key and custom headers' values, the
    // proxy's password.
    static std::vector<std::string> secrets_of(const dispatcher_options& o) {
        std::vector<std::string> s;
        for (std::size_t i = 0; i <= o.endpoints.size(); ++i) {
            const dispatcher_options v = i == 0 ? o : o.endpoint_view(i);
            s.push_back(v.api_key);
            for (const auto& header : v.headers)
                s.push_back(header.second);
        }
        error_code ec;
        s.push_back(proxy_endpoint::parse(o.proxy.url, ec).password);
        return s;
    }

    // --- submission -------------------------------------------------------------------------

    // `op` holds the request and its handler, nothing else yet.
    void submit(op_ptr op) {
        if (stopped) {
            // After a fatal error the request was refused, not failed: a resumed run sends it.
            deliver_now(std::move(op->req.custom_id),
                        stopped_by ? errc::not_attempted : errc::stopped,
                        std::move(op->handler));
            return;
        }
        if (pending >= opts.queue_limit) {
            if (opts.on_full == overflow_policy::fail) {
                deliver_now(std::move(op->req.custom_id), errc::queue_full, std::move(op->handler));
                return;
            }
            // Waiting here, a submission keeps only its request and handler.
            overflow.emplace_back(std::move(op->req), std::move(op->handler));
            return;
        }
        accept(std::move(op));
    }

    void accept(op_ptr op) {
        request& req = op->req; // its body may gain stream_options (prepare_stream)
        op->res.custom_id = req.custom_id;
        op->res.times.queued = clock->now();
        op->streams = req.streams ? *req.streams : prepare_stream(req.body);
        op->cost = req.token_cost ? *req.token_cost : estimator(req.body).total();
        op->deadline_length = req.deadline.value_or(opts.deadline);
        if (op->deadline_length.count() > 0)
            op->deadline = op->res.times.queued + op->deadline_length;
        ++pending;
        submitted.fetch_add(1, std::memory_order_relaxed);
        start_budget();
        if (several) {
            // Its endpoint (and so its scope) is chosen when it reaches the head of its line.
            line_for(op->req.model).ops.push_back(std::move(op));
            pump();
            return;
        }
        op->target = &primary();
        op->scope = &scope_for(op->req);
        if (std::string why = op->scope->rules.refusal(op->cost); !why.empty()) {
            op->res.message = std::move(why);
            finish(std::move(op), errc::request_too_large);
            return;
        }
        engine_scope& sc = *op->scope;
        const std::uint64_t cost = op->cost;
        const auto queued = op->res.times.queued; // now, as far as the gauges can tell
        sc.rules.push_back(std::move(op), cost);
        {
            std::lock_guard lock(stats_mutex);
            observe(sc, queued);
        }
        pump();
    }

    // Copies a scope's gauges into the counters (the caller holds stats_mutex): the scope
    // lives on `ex`, and stats() may be called from any thread.
    // The scope's entry in `counters`, under stats_mutex: looked up by name once, not at every
    // admission and response (std::map nodes stay where they are).
    scope_stats& stats_of(engine_scope& sc) {
        if (!sc.stats)
            sc.stats = &counters.scopes[sc.rules.name()];
        return *sc.stats;
    }

    void observe(engine_scope& sc, engine_clock::time_point now) {
        scope_stats& s = stats_of(sc);
        const rate_limiter& l = sc.rules.limiter();
        s.waiting = sc.rules.size();
        s.rpm = l.limits().rpm;
        s.tpm = l.limits().tpm;
        s.adaptive_rpm = l.adaptive_rpm(now);
        s.requests_available = l.requests_available(now);
        s.tokens_available = l.tokens_available(now);
    }

    // Admits waiting requests while a connection is free: in order within each scope, taking
    // the scopes in turn; a scope whose first request cannot pay yet arms its timer for the
    // moment it can. Admitting no more than there are connections keeps each charge close to
    // its send time and leaves nothing half-sent to cancel when the job stops.
    void pump() {
        if (several) {
            pump_lines();
            return;
        }
        bool admitted = true;
        while (admitted && !stopped) {
            admitted = false;
            for (auto& [key, sc] : primary().scopes) {
                if (on_wire >= opts.pool.max_connections)
                    return;
                const auto now = clock->now();
                // A head whose deadline has passed is not sent; nor one that could only start
                // after it (below): it fails now instead of waiting in vain.
                if (expire_head(*sc, now, now)) {
                    admitted = true;
                    continue;
                }
                auto step = sc->rules.next(now);
                if (std::holds_alternative<scope<op_ptr>::idle>(step))
                    continue;
                if (const auto* wait = std::get_if<engine_clock::duration>(&step)) {
                    if (expire_head(*sc, now, now + *wait)) {
                        admitted = true;
                        continue;
                    }
                    arm_timer(*sc, now + *wait);
                    continue;
                }
                admitted = true;
                if (auto* no = std::get_if<scope<op_ptr>::refused>(&step)) {
                    no->item->res.message = std::move(no->reason);
                    finish(std::move(no->item), errc::request_too_large);
                    continue;
                }
                auto& yes = std::get<scope<op_ptr>::admitted>(step);
                yes.item->res.times.admitted = now;
                yes.item->ticket = yes.ticket;
                start_attempt(std::move(yes.item));
            }
        }
    }

    // Fails the scope's head with errc::deadline_exceeded when it could not be sent before
    // its deadline, the earliest send being `start`; true when it did.
    bool
    expire_head(engine_scope& sc, engine_clock::time_point now, engine_clock::time_point start) {
        if (sc.rules.is_empty() || sc.rules.head()->deadline > start)
            return false;
        op_ptr op = sc.rules.pop_front();
        const char* what = now >= op->deadline ? "passed while it waited for admission"
                                               : "would pass before the rate limits admit it";
        fail_deadline(std::move(op), now, what, start - now);
        return true;
    }

    void fail_deadline(op_ptr op,
                       engine_clock::time_point now,
                       std::string_view what,
                       engine_clock::duration wait = {});

    void arm_timer(engine_scope& sc, engine_clock::time_point when) {
        if (sc.timer_armed)
            return;
        sc.timer_armed = true;
        sc.timer->async_wait_until(when, [self = shared_from_this(), &sc](error_code) {
            sc.timer_armed = false;
            self->pump();
        });
    }

    // --- one attempt ------------------------------------------------------------------------

    // Called at the moment of admission (`times.admitted`, which both callers have just read
    // from the clock and set), which is also the attempt's start.
    void start_attempt(op_ptr op) {
        admitted.fetch_add(1, std::memory_order_relaxed);
        const auto now = op->res.times.admitted;
        {
            std::lock_guard lock(stats_mutex);
            if (op->res.attempts == 0)
                counters.admission_wait.record(now - op->res.times.queued);
            observe(*op->scope, now);
        }
        op->scope->rules.on_attempt(now, ++op->res.attempts);
        ++on_wire;
        engine_endpoint* const target = op->target;
        ++target->on_wire;
        if (target->stats) {
            std::lock_guard lock(stats_mutex);
            ++target->stats->sent;
        }
        const std::string_view body = op->req.body;
        if (op->streams && !op->stream) {
            op->stream = take_stream_reader();
            op->stream->on_delta(&op->req.on_delta);
        }
        stream_reader* const stream = op->stream.get(); // before `op` moves into the handler
        if (stream)
            stream->reset();
        // The attempt's I/O runs on the steady clock: it gets what is left of the deadline.
        if (op->deadline != engine_clock::time_point::max())
            op->not_after =
                std::chrono::steady_clock::now() +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(op->deadline - now);
        const auto not_after = op->not_after;
        auto on_done = [self = shared_from_this(),
                        op = std::move(op)](http_response&& resp) mutable {
            --self->on_wire;
            --op->target->on_wire;
            self->on_response(std::move(op), std::move(resp));
            self->pump();
        };
        if (loop_ex)
            target->pool.async_exchange(
                body,
                stream,
                not_after,
                asio::bind_executor(*loop_ex, detail::with_op_memory(std::move(on_done))));
        else
            target->pool.async_exchange(
                body,
                stream,
                not_after,
                asio::bind_executor(ex, detail::with_op_memory(std::move(on_done))));
    }

    void on_response(op_ptr op, http_response&& resp);

    // --- several endpoints (dispatcher_routing.cpp) -----------------------------------------

    route_line& line_for(const std::string& model);
    void pump_lines();
    bool route_head(const std::string& model, route_line& line, engine_clock::time_point now);
    void arm_line_timer(route_line& line, engine_clock::time_point when);
    // The breaker's view of one response of endpoint `e`; true when it retired the endpoint
    // and the request goes back to its line for another.
    bool on_endpoint_response(request_op& op,
                              const http_response& resp,
                              const response_action& action,
                              engine_clock::time_point now);
    void observe_endpoint(engine_endpoint& e, engine_clock::time_point now);
    void close_pools();

    bool take_stream(request_op& op, http_response& resp, std::optional<error_code>& assembled);

    // A reader for a streamed request: a spare one when there is one. Its parsers' buffers,
    // strings and vectors have grown to the streams read before, so a stream of the usual
    // size costs no allocation for its events.
    std::unique_ptr<stream_reader> take_stream_reader() {
        if (spare_streams.empty())
            return std::make_unique<stream_reader>(chunk_scratch);
        std::unique_ptr<stream_reader> s = std::move(spare_streams.back());
        spare_streams.pop_back();
        return s;
    }

    // Keeps the reader of a delivered request for the next, as many as may be on the wire.
    void recycle(std::unique_ptr<stream_reader> s) {
        if (s && spare_streams.size() < opts.pool.max_connections) {
            s->on_delta(nullptr);
            spare_streams.push_back(std::move(s));
        }
    }

    void schedule_retry(op_ptr op, std::chrono::nanoseconds delay, const error_code& cause);

    void on_fatal(const error_code& ec, const std::string& why);

    // --- delivery ---------------------------------------------------------------------------

    void finish_stopped(op_ptr op);

    void finish(op_ptr op, error_code ec);

    void scrub_secrets(result& r);

    void deliver_now(std::string custom_id, errc e, result_handler h);

    void on_slot_freed();

    void complete_stop_waiters();

    void stop_and_wait(bool graceful, asio::any_completion_handler<void(error_code)> h);

    void complete_drain(asio::any_completion_handler<void(error_code)> h);

    void drain(asio::any_completion_handler<void(error_code)> h);

    void do_stop(bool graceful);

    void copy_pool_stats();

    stats_snapshot snapshot();

    dispatcher_options opts;
    std::shared_ptr<engine_clock> clock; // admission, retry and hold decisions; never null
    // Everything below is touched only from handlers on `ex`, which must not run them
    // concurrently (a single-threaded io_context, or a strand).
    asio::any_io_executor ex;
    std::optional<asio::io_context::executor_type> loop_ex; // see concrete_loop_executor
    bool several; // more than one endpoint: requests wait in `lines` and are routed
    std::vector<std::unique_ptr<engine_endpoint>> endpoints; // [0] is the default
    std::vector<circuit_breaker> breakers;                   // one per endpoint
    std::optional<endpoint_router> router;
    std::map<std::string, std::unique_ptr<route_line>> lines; // by model, with several endpoints
    std::vector<std::size_t> candidates;                      // route_head's scratch
    bool budget_started = false;
    completion_parser parser;                 // one per dispatcher: all parsing happens on `ex`
    token_estimator estimator{opts.estimate}; // likewise
    stream_request_preparer prepare_stream;   // likewise
    // The stream readers' simdjson parsers (likewise): one set, not one per stream in flight.
    chunk_workspace chunk_scratch;
    detail::secret_scrubber secrets{secrets_of(opts)};
    bool stopped = false;
    error_code stopped_by; // the fatal error that stopped admission, if one did

    std::deque<std::pair<request, result_handler>> overflow; // submissions beyond queue_limit
    std::unordered_set<request_op*> sleeping;                // waiting out a retry delay
    std::vector<asio::any_completion_handler<void(error_code)>> drain_waiters;
    std::vector<asio::any_completion_handler<void(error_code)>> stop_waiters;
    std::vector<std::unique_ptr<stream_reader>> spare_streams; // see take_stream_reader
    std::size_t pending = 0;                                   // accepted, not yet delivered
    std::size_t on_wire = 0;                                   // handed to the pool

    mutable std::mutex stats_mutex;
    stats_snapshot counters;
    // Counted on every request, read by stats() from any thread: atomics, so that only
    // delivery takes the lock (once per request, where it was three times).
    std::atomic<std::uint64_t> submitted{0};
    std::atomic<std::uint64_t> admitted{0};
};

} // namespace sluice
