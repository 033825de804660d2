#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace sluice {

/// How a scope finds a request rate by itself when the server states none: many
/// OpenAI-compatible servers and gateways answer 429 with no `x-ratelimit-*` headers and no
/// retry hint, and a client that keeps sending as fast as its connections allow lives on
/// 429s. Used only while no limit is known (none configured, none learned from the headers):
/// a known limit always wins.
struct adaptive_options {
    /// Adapt at all. false: a scope with no known limit stays unlimited, and 429s without
    /// hints are only retried with backoff.
    bool enabled = true;
    /// After a 429, the rate is cut to this fraction of the rate the server took (see
    /// `adaptive_rate`), so that the server's bucket refills a little.
    double backoff = 0.9;
    /// How fast the rate grows again, as in CUBIC: rate(t) = ceiling x (1 + growth x (t -
    /// K)^3), t the seconds since the cut, K such that rate(0) = backoff x ceiling. The rate
    /// climbs back to the ceiling in K seconds (1.7 s with the defaults), stays near it, then
    /// probes beyond ever faster, so that a ceiling set too low is left behind in seconds.
    double growth = 0.02;
    /// The rate the server took is measured over this window at the first 429 (and at a
    /// later one that comes sooner than this after the previous cut).
    std::chrono::duration<double> window{1.0};
    /// The rate never goes below this many requests per minute (a server that refuses
    /// everything for a while is still asked now and then).
    double min_rpm = 1.0;
    /// Capacity of the pacing bucket in seconds of the rate: a short burst, since nothing is
    /// known of the server's own.
    std::chrono::duration<double> burst{0.1};

    /// Throws std::invalid_argument naming the field when a value is out of range.
    void validate() const;
};

/// The adaptive request rate of one scope, sans I/O: told of every request sent
/// (`on_sent`), of every 429 (`on_refused`) and of the 429s without a hint (`on_throttled`),
/// it answers the rate to pace requests at (`rate(now)`). Inactive, with no rate, until the
/// first such 429.
///
/// The rate the server took is what was sent less what it refused with a 429: requests still
/// in flight count as taken, so a server that answers its refusals at once and its
/// completions seconds later is measured by what it let in, not by what has come back. On a
/// throttling 429 the ceiling becomes the lower of the current rate and that taken rate (at
/// the first 429, over the last `window`; later, the average since the previous cut when that
/// is longer: a lower bound of the server's limit, since its bucket was empty at both cuts),
/// and the rate is cut to `backoff` times the ceiling. It then grows back as
/// `adaptive_options::growth` says, never above twice the taken rate (a rate the client does
/// not use is not grown). One cut per wave: the 429s of requests admitted before the cut
/// were caused by the old rate and do not cut again (as TCP reacts once per window of
/// losses), so the crowd in flight at the first 429 does not cut the rate to the floor. The
/// AWS SDKs' adaptive retry mode works alike.
///
/// Thread safety: none; the owner serialises access.
class adaptive_rate {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;

    adaptive_rate(const adaptive_options& opts, time_point now);

    /// True once a 429 has set a rate.
    bool active() const noexcept { return active_; }

    /// A request was sent (admitted) at `now`.
    void on_sent(time_point now) noexcept;

    /// A request was refused with a 429 at `now`, with a hint or without.
    void on_refused(time_point now) noexcept;

    /// A 429 without a hint (counted by `on_refused` first) answered the request admitted with
    /// `ticket`; `last_ticket` is the newest ticket admitted so far. Returns true when it cut
    /// the rate: the first such 429, and any later one whose request was admitted after the
    /// last cut. A first 429 that comes before the server took anything sets no rate: there
    /// is nothing to measure, and the retry's backoff paces the request.
    bool on_throttled(time_point now, std::uint64_t ticket, std::uint64_t last_ticket) noexcept;

    /// Requests per second to pace at `now`; 0 while inactive.
    double rate(time_point now) const noexcept;

    /// Requests per second the server took (sent less refused) over the last `window` and
    /// what has passed of the current tenth of it; never negative.
    double taken(time_point now) const noexcept;

    /// The ceiling of the last cut, requests per second (0 while inactive).
    double ceiling() const noexcept { return ceiling_; }

    /// Forgets everything: a known limit has taken over.
    void reset(time_point now) noexcept;

    const adaptive_options& options() const noexcept { return opts_; }

private:
    static constexpr std::size_t slots = 10;       // in a window
    static constexpr std::size_t ring = slots + 1; // and the current one

    struct slot {
        std::int64_t index = -1; // the slot of the window's timeline these counts belong to
        std::uint64_t sent = 0;
        std::uint64_t refused = 0;
    };

    std::int64_t slot_of(time_point t) const noexcept;
    clock::duration slot_length() const noexcept;
    slot& current(time_point now) noexcept;

    adaptive_options opts_;
    time_point origin_;
    std::array<slot, ring> slots_{};
    bool active_ = false;
    double ceiling_ = 0; // requests per second
    double knee_ = 0;    // K, seconds
    time_point cut_{};   // the last cut
    std::uint64_t cut_ticket_ = 0;
    std::uint64_t sent_since_cut_ = 0;
    std::uint64_t refused_since_cut_ = 0;
};

} // namespace sluice
