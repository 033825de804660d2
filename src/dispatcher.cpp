#include <sluice/admission/scope.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/parse/completion_parser.hpp>

#include "detail/complete.hpp"
#include "detail/redact.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

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

void dispatcher_options::validate() const {
    error_code ec;
    endpoint::parse(base_url, ec);
    if (ec)
        throw std::invalid_argument("base_url: not an http:// or https:// URL: " + base_url);
    if (queue_limit == 0)
        throw std::invalid_argument("queue_limit: must be at least 1");
    pool.validate();
    limits.validate();
    for (const auto& [model, l] : model_limits) {
        if (model.empty())
            throw std::invalid_argument("model_limits: a model name must not be empty");
        l.validate();
    }
    retry.validate();
    if (estimate.chars_per_token <= 0)
        throw std::invalid_argument("estimate.chars_per_token: must be positive");
}

namespace {

using result_handler = asio::any_completion_handler<void(error_code, result)>;

// One request's life inside the engine, from acceptance to delivery. Ownership moves with
// the request: admission queue -> pool completion -> retry timer -> delivery.
struct request_op {
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
};

using op_ptr = std::unique_ptr<request_op>;

// A Content-Type that names something other than JSON (an event stream, an HTML error page
// of a proxy). No Content-Type, or a JSON one (application/json, application/problem+json, with
// parameters), says nothing against the body.
bool says_not_json(std::string_view content_type) {
    if (content_type.empty())
        return false;
    std::string lower(content_type.substr(0, content_type.find(';')));
    for (char& c : lower)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return lower.find("json") == std::string::npos;
}

std::string describe_failure(const error_code& ec, const http_response& resp, const completion& c) {
    std::string msg;
    if (resp.ec) {
        // A transport failure, perhaps after a head arrived: the step and the parser's reason
        // ("read: bad chunk"), not just the status of a response that never completed.
        msg = resp.failed_step && *resp.failed_step ? std::string(resp.failed_step) + ": " : "";
        msg += resp.ec.message();
        if (resp.failed_reason && *resp.failed_reason)
            msg += std::string(" (") + resp.failed_reason + ")";
        if (resp.status != 0)
            msg += " (after the head of an HTTP " + std::to_string(resp.status) + " response)";
        return msg;
    }
    if (resp.status != 0) {
        msg = "HTTP " + std::to_string(resp.status);
        if (c.error && !c.error->message.empty())
            msg += ": " + c.error->message;
        else if (ec == errc::unexpected_content_type)
            msg += " with Content-Type " + resp.content_type + ": " + ec.message();
        else if (ec == errc::malformed_response)
            msg += ": " + ec.message();
        return msg;
    }
    msg = resp.failed_step && *resp.failed_step ? std::string(resp.failed_step) + ": " : "";
    return msg + ec.message();
}

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
};

// Once per scope: the limits now in use came from the server's headers (lower than
// configured, or not configured), so a run that is slower than expected says why. The figures
// are the account's, as the server sent them, not this engine's share.
std::string server_limits_message(const engine_scope& sc, const limit_options& l) {
    auto per_minute = [&](double v, const char* unit) {
        return v > 0 ? std::to_string(std::llround(v / l.share)) + " " + unit + "s/min"
                     : std::string("no ") + unit + " limit";
    };
    return "using the server's rate limits" +
           (sc.rules.name().empty() ? std::string() : " for " + sc.rules.name()) + ": " +
           per_minute(l.rpm, "request") + ", " + per_minute(l.tpm, "token") +
           " (its x-ratelimit-limit-* headers: lower than configured, or not configured)";
}

} // namespace

struct dispatcher::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor executor, dispatcher_options o)
        : opts(std::move(o))
        , clock(opts.clock ? opts.clock : steady_engine_clock())
        , ex(std::move(executor))
        , ep(parse_endpoint(opts.base_url))
        , tls(ep.tls ? std::optional<asio::ssl::context>(make_client_tls_context(opts.tls))
                     : std::nullopt)
        , pool(ex, ep, make_headers(), opts.pool, tls ? &*tls : nullptr) {
        for (const auto& [model, limits] : opts.model_limits)
            scopes.emplace(model,
                           std::make_unique<engine_scope>(limits, opts.retry, *clock, ex, model));
        scopes.emplace(
            std::string(),
            std::make_unique<engine_scope>(opts.limits, opts.retry, *clock, ex, std::string()));
    }

    // A request's scope: its model's when that model has limits of its own (or every model
    // does, with per_model_limits), else the endpoint's.
    engine_scope& scope_for(const request& r) {
        if (!r.model.empty()) {
            if (auto it = scopes.find(r.model); it != scopes.end())
                return *it->second;
            if (opts.per_model_limits)
                return *scopes
                            .emplace(r.model,
                                     std::make_unique<engine_scope>(
                                         opts.limits, opts.retry, *clock, ex, r.model))
                            .first->second;
        }
        return *scopes.at(std::string());
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
        h.target = ep.target("/chat/completions");
        if (!opts.api_key.empty())
            h.authorization = "Bearer " + opts.api_key;
        h.organization = opts.organization;
        h.project = opts.project;
        h.user_agent = "sluice/0.1";
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
        op->cost =
            req.token_cost ? *req.token_cost : estimate_tokens(req.body, opts.estimate).total();
        op->req = std::move(req);
        ++pending;
        {
            std::lock_guard lock(stats_mutex);
            ++counters.submitted;
        }
        op->scope = &scope_for(op->req);
        if (std::string why = op->scope->rules.refusal(op->cost); !why.empty()) {
            op->res.message = std::move(why);
            finish(std::move(op), errc::request_too_large);
            return;
        }
        engine_scope& sc = *op->scope;
        const std::uint64_t cost = op->cost;
        sc.rules.push_back(std::move(op), cost);
        pump();
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
                auto step = sc->rules.next(now);
                if (std::holds_alternative<scope<op_ptr>::idle>(step))
                    continue;
                if (const auto* wait = std::get_if<engine_clock::duration>(&step)) {
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
        {
            std::lock_guard lock(stats_mutex);
            ++counters.admitted;
        }
        op->scope->rules.on_attempt(clock->now(), ++op->res.attempts);
        ++on_wire;
        const std::string_view body = op->req.body;
        pool.async_exchange(
            body,
            asio::bind_executor(
                ex, [self = shared_from_this(), op = std::move(op)](http_response resp) mutable {
                    --self->on_wire;
                    self->on_response(std::move(op), std::move(resp));
                    self->pump();
                }));
    }

    // Turns the response into the facts the scope rules take (response_event) and carries out
    // their answer.
    void on_response(op_ptr op, http_response resp) {
        const auto now = clock->now();
        op->res.times.sent = resp.sent;
        op->res.times.first_byte = resp.first_byte;

        const auto meta = resp.meta();
        response_event event;
        attempt_outcome& outcome = event.outcome;
        completion& parsed = op->res.completion;
        parsed = completion{};
        if (resp.ec) {
            outcome.transport_error = resp.ec;
        } else {
            outcome.status = resp.status;
            const error_code pec = parser.parse(resp.body, parsed);
            const bool success_status = resp.status >= 200 && resp.status < 300;
            if (success_status && pec)
                outcome.transport_error =
                    says_not_json(resp.content_type) ? errc::unexpected_content_type : pec;
            if (parsed.error) {
                outcome.provider_code =
                    parsed.error->code.empty() ? parsed.error->type : parsed.error->code;
                outcome.provider_message = parsed.error->message;
            }
            outcome.retry_after = parse_retry_after(meta, std::chrono::system_clock::now());
            if (meta.should_retry == "true")
                outcome.should_retry = true;
            else if (meta.should_retry == "false")
                outcome.should_retry = false;
            if (success_status && !pec && parsed.usage)
                event.usage_tokens = parsed.usage->total_tokens;
        }
        event.headers = parse_rate_limit_headers(meta);
        // The admission moment stands for the send: it is on the engine's clock, as `now` is,
        // and precedes the write by no more than the connection's setup.
        event.sent = op->res.times.admitted;
        event.ticket = op->ticket;
        event.cost = op->cost;
        event.attempts = op->res.attempts;
        event.stopping = stopped;

        engine_scope& sc = *op->scope;
        const response_action action = sc.rules.on_response(now, event);
        if (action.limits_learned)
            opts.log.log(log_level::info, server_limits_message(sc, sc.rules.limits()));
        if (action.rate_limited) {
            std::lock_guard lock(stats_mutex);
            ++counters.rate_limited;
        }

        op->res.status = resp.status;
        op->res.request_id = std::move(resp.request_id);
        op->res.body = std::move(resp.body);

        using kind = response_action::kind;
        switch (action.what) {
        case kind::deliver:
            finish(std::move(op), {});
            return;
        case kind::retry:
            op->last_error = action.ec;
            op->res.message = describe_failure(action.ec, resp, parsed);
            schedule_retry(std::move(op), action.delay, action.ec);
            return;
        case kind::stopped:
            // Stopped before it could be retried: the line is not answered, so a resumed run
            // must send it again; the last failure stays in the message.
            op->last_error = action.ec;
            op->res.message = describe_failure(action.ec, resp, parsed);
            finish_stopped(std::move(op));
            return;
        case kind::give_up:
        case kind::stop_run:
            if (action.cause) {
                // The endpoint is failing more than the budget allows: no retry storm.
                op->res.message = "retry budget spent; last failure: " +
                                  describe_failure(action.cause, resp, parsed);
            } else {
                op->res.message = describe_failure(action.ec, resp, parsed);
                if (op->res.attempts > 1)
                    op->res.message += " (after " + std::to_string(op->res.attempts) + " attempts)";
            }
            if (action.what == kind::stop_run)
                on_fatal(action.ec, op->res.message);
            finish(std::move(op), action.ec);
            return;
        }
    }

    void schedule_retry(op_ptr op, std::chrono::nanoseconds delay, const error_code& cause) {
        {
            std::lock_guard lock(stats_mutex);
            ++counters.retries;
            ++counters.retry_causes[error_kind(cause)];
        }
        request_op* raw = op.get();
        raw->retry_timer = clock->make_timer(ex);
        sleeping.insert(raw);
        raw->retry_timer->async_wait_until(
            clock->now() + std::chrono::duration_cast<engine_clock::duration>(delay),
            [self = shared_from_this(), op = std::move(op)](error_code) mutable {
                self->sleeping.erase(op.get());
                op->retry_timer.reset();
                if (self->stopped) {
                    self->finish_stopped(std::move(op));
                    return;
                }
                // A retry goes back through admission: failed requests count against the
                // limits too. It joins the front, having waited longest.
                engine_scope& sc = *op->scope;
                const std::uint64_t cost = op->cost;
                sc.rules.push_front(std::move(op), cost);
                self->pump();
            });
    }

    // Quota exhaustion cannot be fixed by waiting: stop admitting, let the wire drain, and
    // hand back everything not yet sent as not attempted.
    void on_fatal(const error_code& ec, const std::string& why) {
        if (!stopped) {
            stopped_by = ec;
            // `why` is the result's message, scrubbed of the key like everything delivered.
            std::string detail = why;
            secrets.scrub(detail);
            opts.log.log(log_level::error,
                         ec.message() + " (" + detail + "); no further requests are sent");
        }
        do_stop(true);
    }

    // --- delivery ---------------------------------------------------------------------------

    // A request that was sent and failed, then stopped while waiting for its retry (a timer,
    // a 429 hold, admission): not a final answer. errc::stopped is what a resumed run sends
    // again; the last failure is kept in the message.
    void finish_stopped(op_ptr op) {
        const std::string last = op->res.message.empty()
                                     ? (op->last_error ? op->last_error.message() : std::string())
                                     : op->res.message;
        op->res.message =
            "stopped before retrying" + (last.empty() ? "" : "; last failure: " + last);
        finish(std::move(op), errc::stopped);
    }

    void finish(op_ptr op, error_code ec) {
        result& r = op->res;
        r.ec = ec;
        r.times.done = clock->now();
        if (ec && r.message.empty())
            r.message = ec.message();
        scrub_secrets(r);
        {
            std::lock_guard lock(stats_mutex);
            copy_pool_stats();
            counters.attempts += r.attempts;
            ++counters.statuses[r.status];
            if (ec) {
                ++counters.failed;
                ++counters.failures[error_kind(ec)];
            } else {
                ++counters.succeeded;
                if (r.completion.usage) {
                    counters.prompt_tokens += r.completion.usage->prompt_tokens;
                    counters.completion_tokens += r.completion.usage->completion_tokens;
                }
            }
            counters.latency.record(r.times.done - r.times.queued);
            if (r.times.first_byte != timings::time_point{})
                counters.ttfb.record(r.times.first_byte - r.times.sent);
        }
        const auto& handler = op->handler;
        detail::dispatch_to_handler(ex, handler, [op = std::move(op), ec]() mutable {
            auto h = std::move(op->handler);
            std::move(h)(ec, std::move(op->res));
        });
        --pending;
        on_slot_freed();
    }

    // Servers echo request headers, the key among them, in error messages (and may in any
    // body): it is cut out of everything a result carries before anyone can write it.
    void scrub_secrets(result& r) const {
        if (!secrets.active())
            return;
        secrets.scrub(r.body);
        secrets.scrub(r.message);
        if (r.completion.error) {
            secrets.scrub(r.completion.error->message);
            secrets.scrub(r.completion.error->param);
        }
        for (choice& c : r.completion.choices)
            if (c.content)
                secrets.scrub(*c.content);
    }

    // A request that never entered the engine (stopped, queue full).
    void deliver_now(std::string custom_id, errc e, result_handler h) {
        result r;
        r.custom_id = std::move(custom_id);
        r.ec = e;
        r.message = r.ec.message();
        if (stopped_by)
            r.message += " (" + stopped_by.message() + ")";
        r.times.queued = r.times.done = clock->now();
        auto rp = std::make_unique<result>(std::move(r));
        // The executor is taken before the handler moves into the function.
        auto hex = asio::get_associated_executor(h, ex);
        asio::dispatch(hex, [h = std::move(h), rp = std::move(rp)]() mutable {
            const error_code ec = rp->ec;
            std::move(h)(ec, std::move(*rp));
        });
    }

    void on_slot_freed() {
        while (!overflow.empty() && pending < opts.queue_limit && !stopped) {
            auto [req, h] = std::move(overflow.front());
            overflow.pop_front();
            accept(std::move(req), std::move(h));
        }
        if (pending == 0) {
            auto drains = std::move(drain_waiters);
            drain_waiters.clear();
            for (auto& h : drains)
                complete_drain(std::move(h));
        }
        if (stopped && on_wire == 0)
            pool.close();
        complete_stop_waiters();
    }

    // async_stop completes once nothing is pending or on the wire and the pool is closed.
    void complete_stop_waiters() {
        if (!stopped || on_wire != 0 || pending != 0 || stop_waiters.empty())
            return;
        pool.close();
        auto waiters = std::move(stop_waiters);
        stop_waiters.clear();
        for (auto& h : waiters)
            complete_drain(std::move(h));
    }

    void stop_and_wait(bool graceful, asio::any_completion_handler<void(error_code)> h) {
        stop_waiters.push_back(std::move(h));
        do_stop(graceful);
        complete_stop_waiters();
    }

    void complete_drain(asio::any_completion_handler<void(error_code)> h) {
        auto hex = asio::get_associated_executor(h, ex);
        asio::dispatch(hex, [h = std::move(h)]() mutable { std::move(h)(error_code{}); });
    }

    void drain(asio::any_completion_handler<void(error_code)> h) {
        if (pending == 0 && overflow.empty()) {
            complete_drain(std::move(h));
            return;
        }
        drain_waiters.push_back(std::move(h));
    }

    void do_stop(bool graceful) {
        if (stopped && graceful)
            return;
        stopped = true;
        for (auto& [key, sc] : scopes)
            sc->timer->cancel();
        while (!overflow.empty()) {
            auto [req, h] = std::move(overflow.front());
            overflow.pop_front();
            deliver_now(std::move(req.custom_id), errc::stopped, std::move(h));
        }
        std::deque<op_ptr> queued;
        for (auto& [key, sc] : scopes) {
            for (auto& op : sc->rules.drain())
                queued.push_back(std::move(op));
        }
        for (auto& op : queued) {
            if (op->res.attempts > 0) {
                finish_stopped(std::move(op)); // a retry waiting for admission
                continue;
            }
            const error_code ec = make_error_code(errc::not_attempted);
            if (stopped_by)
                op->res.message = ec.message() + " (" + stopped_by.message() + ")";
            finish(std::move(op), ec);
        }
        for (request_op* op : sleeping)
            op->retry_timer->cancel();
        if (!graceful || on_wire == 0)
            pool.close();
    }

    // The pool's counters live on `ex`; stats() may be called from any thread, so they are
    // copied as each result is delivered, by finish() under the lock it takes anyway (the
    // caller holds stats_mutex).
    void copy_pool_stats() {
        const pool_stats p = pool.stats();
        counters.connections_opened = p.connects;
        counters.replayed = p.replayed;
        counters.untrusted_connections = p.untrusted;
    }

    stats_snapshot snapshot() {
        std::lock_guard lock(stats_mutex);
        stats_snapshot s = counters;
        s.in_flight = s.submitted - s.succeeded - s.failed;
        return s;
    }

    dispatcher_options opts;
    std::shared_ptr<engine_clock> clock; // admission, retry and hold decisions; never null
    // Everything below is touched only from handlers on `ex`, which must not run them
    // concurrently (a single-threaded io_context, or a strand).
    asio::any_io_executor ex;
    endpoint ep;
    std::optional<asio::ssl::context> tls;
    connection_pool pool;
    completion_parser parser; // one per dispatcher: all parsing happens on `ex`
    detail::secret_scrubber secrets{opts.api_key};
    bool stopped = false;
    error_code stopped_by; // the fatal error that stopped admission, if one did

    std::map<std::string, std::unique_ptr<engine_scope>> scopes; // "" is the endpoint's
    std::deque<std::pair<request, result_handler>> overflow;     // submissions beyond queue_limit
    std::unordered_set<request_op*> sleeping;                    // waiting out a retry delay
    std::vector<asio::any_completion_handler<void(error_code)>> drain_waiters;
    std::vector<asio::any_completion_handler<void(error_code)>> stop_waiters;
    std::size_t pending = 0; // accepted, not yet delivered
    std::size_t on_wire = 0; // handed to the pool

    mutable std::mutex stats_mutex;
    stats_snapshot counters;
};

dispatcher::dispatcher(asio::any_io_executor ex, dispatcher_options opts) {
    opts.validate();
    impl_ = std::make_shared<impl>(std::move(ex), std::move(opts));
}

dispatcher::~dispatcher() {
    if (impl_)
        asio::post(impl_->ex, [i = impl_] { i->do_stop(false); });
}

void dispatcher::async_complete_erased(request req, result_handler h) {
    asio::post(impl_->ex, [i = impl_, req = std::move(req), h = std::move(h)]() mutable {
        i->submit(std::move(req), std::move(h));
    });
}

void dispatcher::async_drain_erased(asio::any_completion_handler<void(error_code)> h) {
    asio::post(impl_->ex, [i = impl_, h = std::move(h)]() mutable { i->drain(std::move(h)); });
}

void dispatcher::async_stop_erased(bool graceful,
                                   asio::any_completion_handler<void(error_code)> h) {
    asio::post(impl_->ex, [i = impl_, graceful, h = std::move(h)]() mutable {
        i->stop_and_wait(graceful, std::move(h));
    });
}

asio::any_io_executor dispatcher::get_executor() const noexcept {
    return impl_->ex;
}

void dispatcher::stop(bool graceful) {
    asio::post(impl_->ex, [i = impl_, graceful] { i->do_stop(graceful); });
}

stats_snapshot dispatcher::stats() const {
    stats_snapshot s = impl_->snapshot();
    return s;
}

const dispatcher_options& dispatcher::options() const noexcept {
    return impl_->opts;
}

} // namespace sluice
