#include "dispatcher_impl.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/beast/core/error.hpp>

#include <chrono>
#include <cmath>
#include <optional>
#include <string>

// What a response leads to: the facts the scope's rules take, their answer carried out, and
// the failure message a result holds.

namespace sluice {

namespace {

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
        // Never followed: the request, and the key with it, go to the base URL only.
        if (resp.status >= 300 && resp.status < 400)
            msg += " (a redirect, not followed)";
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

// Once per scope: the limits now in use came from the server's headers (lower than
// configured, or not configured), so a run that is slower than expected says why. The figures
// are the account's, as the server sent them, not this engine's share.
std::string server_limits_message(const detail::engine_scope& sc, const limit_options& l) {
    auto per_minute = [&](double v, const char* unit) {
        return v > 0 ? std::to_string(std::llround(v / l.share)) + " " + unit + "s/min"
                     : std::string("no ") + unit + " limit";
    };
    return "using the server's rate limits" +
           (sc.rules.name().empty() ? std::string() : " for " + sc.rules.name()) + ": " +
           per_minute(l.rpm, "request") + ", " + per_minute(l.tpm, "token") +
           " (its x-ratelimit-limit-* headers: lower than configured, or not configured)";
}

// Once per scope: the server refuses without saying its limits, so the scope paces itself
// (limit_options::adaptive); the progress line and the summary show the rate it finds.
std::string adaptive_message(detail::engine_scope& sc, engine_clock::time_point now) {
    return "no rate limits known" +
           (sc.rules.name().empty() ? std::string() : " for " + sc.rules.name()) +
           " and a 429 with neither x-ratelimit-* headers nor a retry hint: finding the rate "
           "from the 429s, starting at " +
           std::to_string(std::llround(sc.rules.limiter().adaptive_rpm(now))) + " requests/min";
}

// The facts of one response as the scope's rules take them: the outcome (transport error,
// status, the provider's error, hints) and the server's rate-limit headers. `parsed` receives
// the body's completion; the event's views point into it and into `resp`. `assembled`, for a
// streamed answer: `parsed` already holds what the parser would read from the assembled body,
// and this is the parser's error; the body is then not parsed again.
void read_outcome(const http_response& resp,
                  completion_parser& parser,
                  completion& parsed,
                  completion_fields fields,
                  const std::optional<error_code>& assembled,
                  response_event& event) {
    const auto meta = resp.meta();
    attempt_outcome& outcome = event.outcome;
    event.headers = parse_rate_limit_headers(meta);
    if (resp.ec) {
        parsed = completion{};
        outcome.transport_error = resp.ec;
        return;
    }
    outcome.status = resp.status;
    const error_code pec = assembled ? *assembled : parser.parse(resp.body, parsed, fields);
    const bool success_status = resp.status >= 200 && resp.status < 300;
    if (success_status && pec)
        outcome.transport_error =
            says_not_json(resp.content_type) ? errc::unexpected_content_type : pec;
    // An error event mid-stream: the server failed while generating, as with a 5xx.
    if (success_status && resp.streamed && parsed.error)
        outcome.transport_error = errc::server_error;
    if (parsed.error) {
        outcome.provider_code =
            parsed.error->code.empty() ? parsed.error->type : parsed.error->code;
        outcome.provider_message = parsed.error->message;
    }
    // The wall clock only for a hint that may be an HTTP date: most answers carry none.
    if (!meta.retry_after.empty() || !meta.retry_after_ms.empty())
        outcome.retry_after = parse_retry_after(meta, std::chrono::system_clock::now());
    if (meta.should_retry == "true")
        outcome.should_retry = true;
    else if (meta.should_retry == "false")
        outcome.should_retry = false;
    if (success_status && !pec && parsed.usage)
        event.usage_tokens = parsed.usage->total_tokens;
}

} // namespace

// A streamed answer: the completion assembled from its events becomes the body that the rest
// reads as it reads a whole answer, and the attempt's event timings go to the result. Returns
// whether the attempt's answer was a stream (its reader then says what it held). When the
// body was assembled, `assembled` holds the error the parser would give it, and the result's
// completion what the parser would read from it: the chunks were parsed already. Without
// `streamed_body` the answer is not written at all.
bool dispatcher::impl::take_stream(request_op& op,
                                   http_response& resp,
                                   std::optional<error_code>& assembled) {
    op.res.streamed = resp.streamed;
    op.res.times.first_token = {};
    op.res.times.token_gaps.clear();
    if (!op.stream || !resp.streamed)
        return false;
    stream_reader& s = *op.stream;
    if (!resp.ec) {
        if (const error_code ec = opts.streamed_body ? s.finish(resp.body) : s.finish()) {
            resp.ec = ec;
            resp.failed_step = "read";
        } else {
            assembled = s.result(op.res.completion, opts.fields);
        }
    }
    op.res.times.first_token = s.first_token();
    op.res.times.token_gaps = s.token_gaps();
    return true;
}

// Turns the response into the facts the scope rules take (response_event) and carries out
// their answer.
void dispatcher::impl::on_response(op_ptr op, http_response&& resp) {
    const auto now = clock->now();
    op->res.times.sent = resp.sent;
    op->res.times.first_byte = resp.first_byte;
    std::optional<error_code> assembled;
    const bool streamed = take_stream(*op, resp, assembled);

    response_event event;
    completion& parsed = op->res.completion;
    read_outcome(resp, parser, parsed, opts.fields, assembled, event);
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
    if (action.adaptive_started)
        opts.log.log(log_level::info, adaptive_message(sc, now));
    {
        std::lock_guard lock(stats_mutex);
        if (action.rate_limited) {
            ++counters.rate_limited;
            ++stats_of(sc).rate_limited;
        }
        if (action.limits_learned)
            stats_of(sc).limits_learned = true;
        observe(sc, now);
    }

    op->res.status = resp.status;
    op->res.request_id = std::move(resp.request_id);
    op->res.body = std::move(resp.body);

    const auto why = [&](const error_code& ec) {
        std::string text = describe_failure(ec, resp, parsed);
        if (streamed)
            text += " (stream: " + op->stream->describe() + ")";
        return text;
    };
    // With several endpoints: the breaker hears of it, and a quota or key refusal retires the
    // endpoint while another serves the model, the request going back to its line.
    if (several && on_endpoint_response(*op, resp, action, now)) {
        op->last_error = action.ec;
        op->res.message = why(action.ec);
        line_for(op->req.model).ops.push_front(std::move(op));
        return;
    }
    using kind = response_action::kind;
    // The request's deadline: an attempt cut by it, or a retry whose wait (backoff or the
    // server's hint) would end at or past it, ends the request now. Never waited out in vain.
    if (op->deadline != engine_clock::time_point::max()) {
        const bool cut = resp.ec == boost::beast::error::timeout &&
                         std::chrono::steady_clock::now() >= op->not_after;
        if (cut || (action.what == kind::retry && now + action.delay >= op->deadline)) {
            op->last_error = action.ec;
            op->res.message = why(action.ec);
            fail_deadline(std::move(op),
                          now,
                          cut ? "passed during the attempt" : "would pass before the next attempt",
                          cut ? engine_clock::duration{0} : engine_clock::duration(action.delay));
            return;
        }
    }
    switch (action.what) {
    case kind::deliver:
        finish(std::move(op), {});
        return;
    case kind::retry:
        op->last_error = action.ec;
        op->res.message = why(action.ec);
        schedule_retry(std::move(op), action.delay, action.ec);
        return;
    case kind::stopped:
        // Stopped before it could be retried: the line is not answered, so a resumed run
        // must send it again; the last failure stays in the message.
        op->last_error = action.ec;
        op->res.message = why(action.ec);
        finish_stopped(std::move(op));
        return;
    case kind::give_up:
    case kind::stop_run:
        if (action.cause) {
            // The endpoint is failing more than the budget allows: no retry storm.
            op->res.message = "retry budget spent; last failure: " + why(action.cause);
        } else {
            op->res.message = why(action.ec);
            if (op->res.attempts > 1)
                op->res.message += " (after " + std::to_string(op->res.attempts) + " attempts)";
        }
        if (action.what == kind::stop_run)
            on_fatal(action.ec, op->res.message);
        finish(std::move(op), action.ec);
        return;
    }
}

void dispatcher::impl::schedule_retry(op_ptr op,
                                      std::chrono::nanoseconds delay,
                                      const error_code& cause) {
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
            // limits too. It joins the front, having waited longest: of its model's line with
            // several endpoints (any endpoint may take it), else of its scope.
            if (self->several) {
                self->line_for(op->req.model).ops.push_front(std::move(op));
                self->pump();
                return;
            }
            engine_scope& sc = *op->scope;
            const std::uint64_t cost = op->cost;
            sc.rules.push_front(std::move(op), cost);
            self->pump();
        });
}

// The request's deadline ends it: the message says how long it was, when it was found to
// pass, the wait it would have needed and the last failure, if an attempt was made.
void dispatcher::impl::fail_deadline(op_ptr op,
                                     engine_clock::time_point now,
                                     std::string_view what,
                                     engine_clock::duration wait) {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    std::string msg = "deadline exceeded: the request's deadline of " +
                      std::to_string(op->deadline_length.count()) + " ms " + std::string(what);
    if (wait > engine_clock::duration::zero())
        msg += " (a wait of " + std::to_string(duration_cast<milliseconds>(wait).count()) +
               " ms, " + std::to_string(duration_cast<milliseconds>(op->deadline - now).count()) +
               " ms left)";
    if (op->res.attempts > 0)
        msg += " after " + std::to_string(op->res.attempts) +
               (op->res.attempts == 1 ? " attempt" : " attempts");
    if (!op->res.message.empty())
        msg += "; last failure: " + op->res.message;
    op->res.message = std::move(msg);
    finish(std::move(op), errc::deadline_exceeded);
}

// Quota exhaustion cannot be fixed by waiting: stop admitting, let the wire drain, and
// hand back everything not yet sent as not attempted.
void dispatcher::impl::on_fatal(const error_code& ec, const std::string& why) {
    if (!stopped) {
        stopped_by = ec;
        // `why` is the result's message, scrubbed of the key like everything delivered.
        std::string detail = why;
        secrets.scrub(detail);
        // A transport failure's message already says what ec says ("handshake: the server's
        // TLS certificate was rejected (certificate has expired)"): not twice.
        if (detail.find(ec.message()) == std::string::npos)
            detail = ec.message() + " (" + detail + ")";
        opts.log.log(log_level::error, detail + "; no further requests are sent");
    }
    do_stop(true);
}

} // namespace sluice
