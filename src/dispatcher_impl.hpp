#pragma once

// The dispatcher's state, shared by the files that implement it: dispatcher.cpp (submission,
// admission, attempts), dispatcher_response.cpp (what a response leads to) and
// dispatcher_delivery.cpp (results, stop and drain).
#include <sluice/admission/scope.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/parse/completion_parser.hpp>
#include <sluice/parse/stream_reader.hpp>
#include <sluice/source/stream_request.hpp>

#include "detail/complete.hpp"
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

using result_handler = asio::any_completion_handler<void(error_code, result)>;

// One request's life inside the engine, from acceptance to delivery. Ownership moves with
// the request: admission queue -> pool completion -> retry timer -> delivery.
struct request_op : recycled<request_op> {
    // Constructed with its handler: Asio 1.26's any_completion_handler move assignment wraps
    // the handler in itself without end, so it is never assigned.
    explicit request_op(result_handler h)
        : handler(std::move(h)) {}

    request req;
    result_handler handler;
    result res;
    std::uint64_t cost = 0;
    struct engine_scope* scope = nullptr;
    std::unique_ptr<engine_timer> retry_timer;
    std::uint64_t ticket = 0; // the scope limiter's ticket of the attempt on the wire
    error_code last_error;    // cause of the last failed attempt, for a stop during a retry wait
    // The request's deadline on the engine clock (max: none), its length for messages, and
    // the steady-clock moment the attempt on the wire is cut at.
    engine_clock::time_point deadline = engine_clock::time_point::max();
    std::chrono::milliseconds deadline_length{0};
    std::chrono::steady_clock::time_point not_after = std::chrono::steady_clock::time_point::max();
    // Set for a body with "stream": true: reads the event stream of each attempt.
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

} // namespace detail

struct dispatcher::impl : std::enable_shared_from_this<impl> {
    using result_handler = detail::result_handler;
    using request_op = detail::request_op;
    using op_ptr = detail::op_ptr;
    using engine_scope = detail::engine_scope;

    impl(asio::any_io_executor executor, dispatcher_options o)
        : opts(std::move(o))
        , clock(opts.clock ? opts.clock : steady_engine_clock())
        , ex(std::move(executor))
        , loop_ex(detail::concrete_loop_executor(ex))
        , ep(parse_endpoint(opts.base_url))
        , tls(ep.tls ? std::optional<asio::ssl::context>(make_client_tls_context(opts.tls))
                     : std::nullopt)
        , pool(ex, ep, make_headers(), opts.pool, tls ? &*tls : nullptr, proxy_for(opts, ep))
        , budget(make_budget_client(ex, opts)) {
        for (const auto& [model, limits] : opts.model_limits)
            share(
                *scopes
                     .emplace(model,
                              std::make_unique<engine_scope>(limits, opts.retry, *clock, ex, model))
                     .first->second);
        share(*scopes
                   .emplace(std::string(),
                            std::make_unique<engine_scope>(
                                opts.limits, opts.retry, *clock, ex, std::string()))
                   .first->second);
    }

    ~impl() {
        if (budget)
            budget->close();
    }

    // The shared budget's member, when one is configured; its key defaults to the account's.
    static std::shared_ptr<detail::budget_client>
    make_budget_client(const asio::any_io_executor& ex, const dispatcher_options& o) {
        if (!o.shared_budget.enabled())
            return nullptr;
        shared_budget_options sb = o.shared_budget;
        if (sb.key.empty())
            sb.key = default_budget_key(o.base_url, o.api_key);
        return std::make_shared<detail::budget_client>(ex, std::move(sb), o.log);
    }

    // Puts a scope's limiter on the shared budget, and starts the member on first use.
    engine_scope& share(engine_scope& sc) {
        if (budget)
            sc.rules.limiter().share_budget(&budget->lease(sc.rules.name()));
        return sc;
    }

    void start_budget() {
        if (!budget || budget_started)
            return;
        budget_started = true;
        budget->on_change([weak = weak_from_this()] {
            if (auto self = weak.lock())
                self->pump();
        });
        budget->start();
    }

    // A request's scope: its model's when that model has limits of its own (or every model
    // does, with per_model_limits), else the endpoint's.
    engine_scope& scope_for(const request& r) {
        const std::string& key = scope_key(r.model, opts.model_limits, opts.per_model_limits);
        if (auto it = scopes.find(key); it != scopes.end())
            return *it->second;
        // Only a model under per_model_limits has no scope yet: its own buckets, endpoint limits.
        const limit_options& limits = scope_limits(key, opts.limits, opts.model_limits);
        return share(
            *scopes
                 .emplace(key, std::make_unique<engine_scope>(limits, opts.retry, *clock, ex, key))
                 .first->second);
    }

    // What a result must never hold: the key, the custom headers' values, the proxy's
    // password.
    static std::vector<std::string> secrets_of(const dispatcher_options& o) {
        std::vector<std::string> s{o.api_key};
        for (const auto& header : o.headers)
            s.push_back(header.second);
        error_code ec;
        s.push_back(proxy_endpoint::parse(o.proxy.url, ec).password);
        return s;
    }

    // The proxy of the endpoint's connections: none when not configured or when no_proxy
    // names the endpoint.
    static proxy_endpoint proxy_for(const dispatcher_options& o, const endpoint& ep) {
        if (o.proxy.url.empty() || no_proxy_matches(o.proxy.no_proxy, ep.host, ep.port))
            return {};
        error_code ec;
        return proxy_endpoint::parse(o.proxy.url, ec); // validate() checked it
    }

    static endpoint parse_endpoint(const std::string& url) {
        error_code ec;
        auto ep = endpoint::parse(url, ec);
        if (ec)
            throw std::invalid_argument("base_url: not an http:// or https:// URL: " + url);
        return ep;
    }

    request_headers make_headers() const {
        request_headers h;
        endpoint target = ep;
        if (!opts.api_version.empty())
            target.set_query_param("api-version", opts.api_version);
        h.target = target.target("/chat/completions");
        if (opts.effective_style() == api_style::azure)
            h.api_key = opts.api_key;
        else if (!opts.api_key.empty())
            h.authorization = "Bearer " + opts.api_key;
        h.organization = opts.organization;
        h.project = opts.project;
        h.user_agent = "sluice/0.1";
        h.extra = opts.headers;
        return h;
    }

    // --- submission -------------------------------------------------------------------------

    void submit(request req, result_handler h) {
        if (stopped) {
            // After a fatal error the request was refused, not failed: a resumed run sends it.
            deliver_now(std::move(req.custom_id),
                        stopped_by ? errc::not_attempted : errc::stopped,
                        std::move(h));
            return;
        }
        if (pending >= opts.queue_limit) {
            if (opts.on_full == overflow_policy::fail) {
                deliver_now(std::move(req.custom_id), errc::queue_full, std::move(h));
                return;
            }
            overflow.emplace_back(std::move(req), std::move(h));
            return;
        }
        accept(std::move(req), std::move(h));
    }

    void accept(request req, result_handler h) {
        auto op = std::make_unique<request_op>(std::move(h));
        op->res.custom_id = req.custom_id;
        op->res.times.queued = clock->now();
        if (prepare_stream(req.body)) {
            op->stream = take_stream_reader();
            op->stream->on_delta(&op->req.on_delta);
        }
        op->cost = req.token_cost ? *req.token_cost : estimator(req.body).total();
        op->deadline_length = req.deadline.value_or(opts.deadline);
        if (op->deadline_length.count() > 0)
            op->deadline = op->res.times.queued + op->deadline_length;
        op->req = std::move(req);
        ++pending;
        submitted.fetch_add(1, std::memory_order_relaxed);
        op->scope = &scope_for(op->req);
        start_budget();
        if (std::string why = op->scope->rules.refusal(op->cost); !why.empty()) {
            op->res.message = std::move(why);
            finish(std::move(op), errc::request_too_large);
            return;
        }
        engine_scope& sc = *op->scope;
        const std::uint64_t cost = op->cost;
        sc.rules.push_back(std::move(op), cost);
        {
            std::lock_guard lock(stats_mutex);
            observe(sc, clock->now());
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
        bool admitted = true;
        while (admitted && !stopped) {
            admitted = false;
            for (auto& [key, sc] : scopes) {
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

    void start_attempt(op_ptr op) {
        admitted.fetch_add(1, std::memory_order_relaxed);
        {
            const auto now = clock->now();
            std::lock_guard lock(stats_mutex);
            if (op->res.attempts == 0)
                counters.admission_wait.record(now - op->res.times.queued);
            observe(*op->scope, now);
        }
        op->scope->rules.on_attempt(clock->now(), ++op->res.attempts);
        ++on_wire;
        const std::string_view body = op->req.body;
        stream_reader* const stream = op->stream.get(); // before `op` moves into the handler
        if (stream)
            stream->reset();
        // The attempt's I/O runs on the steady clock: it gets what is left of the deadline.
        if (op->deadline != engine_clock::time_point::max())
            op->not_after = std::chrono::steady_clock::now() +
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                op->deadline - clock->now());
        const auto not_after = op->not_after;
        auto on_done = [self = shared_from_this(), op = std::move(op)](http_response resp) mutable {
            --self->on_wire;
            self->on_response(std::move(op), std::move(resp));
            self->pump();
        };
        if (loop_ex)
            pool.async_exchange(
                body, stream, not_after, asio::bind_executor(*loop_ex, std::move(on_done)));
        else
            pool.async_exchange(
                body, stream, not_after, asio::bind_executor(ex, std::move(on_done)));
    }

    void on_response(op_ptr op, http_response resp);

    bool take_stream(request_op& op, http_response& resp);

    // A reader for a streamed request: a spare one when there is one. Its parsers' buffers,
    // strings and vectors have grown to the streams read before, so a stream of the usual
    // size costs no allocation for its events.
    std::unique_ptr<stream_reader> take_stream_reader() {
        if (spare_streams.empty())
            return std::make_unique<stream_reader>();
        std::unique_ptr<stream_reader> s = std::move(spare_streams.back());
        spare_streams.pop_back();
        return s;
    }

    // Keeps the reader of a delivered request for the next, as many as may be in flight.
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
    endpoint ep;
    std::optional<asio::ssl::context> tls;
    connection_pool pool;
    // Before `scopes`, whose limiters point into its leases.
    std::shared_ptr<detail::budget_client> budget;
    bool budget_started = false;
    completion_parser parser;                 // one per dispatcher: all parsing happens on `ex`
    token_estimator estimator{opts.estimate}; // likewise
    stream_request_preparer prepare_stream;   // likewise
    detail::secret_scrubber secrets{secrets_of(opts)};
    bool stopped = false;
    error_code stopped_by; // the fatal error that stopped admission, if one did

    std::map<std::string, std::unique_ptr<engine_scope>> scopes; // "" is the endpoint's
    std::deque<std::pair<request, result_handler>> overflow;     // submissions beyond queue_limit
    std::unordered_set<request_op*> sleeping;                    // waiting out a retry delay
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
