#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>

namespace sluice {

/// How the gaps between open-loop arrivals are drawn. Every kind keeps the mean rate.
enum class arrival_process {
    /// Evenly spaced: one request every 1/rate seconds.
    constant,
    /// Exponential gaps (a Poisson process): coefficient of variation 1.
    poisson,
    /// Gamma gaps with shape `burstiness` and scale 1/(rate x burstiness), as vLLM's
    /// benchmark_serving.py draws them: coefficient of variation 1/sqrt(burstiness), so
    /// burstiness 1 is Poisson, below 1 burstier, above 1 more even.
    gamma,
};

/// The load shape of a benchmark run. Two knobs combine as in vLLM's benchmark: `rate` paces
/// the starts (open loop) and `concurrency` caps the requests in flight (closed loop when
/// `rate` is zero). With both set, a request waits for its time and then for a free slot; the
/// wait shows in the send lag.
struct arrivals_options {
    /// Target open-loop rate, requests per second; 0 = no pacing: each request is due as soon
    /// as it is asked for (with `concurrency`, the closed loop; without, everything at once,
    /// which is vLLM's `--request-rate inf`).
    double rate = 0;
    /// Most requests in flight at once; 0 = no cap.
    std::size_t concurrency = 0;
    /// Gap distribution of the open loop; ignored when `rate` is 0.
    arrival_process process = arrival_process::poisson;
    /// Shape of the gamma gaps (arrival_process::gamma only); must be > 0; 1 = Poisson.
    double burstiness = 1;
    /// Seed of the random engine (std::mt19937_64) that draws the gaps: the same seed gives
    /// the same schedule with the same standard library (the std distributions are not
    /// specified to the bit), never vLLM's numpy numbers.
    std::uint64_t seed = 0;
    /// Requests in the run; 0 = no count limit. The defaults (1000 requests, no pacing, no
    /// cap) are vLLM's benchmark defaults.
    std::uint64_t max_requests = 1000;
    /// Requests due at or after start + max_duration are not sent; 0 = no time limit.
    std::chrono::milliseconds max_duration{0};
    /// Open loop only: the rate at the start, in requests per second, rising (or falling)
    /// linearly to `rate` over `ramp_duration`.
    double ramp_start_rate = 0;
    /// Length of the ramp; 0 = no ramp (the run starts at `rate`).
    std::chrono::milliseconds ramp_duration{0};

    /// Throws std::invalid_argument naming the field when a value is out of range or the
    /// combination would send without end at one instant (no rate, no cap, no count limit).
    void validate() const;
};

/// A load shape as a schedule, sans I/O: the driver asks when the next request is due and
/// whether a slot is free, and does the waiting itself. Due times are absolute, computed from
/// the start time and the drawn gaps alone, so a driver that is late does not push later
/// requests back: it sends what is overdue at once, and `sent - due` is its send lag.
///
/// The first request is due at the start (as in vLLM's benchmark). The open-loop schedule is
/// the unit-rate process (gaps of mean 1) mapped through the inverse of the integrated rate,
/// which is `t = n / rate` without a ramp; with a linear ramp the mean number of arrivals by
/// any time is the integral of the ramped rate, exactly.
///
/// A driver's loop: `while (auto due = a.next_arrival(now)) { wait until *due; wait until
/// a.may_start(in_flight); send; }`.
///
/// Thread safety: none; the driver calls it from one strand.
class arrivals {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;

    /// A schedule starting at `start`. Throws std::invalid_argument when `opts` does not
    /// validate.
    arrivals(const arrivals_options& opts, time_point start);

    /// Takes the next request from the schedule and returns when it is due: the scheduled
    /// time in the open loop (possibly before `now` when the driver is late), `now` itself
    /// without a rate. Returns nullopt, and keeps doing so, once the count limit is reached or
    /// the request would be due at or after the duration limit.
    std::optional<time_point> next_arrival(time_point now);

    /// Whether another request may start with `in_flight` requests under way: always without
    /// a concurrency cap, else while `in_flight < concurrency`.
    bool may_start(std::size_t in_flight) const noexcept {
        return opts_.concurrency == 0 || in_flight < opts_.concurrency;
    }

    /// Requests handed out by next_arrival so far.
    std::uint64_t issued() const noexcept { return issued_; }

    /// True once next_arrival has said the schedule is over.
    bool done() const noexcept { return done_; }

    time_point start() const noexcept { return start_; }
    const arrivals_options& options() const noexcept { return opts_; }

private:
    // Seconds after the start by which `units` arrivals are expected (inverse of the
    // integrated rate).
    double seconds_at(double units) const noexcept;
    // One gap of the unit-rate process.
    double draw_gap();

    arrivals_options opts_;
    time_point start_;
    std::mt19937_64 rng_;
    // Expected arrivals before the next one is due: the sum of the gaps drawn so far.
    double units_ = 0;
    std::uint64_t issued_ = 0;
    bool done_ = false;
};

} // namespace sluice
