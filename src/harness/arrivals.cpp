#include <sluice/harness/arrivals.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sluice {

void arrivals_options::validate() const {
    // Written so that NaN fails the checks too.
    if (!(rate >= 0) || std::isinf(rate))
        throw std::invalid_argument("bench.rate: must be a finite number >= 0 (0 = no pacing)");
    if (!(burstiness > 0) || std::isinf(burstiness))
        throw std::invalid_argument("bench.burstiness: must be a finite number > 0");
    if (max_duration.count() < 0)
        throw std::invalid_argument("bench.max_duration: must not be negative");
    if (!(ramp_start_rate >= 0) || std::isinf(ramp_start_rate))
        throw std::invalid_argument("bench.ramp_start_rate: must be a finite number >= 0");
    if (ramp_duration.count() < 0)
        throw std::invalid_argument("bench.ramp_duration: must not be negative");
    if (ramp_duration.count() > 0 && rate == 0)
        throw std::invalid_argument("bench.ramp_duration: a ramp needs a target rate > 0");
    if (rate == 0 && concurrency == 0 && max_requests == 0)
        throw std::invalid_argument(
            "bench.max_requests: without a rate or a concurrency cap every request is due at "
            "once, so a count limit is needed");
}

arrivals::arrivals(const arrivals_options& opts, time_point start)
    : opts_(opts)
    , start_(start)
    , rng_(opts.seed) {
    opts_.validate();
}

std::optional<arrivals::time_point> arrivals::next_arrival(time_point now) {
    if (done_)
        return std::nullopt;
    if (opts_.max_requests != 0 && issued_ >= opts_.max_requests) {
        done_ = true;
        return std::nullopt;
    }
    time_point due = std::max(now, start_);
    if (opts_.rate > 0) {
        // About 30 years: far enough for any run, near enough that the nanosecond count of
        // the time point cannot overflow however small the rate.
        const double secs = std::min(seconds_at(units_), 1e9);
        due = start_ + std::chrono::round<duration>(std::chrono::duration<double>(secs));
    }
    if (opts_.max_duration.count() > 0 && due >= start_ + opts_.max_duration) {
        done_ = true;
        return std::nullopt;
    }
    if (opts_.rate > 0)
        units_ += draw_gap();
    ++issued_;
    return due;
}

double arrivals::seconds_at(double units) const noexcept {
    if (units <= 0)
        return 0;
    const double target = opts_.rate;
    const double ramp = std::chrono::duration<double>(opts_.ramp_duration).count();
    if (ramp <= 0)
        return units / target;
    // During the ramp the rate is r0 + (r1 - r0) t / T, so the expected arrivals by t are
    // r0 t + a t^2 with a = (r1 - r0) / 2T; solved for t in the form that neither cancels
    // nor divides by zero when a is 0 (a flat ramp) or r0 is 0 (a ramp from standstill).
    const double r0 = opts_.ramp_start_rate;
    const double ramp_units = 0.5 * (r0 + target) * ramp;
    if (units >= ramp_units)
        return ramp + (units - ramp_units) / target;
    const double a = (target - r0) / (2 * ramp);
    const double disc = std::max(0.0, r0 * r0 + 4 * a * units);
    return 2 * units / (r0 + std::sqrt(disc));
}

double arrivals::draw_gap() {
    switch (opts_.process) {
    case arrival_process::constant:
        return 1;
    case arrival_process::poisson:
        return std::exponential_distribution<double>(1.0)(rng_);
    case arrival_process::gamma:
        // Mean shape x scale = 1 in arrival units; divided by the rate in seconds_at, this is
        // vLLM's gamma(shape = burstiness, scale = 1 / (rate x burstiness)).
        return std::gamma_distribution<double>(opts_.burstiness, 1 / opts_.burstiness)(rng_);
    }
    return 1;
}

} // namespace sluice
