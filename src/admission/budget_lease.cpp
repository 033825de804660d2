#include <sluice/admission/budget_lease.hpp>

#include <algorithm>
#include <cmath>

namespace sluice {

namespace {

// Admission asks again this often while a lease is on its way; the driver's wake-up usually
// comes first.
constexpr std::chrono::milliseconds poll{50};

// A reservation is used this long after the shared refill covers it: requests of several
// processes reach the server by different connections, and one that arrives a little ahead
// of another sent before it would meet a bucket a few milliseconds short. Reservations are
// timed by Redis, so the guard delays each block without adding up.
constexpr std::chrono::milliseconds reservation_guard{5};

// The shared buckets hold this much less than a burst. Leased budget is spent a little after
// its grant (a new connection's handshake, a process starting), and a server bucket that was
// full meanwhile lost that refill: the headroom absorbs about a tenth of a second of such
// delay. It costs a tenth of one burst, once, when the buckets start full.
constexpr double headroom = 0.1;

double shared_capacity(double rate, double burst) noexcept {
    return std::max(1.0, rate * burst * (1 - headroom));
}

double seconds(budget_lease::duration d) noexcept {
    return std::chrono::duration<double>(d).count();
}

} // namespace

budget_lease::budget_lease(const lease_options& opts)
    : opts_(opts) {}

void budget_lease::set_limits(double rpm,
                              double tpm,
                              std::chrono::duration<double> burst) noexcept {
    rpm_ = rpm > 0 && std::isfinite(rpm) ? rpm : 0;
    tpm_ = tpm > 0 && std::isfinite(tpm) ? tpm : 0;
    burst_ = burst.count() > 0 ? burst.count() : 1.0;
}

double budget_lease::request_block() const noexcept {
    if (rpm_ <= 0)
        return 0;
    const double capacity = shared_capacity(request_rate(), burst_);
    const double block = request_rate() * opts_.block.count() / static_cast<double>(members_);
    return std::min(capacity, std::max(1.0, block));
}

double budget_lease::token_block() const noexcept {
    if (tpm_ <= 0)
        return 0;
    const double capacity = shared_capacity(token_rate(), burst_);
    const double block = token_rate() * opts_.block.count() / static_cast<double>(members_);
    return std::min(capacity, std::max({1.0, block, need_tokens_}));
}

void budget_lease::mature(time_point now) noexcept {
    if (now < pending_at_ || (pending_requests_ == 0 && pending_tokens_ == 0))
        return;
    held_requests_ += pending_requests_;
    held_tokens_ += pending_tokens_;
    pending_requests_ = 0;
    pending_tokens_ = 0;
    expires_ = pending_at_ + opts_.ttl;
}

void budget_lease::expire(time_point now) noexcept {
    if (now < expires_ || (held_requests_ == 0 && held_tokens_ == 0))
        return;
    // Budget kept past its lease would add to what the shared buckets refilled meanwhile:
    // together more than the account's window allows. A debt is paid back the same way.
    return_requests_ += held_requests_;
    return_tokens_ += held_tokens_;
    held_requests_ = 0;
    held_tokens_ = 0;
}

budget_lease::duration budget_lease::try_take(time_point now, double tokens) {
    if (state_ == state::local || !limited())
        return duration::zero();
    last_demand_ = now;
    if (now < held_until_)
        return held_until_ - now;
    if (state_ == state::joining) {
        waiting_ = true;
        need_tokens_ = tokens;
        return poll;
    }
    mature(now);
    expire(now);
    const double token_need = std::min(tokens, shared_capacity(token_rate(), burst_));
    const bool requests_ok = rpm_ <= 0 || held_requests_ >= 1.0 - 1e-9;
    const bool tokens_ok = tpm_ <= 0 || held_tokens_ >= token_need - 1e-9;
    if (!requests_ok || !tokens_ok) {
        // A reservation covers it: wait exactly until it may be used.
        const bool covered = (rpm_ <= 0 || held_requests_ + pending_requests_ >= 1.0 - 1e-9) &&
                             (tpm_ <= 0 || held_tokens_ + pending_tokens_ >= token_need - 1e-9);
        if (covered && pending_at_ > now)
            return pending_at_ - now;
        waiting_ = true;
        need_tokens_ = tokens;
        notify();
        return poll;
    }
    // A request larger than one burst takes what is held and leaves a debt, as the local
    // bucket does.
    if (rpm_ > 0)
        held_requests_ -= 1;
    if (tpm_ > 0)
        held_tokens_ -= tokens;
    waiting_ = false;
    if ((rpm_ > 0 && held_requests_ + pending_requests_ < request_block() / 2) ||
        (tpm_ > 0 && held_tokens_ + pending_tokens_ < token_block() / 2))
        notify();
    return duration::zero();
}

void budget_lease::notify() {
    if (notified_ || !notify_)
        return;
    notified_ = true;
    notify_();
}

void budget_lease::give_back(double requests, double tokens) noexcept {
    if (state_ == state::local)
        return; // the shared books are in doubt; the local buckets were corrected
    if (rpm_ > 0 && std::isfinite(requests))
        return_requests_ += requests;
    if (tpm_ > 0 && std::isfinite(tokens))
        return_tokens_ += tokens;
}

void budget_lease::hold_until(time_point until) {
    held_until_ = std::max(held_until_, until);
    hold_ = std::max(hold_, until);
    // The account's bucket is empty: what this member holds is not really there.
    held_requests_ = std::min(held_requests_, 0.0);
    held_tokens_ = std::min(held_tokens_, 0.0);
    pending_requests_ = 0;
    pending_tokens_ = 0;
    notify();
}

void budget_lease::observe_server(time_point now,
                                  std::optional<double> remaining_requests,
                                  std::optional<double> remaining_tokens,
                                  time_point seen,
                                  double later_requests,
                                  double later_tokens) {
    const double elapsed = seen < now ? seconds(now - seen) : 0.0;
    auto view = [&](std::optional<double> remaining, double rate, double later) {
        return server_view{*remaining + rate * elapsed - later, now};
    };
    if (remaining_requests && rpm_ > 0 && std::isfinite(*remaining_requests))
        server_requests_ = view(remaining_requests, request_rate(), later_requests);
    if (remaining_tokens && tpm_ > 0 && std::isfinite(*remaining_tokens))
        server_tokens_ = view(remaining_tokens, token_rate(), later_tokens);
}

double budget_lease::local_share() const noexcept {
    return state_ == state::local ? 1.0 / static_cast<double>(std::max<std::uint64_t>(1, members_))
                                  : 1.0;
}

bool budget_lease::due(time_point now) const noexcept {
    if (state_ == state::local)
        return false;
    if (!called_ || hold_ > time_point{})
        return true;
    return now >= next_due(now);
}

budget_lease::time_point budget_lease::next_due(time_point now) const noexcept {
    if (state_ == state::local)
        return time_point::max();
    if (!called_ || hold_ > time_point{})
        return now;
    // The heartbeat keeps the membership (and its N) alive.
    time_point at = last_call_ + opts_.ttl / 3;
    if (held_requests_ != 0 || held_tokens_ != 0)
        at = std::min(at, expires_);
    if (pending_requests_ != 0 || pending_tokens_ != 0)
        at = std::min(at, pending_at_ + opts_.ttl);
    if (!limited())
        return at;
    const bool active = waiting_ || now - last_demand_ < opts_.ttl;
    if (active && now >= held_until_) {
        // Below half a block: renew ahead of need, so the next lease lands before this one
        // runs out. After a call that granted nothing, not before its hint.
        const bool low = (rpm_ > 0 && held_requests_ + pending_requests_ < request_block() / 2) ||
                         (tpm_ > 0 && held_tokens_ + pending_tokens_ < token_block() / 2);
        if (low || waiting_)
            at = std::min(at, std::max(retry_at_, last_call_));
    }
    if (held_until_ > now)
        at = std::min(at, held_until_);
    return at;
}

lease_call budget_lease::prepare(time_point now) {
    mature(now);
    expire(now);
    const double held_r = held_requests_ + pending_requests_;
    const double held_t = held_tokens_ + pending_tokens_;
    lease_call c;
    c.request_rate = request_rate();
    c.request_capacity = rpm_ > 0 ? shared_capacity(request_rate(), burst_) : 0;
    c.token_rate = token_rate();
    c.token_capacity = tpm_ > 0 ? shared_capacity(token_rate(), burst_) : 0;
    // A member that admitted nothing for a lease's lifetime only renews its membership: what
    // it took would sit unused until it expired.
    const bool active =
        waiting_ || (last_demand_ != time_point{} && now - last_demand_ < opts_.ttl);
    if (rpm_ > 0 && active) {
        c.want_requests = std::max(0.0, request_block() - held_r);
        c.need_requests = std::max(0.0, std::min(1.0 - held_r, c.want_requests));
    }
    if (tpm_ > 0 && active) {
        c.want_tokens = std::max(0.0, token_block() - held_t);
        const double need = std::min(std::max(need_tokens_, 1.0), c.token_capacity);
        c.need_tokens = std::max(0.0, std::min(need - held_t, c.want_tokens));
    }
    c.return_requests = return_requests_;
    c.return_tokens = return_tokens_;
    return_requests_ = 0;
    return_tokens_ = 0;
    // The server's view as of now, less what this member holds: that is out of the shared
    // buckets already.
    if (server_requests_)
        c.clamp_requests = server_requests_->value +
                           request_rate() * seconds(now - server_requests_->at) -
                           std::max(0.0, held_r);
    if (server_tokens_)
        c.clamp_tokens = server_tokens_->value + token_rate() * seconds(now - server_tokens_->at) -
                         std::max(0.0, held_t);
    server_requests_.reset();
    server_tokens_.reset();
    if (hold_ > now)
        c.hold = std::chrono::ceil<std::chrono::milliseconds>(hold_ - now);
    hold_ = {};
    c.start_full = !ever_joined_;
    last_call_ = now;
    called_ = true;
    notified_ = false;
    return c;
}

void budget_lease::on_reply(time_point now, const lease_reply& r) {
    state_ = state::shared;
    members_ = std::max<std::uint64_t>(1, r.members);
    const bool granted = r.granted_requests > 0 || r.granted_tokens > 0;
    if (granted && r.wait.count() == 0) {
        held_requests_ += r.granted_requests;
        held_tokens_ += r.granted_tokens;
        expires_ = now + opts_.ttl;
    } else if (granted) {
        // Usable once the shared buckets have refilled it; a later reservation waits longer.
        mature(now);
        pending_requests_ += r.granted_requests;
        pending_tokens_ += r.granted_tokens;
        pending_at_ = std::max(pending_at_, now + r.wait + reservation_guard);
    }
    retry_at_ = granted ? now : now + std::max<duration>(r.wait, std::chrono::milliseconds(1));
    if (r.held.count() > 0) {
        held_until_ = std::max(held_until_, now + r.held);
        retry_at_ = std::max(retry_at_, held_until_);
    }
    if (granted)
        waiting_ = false;
}

void budget_lease::on_lost() {
    state_ = state::local;
    held_requests_ = 0;
    held_tokens_ = 0;
    pending_requests_ = 0;
    pending_tokens_ = 0;
    return_requests_ = 0;
    return_tokens_ = 0;
    hold_ = {};
    server_requests_.reset();
    server_tokens_.reset();
    ever_joined_ = true;
}

void budget_lease::on_rejoin() {
    if (state_ != state::local)
        return;
    state_ = state::joining;
    called_ = false;
    retry_at_ = {};
}

lease_call budget_lease::leave(time_point now) {
    return_requests_ += std::max(0.0, held_requests_) + pending_requests_;
    return_tokens_ += std::max(0.0, held_tokens_) + pending_tokens_;
    held_requests_ = 0;
    held_tokens_ = 0;
    pending_requests_ = 0;
    pending_tokens_ = 0;
    lease_call c = prepare(now);
    c.want_requests = c.want_tokens = c.need_requests = c.need_tokens = 0;
    c.leave = true;
    return c;
}

} // namespace sluice
