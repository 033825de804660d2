#pragma once

#include <sluice/admission/budget_lease.hpp>
#include <sluice/admission/adaptive_rate.hpp>
#include <sluice/admission/limit_headers.hpp>
#include <sluice/admission/token_bucket.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>

namespace sluice {

/// Limits of one scope (an endpoint, or an endpoint and model), as providers state them.
struct limit_options {
    /// Requests per minute; 0: none configured, so no request limit unless one is learned
    /// from the server (`learn_from_headers`).
    double rpm = 0;
    /// Tokens per minute (prompt estimate + completion budget); 0: none configured, as `rpm`.
    double tpm = 0;
    /// Bucket capacity in seconds of refill. Providers enforce per-minute limits over
    /// sub-minute windows, so the default lets out about one second's worth at once.
    std::chrono::duration<double> burst{1.0};
    /// Learn a limit left at 0 from the server's `x-ratelimit-limit-*` header. A limit not
    /// configured is infinitely high, so the server's is lower and wins, as any lower server
    /// limit does: without it, a run with no tier would send as fast as the connections allow
    /// and live on 429s. false keeps an unconfigured limit unlimited; a configured one is
    /// lowered by the headers either way.
    bool learn_from_headers = true;
    /// The fraction of the account's limits that this limiter has, in (0, 1]: 1/N when N
    /// limiters send on one account (the engine shards of `sluice run --threads N`). `rpm` and
    /// `tpm` are already this share; the server's `x-ratelimit-limit-*` and `-remaining-*`
    /// count the whole account, so they are scaled by it before use. Default 1: the whole.
    double share = 1.0;
    /// The request rate found from 429s while no limit is known (`rpm` and `tpm` 0, none
    /// learned): see `adaptive_rate`. A configured or learned limit always wins.
    adaptive_options adaptive;

    /// Throws std::invalid_argument naming the field when a value is out of range.
    void validate() const;
};

/// Admission for one scope: a request bucket and a token bucket, both of which must be able
/// to pay before a request goes out. Sans I/O: every call takes `now`; the caller owns the
/// waiting (a timer armed for the returned duration) and the order of waiters (FIFO).
///
/// Thread safety: none; the dispatcher calls it from its own strand.
class rate_limiter {
public:
    using clock = token_bucket::clock;
    using time_point = token_bucket::time_point;
    using duration = token_bucket::duration;

    rate_limiter(const limit_options& opts, time_point now);

    /// Admits a request costing `tokens` at `now` and charges both buckets, returning zero;
    /// or charges nothing and returns how long to wait before asking again.
    duration try_admit(time_point now, std::uint64_t tokens);

    /// True when a request costing `tokens` can never be admitted (its cost exceeds the
    /// account's per-minute token limit, `tpm / share`, or the largest request the server was
    /// learned to accept, `learn_too_large`): refuse it instead of sending it.
    bool too_large(std::uint64_t tokens) const noexcept;

    /// The server refused a request estimated at `estimated` tokens as too large (`hint`: its
    /// limit, and what it counted for that request). Our estimate and the server's count
    /// differ, so the server's limit is carried over to our scale (limit x estimated /
    /// requested): from now on a request whose estimate is above that is `too_large`. The
    /// lowest such bound learned is kept.
    void learn_too_large(std::uint64_t estimated, const too_large_hint& hint) noexcept;

    /// The largest estimate `too_large` lets through by what the server taught (0: none).
    double request_cap() const noexcept { return request_cap_; }

    /// Corrects the token books once a response's `usage` shows the real cost.
    void settle(time_point now, std::uint64_t estimated, std::uint64_t actual);

    /// Holds all admission until `until` (a 429's retry hint), draining the buckets so that
    /// the in-flight crowd does not hit the wall again when the hold ends.
    void hold_until(time_point until);

    /// The ticket of the request admitted last: pass it to `reconcile` and `complete` when
    /// that request's response arrives. Tickets count up from 1.
    std::uint64_t last_ticket() const noexcept { return tickets_; }

    /// The admitted request `ticket` has its response (or failed): it is no longer in flight.
    void complete(std::uint64_t ticket);

    /// The server refused request `ticket` with a 429 and did not count it: its cost goes back
    /// to both buckets and it is no longer in flight. Without this a refused request would be
    /// paid twice, once at its admission (or by a `reconcile` that took it off as still in
    /// flight) and again by its retry: a first wave of 64 requests against a server whose
    /// bucket holds 10 would leave a debt of 54 that stalls admission long after the server
    /// has refilled. Call it before `reconcile` with the refusal's own headers, which then cap
    /// the level at what the server says remains. No-op for a ticket not in flight.
    void refused(std::uint64_t ticket);

    /// Reconciles the buckets with the server's own view from `x-ratelimit-*` headers: never
    /// more than the server says remains; a lower server limit is adopted, and so is a limit
    /// that was not configured (with `learn_from_headers`): the bucket starts full and is
    /// clamped like the others. Limit and remaining are scaled by `share`. The headers came
    /// with the response to request `ticket`, sent at `seen`; the server counted as of its
    /// handling of that request, so what it refilled since `seen` is added (up to capacity)
    /// and the requests admitted after it and still in flight are taken off: the server may
    /// not have seen them yet (a new connection still in its handshake, or just on the way).
    /// Without that, every response would hand back the tokens of the requests in flight and
    /// the client would run ahead of the server.
    /// Returns true when a limit was lowered or learned (so the caller can report it once);
    /// `limits()` then holds the new values.
    bool reconcile(time_point now,
                   const rate_limit_headers& headers,
                   time_point seen,
                   std::uint64_t ticket);

    /// Reconciles with headers that describe the server as of `now`, nothing in flight.
    bool reconcile(time_point now, const rate_limit_headers& headers) {
        return reconcile(now, headers, now, tickets_);
    }

    /// A 429 `rate_limit_exceeded` answered request `ticket` at `now`: counted as refused by
    /// the adaptive request rate while no limit is known (neither `rpm` nor `tpm`, configured
    /// or learned). Without a retry hint (`hinted` false) it also cuts that rate (see
    /// `adaptive_rate`), and from then on requests are paced at it. Returns true when this was
    /// the first cut (the scope starts adapting). No-op returning false with
    /// `adaptive.enabled` false or a known limit.
    bool throttled(time_point now, std::uint64_t ticket, bool hinted = false);

    /// The adaptive request rate in use at `now`, per minute; 0 when not adapting (no 429
    /// yet, adaptation off, or a limit is known).
    double adaptive_rpm(time_point now) const noexcept;

    const limit_options& limits() const noexcept { return opts_; }

    /// Shares the account's budget with other processes through `lease` (null: not shared):
    /// an admission must then also be paid from the leased budget, and refunds, settlements,
    /// holds and the server's view go to the shared books too. While the lease runs locally
    /// (its shared state out of reach), the buckets keep to `lease->local_share()` of the
    /// account. `lease` must outlive this limiter.
    void share_budget(budget_lease* lease) noexcept { shared_ = lease; }

    /// Requests the request bucket holds at `now`, negative for a debt; 0 with no request
    /// limit (nothing to hold). For metrics: the books are read, not moved.
    double requests_available(time_point now) const noexcept {
        return opts_.rpm > 0 ? requests_.peek(now) : 0;
    }
    /// Tokens the token bucket holds at `now`, as requests_available.
    double tokens_available(time_point now) const noexcept {
        return opts_.tpm > 0 ? tokens_.peek(now) : 0;
    }

private:
    void follow_shared(time_point now);
    // A request or token limit is configured or learned: the adaptive rate stands aside.
    bool knows_limits() const noexcept { return opts_.rpm > 0 || opts_.tpm > 0; }

    limit_options opts_;
    token_bucket requests_;
    token_bucket tokens_;
    // Paces requests at the adaptive rate while it is active: rate and capacity set from it
    // at every admission.
    adaptive_rate adaptive_;
    token_bucket paced_;
    time_point held_until_{};
    double request_cap_ = 0; // estimate units; 0: none learned
    std::uint64_t tickets_ = 0;
    // Admitted and not yet complete, in ticket order: (ticket, token cost). As many as there
    // are requests on the wire.
    std::deque<std::pair<std::uint64_t, double>> in_flight_;
    budget_lease* shared_ = nullptr;
    double base_share_ = 1.0; // opts_.share as constructed
    double scale_ = 1.0;      // the factor follow_shared applied to it
};

} // namespace sluice
