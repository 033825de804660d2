#include <sluice/admission/circuit_breaker.hpp>

#include <algorithm>
#include <stdexcept>

namespace sluice {

void breaker_options::validate() const {
    if (cool_down.count() <= 0)
        throw std::invalid_argument("breaker.cool_down: must be positive");
    if (max_cool_down < cool_down)
        throw std::invalid_argument("breaker.max_cool_down: must be at least cool_down");
}

circuit_breaker::circuit_breaker(const breaker_options& opts)
    : opts_(opts)
    , cool_down_(opts.cool_down) {}

bool circuit_breaker::can_send(time_point now) const noexcept {
    switch (state_) {
    case state::closed:
        return true;
    case state::open:
        return now >= reopens_at_ && !probe_out_;
    case state::half_open: // only through open: see current()
    case state::retired:
        return false;
    }
    return false;
}

bool circuit_breaker::on_send(time_point now) noexcept {
    if (state_ != state::open || now < reopens_at_ || probe_out_)
        return false;
    probe_out_ = true;
    return true;
}

void circuit_breaker::on_success(time_point, bool probe) noexcept {
    if (state_ == state::closed) {
        failures_ = 0;
        return;
    }
    if (state_ == state::open && probe) {
        state_ = state::closed;
        failures_ = 0;
        probe_out_ = false;
        cool_down_ = opts_.cool_down;
    }
}

void circuit_breaker::on_failure(time_point now, bool probe) noexcept {
    if (state_ == state::closed) {
        if (opts_.failure_threshold > 0 && ++failures_ >= opts_.failure_threshold)
            open(now, opts_.cool_down);
        return;
    }
    if (state_ == state::open && probe) {
        probe_out_ = false;
        open(now, std::min(cool_down_ * 2, opts_.max_cool_down));
    }
}

void circuit_breaker::open(time_point now, std::chrono::milliseconds cool_down) noexcept {
    state_ = state::open;
    failures_ = 0;
    cool_down_ = cool_down;
    reopens_at_ = now + cool_down;
    ++opened_;
}

circuit_breaker::state circuit_breaker::current(time_point now) const noexcept {
    if (state_ == state::open && (probe_out_ || now >= reopens_at_))
        return state::half_open;
    return state_;
}

std::string_view to_string(circuit_breaker::state s) noexcept {
    switch (s) {
    case circuit_breaker::state::closed:
        return "closed";
    case circuit_breaker::state::open:
        return "open";
    case circuit_breaker::state::half_open:
        return "half-open";
    case circuit_breaker::state::retired:
        return "retired";
    }
    return "closed";
}

} // namespace sluice
