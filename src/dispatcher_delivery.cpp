#include "dispatcher_impl.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>

// Delivery: every request's result exactly once, the stop (graceful or not) and the drains
// and stop waiters that complete when the engine is empty.

namespace sluice {

// A request that was sent and failed, then stopped while waiting for its retry (a timer,
// a 429 hold, admission): not a final answer. errc::stopped is what a resumed run sends
// again; the last failure is kept in the message.
void dispatcher::impl::finish_stopped(op_ptr op) {
    const std::string last = op->res.message.empty()
                                 ? (op->last_error ? op->last_error.message() : std::string())
                                 : op->res.message;
    op->res.message = "stopped before retrying" + (last.empty() ? "" : "; last failure: " + last);
    finish(std::move(op), errc::stopped);
}

void dispatcher::impl::finish(op_ptr op, error_code ec) {
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
            if (r.times.first_token != timings::time_point{})
                counters.ttft.record(r.times.first_token - r.times.sent);
            for (const auto gap : r.times.token_gaps)
                counters.itl.record(gap);
        }
        counters.latency.record(r.times.done - r.times.queued);
        if (r.times.first_byte != timings::time_point{})
            counters.ttfb.record(r.times.first_byte - r.times.sent);
    }
    recycle(std::move(op->stream));
    const auto& handler = op->handler;
    detail::dispatch_to_handler(ex, loop_ex, handler, [op = std::move(op), ec]() mutable {
        auto h = std::move(op->handler);
        std::move(h)(ec, std::move(op->res));
    });
    --pending;
    on_slot_freed();
}

// Servers echo request headers, the key among them, in error messages (and may in any
// body): it is cut out of everything a result carries before anyone can write it.
void dispatcher::impl::scrub_secrets(result& r) {
    if (!secrets.active())
        return;
    // "[REDACTED]" in place of the key keeps JSON valid, except right after a backslash.
    if (secrets.scrub(r.body) && r.completion.body_is_json)
        r.completion.body_is_json = parser.is_json(r.body);
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
void dispatcher::impl::deliver_now(std::string custom_id, errc e, result_handler h) {
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

void dispatcher::impl::on_slot_freed() {
    while (!overflow.empty() && pending < opts.queue_limit && !stopped) {
        auto [req, h] = std::move(overflow.front());
        overflow.pop_front();
        accept(std::make_unique<detail::request_op>(std::move(req), std::move(h)));
    }
    if (pending == 0) {
        auto drains = std::move(drain_waiters);
        drain_waiters.clear();
        for (auto& h : drains)
            complete_drain(std::move(h));
    }
    if (stopped && on_wire == 0)
        close_pools();
    complete_stop_waiters();
}

// async_stop completes once nothing is pending or on the wire and the pool is closed.
void dispatcher::impl::complete_stop_waiters() {
    if (!stopped || on_wire != 0 || pending != 0 || stop_waiters.empty())
        return;
    close_pools();
    auto waiters = std::move(stop_waiters);
    stop_waiters.clear();
    for (auto& h : waiters)
        complete_drain(std::move(h));
}

void dispatcher::impl::stop_and_wait(bool graceful,
                                     asio::any_completion_handler<void(error_code)> h) {
    stop_waiters.push_back(std::move(h));
    do_stop(graceful);
    complete_stop_waiters();
}

void dispatcher::impl::complete_drain(asio::any_completion_handler<void(error_code)> h) {
    auto hex = asio::get_associated_executor(h, ex);
    asio::dispatch(hex, [h = std::move(h)]() mutable { std::move(h)(error_code{}); });
}

void dispatcher::impl::drain(asio::any_completion_handler<void(error_code)> h) {
    if (pending == 0 && overflow.empty()) {
        complete_drain(std::move(h));
        return;
    }
    drain_waiters.push_back(std::move(h));
}

void dispatcher::impl::do_stop(bool graceful) {
    if (stopped && graceful)
        return;
    stopped = true;
    for (auto& e : endpoints)
        if (e->budget)
            e->budget->close(); // what it holds goes back to the others
    for (auto& e : endpoints)
        for (auto& [key, sc] : e->scopes)
            sc->timer->cancel();
    for (auto& [model, line] : lines) {
        ++line->generation;
        line->timer->cancel();
    }
    while (!overflow.empty()) {
        auto [req, h] = std::move(overflow.front());
        overflow.pop_front();
        deliver_now(std::move(req.custom_id), errc::stopped, std::move(h));
    }
    std::deque<op_ptr> queued;
    for (auto& e : endpoints)
        for (auto& [key, sc] : e->scopes) {
            for (auto& op : sc->rules.drain())
                queued.push_back(std::move(op));
        }
    for (auto& [model, line] : lines) {
        for (auto& op : line->ops)
            queued.push_back(std::move(op));
        line->ops.clear();
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
        close_pools();
}

void dispatcher::impl::close_pools() {
    for (auto& e : endpoints)
        e->pool.close();
}

// The pool's counters live on `ex`; stats() may be called from any thread, so they are
// copied as each result is delivered, by finish() under the lock it takes anyway (the
// caller holds stats_mutex).
void dispatcher::impl::copy_pool_stats() {
    counters.connections_opened = counters.replayed = counters.untrusted_connections = 0;
    for (auto& e : endpoints) {
        const pool_stats p = e->pool.stats();
        counters.connections_opened += p.connects;
        counters.replayed += p.replayed;
        counters.untrusted_connections += p.untrusted;
    }
}

stats_snapshot dispatcher::impl::snapshot() {
    std::lock_guard lock(stats_mutex);
    stats_snapshot s = counters;
    // Read under the lock, after `counters`: a request counted as delivered there was counted
    // as submitted before, so in_flight never goes below zero.
    s.submitted = submitted.load(std::memory_order_relaxed);
    s.admitted = admitted.load(std::memory_order_relaxed);
    s.in_flight = s.submitted - s.succeeded - s.failed;
    if (primary().budget)
        s.shared_budget = primary().budget->stats();
    return s;
}

} // namespace sluice
