#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice {

/// When an endpoint is taken out of service after failures in a row, and how it comes back.
/// Used only when the dispatcher has several endpoints: with one there is nowhere else to
/// send, and the retry policy and retry budget govern alone.
struct breaker_options {
    /// Connection-level failures (connect, TLS, reset, timeout) or 5xx answers in a row that
    /// open the breaker: the endpoint gets no request until its cool-down has passed. Any
    /// other answer (a 2xx, a 429, a 4xx: the server is up) resets the count. 0: never open.
    unsigned failure_threshold = 5;
    /// How long an open breaker keeps the endpoint out before one request goes as a probe
    /// (half-open). Default 5 s.
    std::chrono::milliseconds cool_down{5000};
    /// Each failed probe doubles the cool-down, up to this. Default 60 s.
    std::chrono::milliseconds max_cool_down{60000};

    /// Throws std::invalid_argument naming the field when a value is out of range.
    void validate() const;
};

/// The state of one endpoint's circuit breaker, sans I/O: closed (in service), open (out
/// until `reopens_at`), half-open (one probe request may go or is out), or retired (its quota
/// is exhausted: out for the rest of the run). Every call takes `now`; the engine owns the
/// timer that wakes at `reopens_at`.
///
/// Answers that arrive while the breaker is open, from requests sent before it opened, change
/// nothing: only the probe's answer closes it (success) or opens it again for twice the
/// cool-down (failure).
///
/// Thread safety: none; the engine calls it from its own executor.
class circuit_breaker {
public:
    using time_point = std::chrono::steady_clock::time_point;

    enum class state { closed, open, half_open, retired };

    explicit circuit_breaker(const breaker_options& opts = {});

    /// Whether a request may be sent at `now`: closed, or open with the cool-down over and no
    /// probe out yet.
    bool can_send(time_point now) const noexcept;

    /// A request is sent at `now` (after `can_send` said yes). Returns true when it is the
    /// probe: pass that back to `on_success` / `on_failure` with its answer.
    bool on_send(time_point now) noexcept;

    /// An answer that shows the endpoint working (any HTTP answer but a 5xx).
    void on_success(time_point now, bool probe) noexcept;

    /// A connection-level failure or a 5xx answer.
    void on_failure(time_point now, bool probe) noexcept;

    /// Out for the rest of the run (its quota is exhausted); final.
    void retire() noexcept { state_ = state::retired; }
    bool retired() const noexcept { return state_ == state::retired; }

    /// The state at `now`: an open breaker whose cool-down has passed reads as half-open.
    state current(time_point now) const noexcept;

    /// When an open breaker lets a probe through (meaningful while open).
    time_point reopens_at() const noexcept { return reopens_at_; }

    /// When a probe may go, for an open breaker with none out yet; else nothing (closed, a
    /// probe out, retired): the moment a waiting request's timer is for.
    std::optional<time_point> probe_at() const noexcept {
        if (state_ == state::open && !probe_out_)
            return reopens_at_;
        return std::nullopt;
    }

    /// Failures in a row so far (closed), and times it has opened in all.
    unsigned failures() const noexcept { return failures_; }
    std::uint64_t opened() const noexcept { return opened_; }

private:
    void open(time_point now, std::chrono::milliseconds cool_down) noexcept;

    breaker_options opts_;
    state state_ = state::closed;
    unsigned failures_ = 0;
    std::uint64_t opened_ = 0;
    bool probe_out_ = false;
    std::chrono::milliseconds cool_down_;
    time_point reopens_at_{};
};

/// "closed", "open", "half-open" or "retired", as the summary and progress line show it.
std::string_view to_string(circuit_breaker::state s) noexcept;

} // namespace sluice
