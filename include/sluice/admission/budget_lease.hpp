#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

namespace sluice {

/// One lease call of a member to the shared budget of one scope: what it asks for, what it
/// gives back and the corrections it carries. Built by `budget_lease::prepare`, sent by the
/// driver (a Redis Lua script in `src/redis/`), answered with a `lease_reply`. Rates are the
/// account's, per second; token and request amounts are in the bucket's units.
struct lease_call {
    /// Refill per second and capacity of the shared request and token buckets (the account's
    /// limits in use: configured, or lowered by the server's headers); a rate of 0: that
    /// bucket has no limit and is not shared.
    double request_rate = 0;
    double request_capacity = 0;
    double token_rate = 0;
    double token_capacity = 0;
    /// Budget wanted on top of what the member holds.
    double want_requests = 0;
    double want_tokens = 0;
    /// The least grant that lets the member send its next request (1 request, its cost in
    /// tokens, each at most the capacity): a grant below it is no grant.
    double need_requests = 0;
    double need_tokens = 0;
    /// Given back to the shared buckets: unused budget (expired or a stop), 429 refunds,
    /// usage settlements (negative: a debt the member ran up).
    double return_requests = 0;
    double return_tokens = 0;
    /// The server's view: the shared bucket holds at most this (x-ratelimit-remaining-*, less
    /// what this member holds and has on the wire).
    std::optional<double> clamp_requests;
    std::optional<double> clamp_tokens;
    /// Hold the whole budget this long from now (a 429's retry hint); zero: none.
    std::chrono::milliseconds hold{0};
    /// A bucket that does not exist yet starts full (the first members) or empty (a member
    /// coming back after the shared state was lost: the account's bucket is not full then).
    bool start_full = true;
    /// The member leaves: everything it holds is returned and it no longer counts.
    bool leave = false;
};

/// The shared state's answer to a `lease_call`.
struct lease_reply {
    double granted_requests = 0;
    double granted_tokens = 0;
    /// Members registered and alive, this one included (at least 1).
    std::uint64_t members = 1;
    /// With a grant: how long until it may be used (the shared buckets reserve ahead of their
    /// refill). Without: how long until a call can be granted.
    std::chrono::milliseconds wait{0};
    /// The shared hold still running (a 429 another member saw), zero: none.
    std::chrono::milliseconds held{0};
};

/// How a member leases its budget: the block size and the lease's lifetime.
struct lease_options {
    /// Seconds of the shared rate one lease asks for, divided by the members: small enough
    /// that no member sits on budget the others need, large enough that Redis is asked a few
    /// times a second, not per request.
    std::chrono::duration<double> block{0.25};
    /// Budget unused this long after its grant goes back to the shared buckets; a member not
    /// heard of for this long no longer counts (it renews every third of it).
    std::chrono::milliseconds ttl{1000};
};

/// A member's books for one scope of a shared rate-limit budget, sans I/O: what it holds of
/// the shared buckets, what it owes them, and whether it shares at all (`state`). The
/// scope's `rate_limiter` asks `try_take` after its own buckets agreed; a driver (Redis, in
/// `src/redis/`) asks `due`/`prepare` when to call the shared state and reports the answer
/// with `on_reply`, or `on_lost` when the shared state is out of reach: the member then runs
/// on its local buckets scaled to `local_share()` until `on_rejoin`.
///
/// Thread safety: none; the limiter and the driver run on the same executor.
class budget_lease {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;

    enum class state {
        joining, ///< waiting for the first grant: admission waits
        shared,  ///< admission pays from leased budget
        local,   ///< the shared state is out of reach: the local buckets, at 1/N, decide
    };

    explicit budget_lease(const lease_options& opts = {});

    // --- the limiter's side ---------------------------------------------------------------

    /// The account's limits of the scope, per minute, and its burst: the shared buckets' shape
    /// (0: no limit, not shared). The limiter passes them before each admission.
    void set_limits(double rpm, double tpm, std::chrono::duration<double> burst) noexcept;

    /// Pays one request costing `tokens` from the leased budget and returns zero; or pays
    /// nothing and returns how long to wait before asking again (a lease is on its way: the
    /// driver wakes the engine when it lands). Always zero in the `local` state.
    duration try_take(time_point now, double tokens);

    /// Gives back to the shared buckets (with the next call): a 429's refund (the server did
    /// not count it), an overestimate settled from `usage`; negative: a debt.
    void give_back(double requests, double tokens) noexcept;

    /// A 429's hint: hold the shared budget until `until` (every member waits), and drop what
    /// this member holds: the account's bucket is empty.
    void hold_until(time_point until);

    /// The server's `x-ratelimit-remaining-*` view as of `seen`, less what this member has on
    /// the wire that the server may not have counted (`later_*`): the shared buckets are
    /// lowered to it (never raised).
    void observe_server(time_point now,
                        std::optional<double> remaining_requests,
                        std::optional<double> remaining_tokens,
                        time_point seen,
                        double later_requests,
                        double later_tokens);

    /// The fraction of the account's limits the local buckets keep to: 1/N (N: members last
    /// seen) in the `local` state, else 1 (the leases decide).
    double local_share() const noexcept;

    // --- the driver's side ----------------------------------------------------------------

    /// True when a call is wanted at `now`: the first, a renewal (below half a block with
    /// requests waiting, or a grant hoped for), a hold or budget to give back, a heartbeat.
    bool due(time_point now) const noexcept;

    /// When `due` becomes true if nothing else happens (a heartbeat, an expiry, a retry).
    time_point next_due(time_point now) const noexcept;

    /// The call to send now; corrections move into it (a failed call loses them: the shared
    /// state they belong to is in doubt anyway).
    lease_call prepare(time_point now);

    /// The call prepared last was answered.
    void on_reply(time_point now, const lease_reply& reply);

    /// The shared state is out of reach: run locally on 1/N from now.
    void on_lost();

    /// The shared state is back: join again (admission waits for the first grant).
    void on_rejoin();

    /// The call that gives back everything held and leaves.
    lease_call leave(time_point now);

    /// Called when a call becomes due sooner than the driver planned (a request waits for
    /// budget, the lease runs low, a hold): the driver wakes up.
    void on_due(std::function<void()> notify) { notify_ = std::move(notify); }

    state current() const noexcept { return state_; }
    std::uint64_t members() const noexcept { return members_; }
    /// Leased and not yet used, reservations included.
    double requests_held() const noexcept { return held_requests_ + pending_requests_; }
    double tokens_held() const noexcept { return held_tokens_ + pending_tokens_; }
    const lease_options& options() const noexcept { return opts_; }

private:
    double request_rate() const noexcept { return rpm_ / 60.0; }
    double token_rate() const noexcept { return tpm_ / 60.0; }
    double request_block() const noexcept;
    double token_block() const noexcept;
    bool limited() const noexcept { return rpm_ > 0 || tpm_ > 0; }
    void expire(time_point now) noexcept;
    void mature(time_point now) noexcept;
    void notify();

    lease_options opts_;
    state state_ = state::joining;
    double rpm_ = 0;
    double tpm_ = 0;
    double burst_ = 1.0;
    double held_requests_ = 0;
    double held_tokens_ = 0;
    time_point expires_{};
    // Granted ahead of the shared refill: usable from `pending_at_`.
    double pending_requests_ = 0;
    double pending_tokens_ = 0;
    time_point pending_at_{};
    double return_requests_ = 0;
    double return_tokens_ = 0;
    time_point hold_{}; // pending hold to publish (a later one wins)
    time_point held_until_{};
    struct server_view {
        double value;
        time_point at;
    };
    std::optional<server_view> server_requests_;
    std::optional<server_view> server_tokens_;
    std::uint64_t members_ = 1;
    time_point last_call_{};
    time_point retry_at_{};    // a call that granted nothing: the next not before
    time_point last_demand_{}; // the last try_take
    double need_tokens_ = 0;   // the cost of the request that waits
    bool waiting_ = false;     // try_take found too little
    bool ever_joined_ = false; // a bucket created after a loss starts empty
    bool called_ = false;      // a first call was made
    bool notified_ = false;    // notify_ called since the last call
    std::function<void()> notify_;
};

} // namespace sluice
