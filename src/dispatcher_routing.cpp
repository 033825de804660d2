#include "dispatcher_impl.hpp"

#include <algorithm>
#include <string>

// Several endpoints: each its own pool and scopes; requests wait in one line per model and go,
// head first, to an endpoint that serves the model and can admit them soonest (the router's
// order, each scope's own answer); each endpoint's circuit breaker hears of every response.

namespace sluice {

namespace detail {

engine_endpoint::engine_endpoint(asio::any_io_executor ex,
                                 dispatcher_options o,
                                 std::size_t i,
                                 bool several_endpoints)
    : opts(std::move(o))
    , index(i)
    , several(several_endpoints)
    , ep(parse_endpoint(opts.base_url))
    , tls(ep.tls ? std::optional<asio::ssl::context>(make_client_tls_context(opts.tls))
                 : std::nullopt)
    , pool(ex, ep, make_headers(), opts.pool, tls ? &*tls : nullptr, proxy_for(opts, ep))
    , budget(i == 0 ? make_budget_client(ex, opts) : nullptr) {}

// The shared budget's member, when one is configured; its key defaults to the account's (the
// endpoint's URL and key, hashed).
std::shared_ptr<budget_client> engine_endpoint::make_budget_client(const asio::any_io_executor& ex,
                                                                   const dispatcher_options& o) {
    if (!o.shared_budget.enabled())
        return nullptr;
    shared_budget_options sb = o.shared_budget;
    if (sb.key.empty())
        sb.key = default_budget_key(o.base_url, o.api_key);
    return std::make_shared<budget_client>(ex, std::move(sb), o.log);
}

engine_scope&
engine_endpoint::scope_for(const request& r, engine_clock& clock, asio::any_io_executor ex) {
    const std::string& key = scope_key(r.model, opts.model_limits, opts.per_model_limits);
    if (auto it = scopes.find(key); it != scopes.end())
        return *it->second;
    // Created on first use: a model under per_model_limits (its own buckets, endpoint limits),
    // a model of model_limits, and the endpoint's own scope.
    const limit_options& limits = scope_limits(key, opts.limits, opts.model_limits);
    std::string name = key;
    if (several)
        name = key.empty() ? opts.endpoint_name : opts.endpoint_name + "/" + key;
    engine_scope& sc = *scopes
                            .emplace(key,
                                     std::make_unique<engine_scope>(
                                         limits, opts.retry, clock, std::move(ex), std::move(name)))
                            .first->second;
    if (budget) // the scope's limiter pays from its lease of the shared budget too
        sc.rules.limiter().share_budget(&budget->lease(sc.rules.name()));
    return sc;
}

// The proxy of the endpoint's connections: none when not configured or when no_proxy names
// the endpoint.
proxy_endpoint engine_endpoint::proxy_for(const dispatcher_options& o, const endpoint& ep) {
    if (o.proxy.url.empty() || no_proxy_matches(o.proxy.no_proxy, ep.host, ep.port))
        return {};
    error_code ec;
    return proxy_endpoint::parse(o.proxy.url, ec); // validate() checked it
}

endpoint engine_endpoint::parse_endpoint(const std::string& url) {
    error_code ec;
    auto ep = endpoint::parse(url, ec);
    if (ec)
        throw std::invalid_argument("base_url: not an http:// or https:// URL: " + url);
    return ep;
}

request_headers engine_endpoint::make_headers() const {
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

} // namespace detail

detail::route_line& dispatcher::impl::line_for(const std::string& model) {
    if (auto it = lines.find(model); it != lines.end())
        return *it->second;
    return *lines.emplace(model, std::make_unique<route_line>(clock->make_timer(ex))).first->second;
}

// Routes the head of every line while an endpoint takes it, taking the lines in turn.
void dispatcher::impl::pump_lines() {
    bool routed = true;
    while (routed && !stopped) {
        routed = false;
        for (auto& [model, line] : lines) {
            if (stopped)
                return;
            if (!line->ops.empty() && route_head(model, *line, clock->now()))
                routed = true;
        }
    }
}

// The head of `line` goes to the first candidate whose scope admits it now; else the line's
// timer is armed for the soonest moment one can (a bucket's wait, a breaker's probe). True
// when the head left the line (sent, or failed).
bool dispatcher::impl::route_head(const std::string& model,
                                  route_line& line,
                                  engine_clock::time_point now) {
    if (line.ops.front()->deadline <= now) {
        op_ptr op = std::move(line.ops.front());
        line.ops.pop_front();
        fail_deadline(std::move(op), now, "passed while it waited for admission");
        return true;
    }
    if (!router->anyone_serves(model)) {
        op_ptr op = std::move(line.ops.front());
        line.ops.pop_front();
        op->res.message = "no endpoint serves the model \"" + model +
                          "\" (every endpoint has a models list, and none names it)";
        finish(std::move(op), errc::client_error);
        return true;
    }
    if (!router->can_serve(model, breakers)) {
        // Every endpoint of the model is retired: as with one endpoint, the run stops.
        op_ptr op = std::move(line.ops.front());
        line.ops.pop_front();
        // Why the endpoints went: the request's own refusal when it had one, else quota.
        const error_code ec = op->last_error == errc::unauthorized
                                  ? op->last_error
                                  : error_code(errc::quota_exhausted);
        op->res.message = "every endpoint serving the model \"" + model +
                          "\" is retired (quota exhausted or key refused)" +
                          (op->res.message.empty() ? "" : "; last failure: " + op->res.message);
        const std::string why = op->res.message;
        finish(std::move(op), ec);
        on_fatal(ec, why);
        return true;
    }
    router->candidates(model, now, breakers, candidates);
    op_ptr op = std::move(line.ops.front());
    line.ops.pop_front();
    std::optional<engine_clock::duration> soonest;
    std::string refused;
    std::size_t refusals = 0;
    for (const std::size_t e : candidates) {
        engine_endpoint& target = *endpoints[e];
        if (target.on_wire >= opts.pool.max_connections)
            continue; // its response will pump again
        engine_scope& sc = target.scope_for(op->req, *clock, ex);
        const std::uint64_t cost = op->cost;
        sc.rules.push_front(std::move(op), cost);
        auto step = sc.rules.next(now);
        if (auto* yes = std::get_if<scope<op_ptr>::admitted>(&step)) {
            op = std::move(yes->item);
            op->res.times.admitted = now;
            op->ticket = yes->ticket;
            op->scope = &sc;
            op->target = &target;
            op->probe = breakers[e].on_send(now);
            router->routed(e);
            {
                std::lock_guard lock(stats_mutex);
                observe(sc, now);
            }
            observe_endpoint(target, now);
            start_attempt(std::move(op));
            return true;
        }
        if (auto* no = std::get_if<scope<op_ptr>::refused>(&step)) {
            op = std::move(no->item);
            refused = std::move(no->reason);
            ++refusals;
            continue;
        }
        op = sc.rules.pop_front();
        const auto wait = std::get<engine_clock::duration>(step);
        soonest = soonest ? std::min(*soonest, wait) : wait;
    }
    if (refusals > 0 && refusals == router->live_count(model, breakers)) {
        // Every endpoint that may ever take it refused it as too large for its limits.
        op->res.message = std::move(refused);
        finish(std::move(op), errc::request_too_large);
        return true;
    }
    // When to ask again: the soonest bucket's wait, or a breaker's probe moment (one already
    // due belongs to a candidate whose pool is full: its response asks again).
    std::optional<engine_clock::time_point> when;
    if (soonest)
        when = now + *soonest;
    const auto reopen = router->next_reopen(model, breakers);
    if (reopen && *reopen > now && (!when || *reopen < *when))
        when = *reopen;
    if (when && op->deadline <= *when) {
        fail_deadline(
            std::move(op), now, "would pass before the rate limits admit it", *when - now);
        return true;
    }
    line.ops.push_front(std::move(op));
    if (when)
        arm_line_timer(line, *when);
    return false;
}

void dispatcher::impl::arm_line_timer(route_line& line, engine_clock::time_point when) {
    if (line.armed && line.armed_for <= when)
        return;
    if (line.armed)
        line.timer->cancel(); // its handler finds a newer generation and does nothing
    line.armed = true;
    line.armed_for = when;
    const std::uint64_t generation = ++line.generation;
    line.timer->async_wait_until(when, [self = shared_from_this(), &line, generation](error_code) {
        if (generation != line.generation)
            return;
        line.armed = false;
        self->pump();
    });
}

bool dispatcher::impl::on_endpoint_response(request_op& op,
                                            const http_response& resp,
                                            const response_action& action,
                                            engine_clock::time_point now) {
    engine_endpoint& target = *op.target;
    circuit_breaker& breaker = breakers[target.index];
    {
        std::lock_guard lock(stats_mutex);
        endpoint_stats& st = *target.stats;
        if (resp.status == 429)
            ++st.rate_limited;
        else if (action.what == response_action::kind::deliver && !action.ec)
            ++st.ok;
        else
            ++st.errors;
    }
    const std::uint64_t opened = breaker.opened();
    if (resp.ec || resp.status >= 500)
        breaker.on_failure(now, op.probe);
    else
        breaker.on_success(now, op.probe);
    op.probe = false;
    const std::string& name = target.opts.endpoint_name;
    if (breaker.opened() != opened)
        opts.log.log(log_level::warning,
                     "endpoint " + name + " taken out for " +
                         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            breaker.reopens_at() - now)
                                            .count()) +
                         " ms after failures in a row (last: " +
                         (resp.ec ? resp.ec.message() : "HTTP " + std::to_string(resp.status)) +
                         "); its requests go to the other endpoints");
    bool retired = false;
    if (action.what == response_action::kind::stop_run &&
        (action.ec == errc::quota_exhausted || action.ec == errc::unauthorized)) {
        const bool first = !breaker.retired();
        breaker.retire();
        if (router->can_serve(op.req.model, breakers)) {
            retired = true;
            if (first)
                opts.log.log(log_level::warning,
                             "endpoint " + name + " retired for the run: " + action.ec.message() +
                                 "; its requests go to the other endpoints");
        }
    }
    observe_endpoint(target, now);
    return retired;
}

void dispatcher::impl::observe_endpoint(engine_endpoint& e, engine_clock::time_point now) {
    if (!e.stats)
        return;
    std::lock_guard lock(stats_mutex);
    e.stats->state = std::string(to_string(breakers[e.index].current(now)));
    e.stats->opened = breakers[e.index].opened();
}

} // namespace sluice
