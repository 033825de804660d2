#pragma once

#include <sluice/admission/admission_queue.hpp>
#include <sluice/admission/limit_headers.hpp>
#include <sluice/admission/rate_limiter.hpp>
#include <sluice/admission/retry_budget.hpp>
#include <sluice/admission/retry_policy.hpp>
#include <sluice/error.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <variant>

namespace sluice {

/// The key of the rate-limit scope that admits a request naming `model`: `model` itself when
/// `model_limits` gives it limits of its own, or when `per_model_limits` gives every named
/// model its own buckets; else "" (the endpoint's scope, which also takes every request that
/// names no model). The one rule by which the dispatcher picks a request's scope, shared with
/// the batch plan (`estimate_plan`), so that a dry run times each request in the scope that
/// will admit it. Returns `model` or a reference to a static empty string, so that a lookup
/// by the key allocates nothing.
const std::string& scope_key(const std::string& model,
                             const std::map<std::string, limit_options>& model_limits,
                             bool per_model_limits);

/// The limits of the scope `key` (a `scope_key` result): the model's own in `model_limits`,
/// else `endpoint` (the endpoint's scope itself, and a model's own scope under
/// `per_model_limits`, whose buckets start at the endpoint's limits).
const limit_options& scope_limits(const std::string& key,
                                  const limit_options& endpoint,
                                  const std::map<std::string, limit_options>& model_limits);

/// What one attempt's response taught, as a scope needs to know it: the facts the transport
/// and the parser found, with nothing of either. Filled by the engine for every attempt that
/// was admitted by the scope.
struct response_event {
    /// Status, transport error, provider error code and message, retry hint (raw: the scope
    /// caps it), `x-should-retry`.
    attempt_outcome outcome;
    /// The response's `x-ratelimit-*` headers, parsed.
    rate_limit_headers headers;
    /// `usage.total_tokens` of a parsed 2xx answer, when it had one.
    std::optional<std::uint64_t> usage_tokens;
    /// When the request went out (or was admitted, when it never reached the wire).
    std::chrono::steady_clock::time_point sent{};
    /// The limiter ticket of the attempt (`scope::admitted::ticket`).
    std::uint64_t ticket = 0;
    /// The request's estimated cost, as charged at admission.
    std::uint64_t cost = 0;
    /// Attempts made so far, this one included.
    unsigned attempts = 1;
    /// The run is stopping: a request that would be retried is handed back instead.
    bool stopping = false;
};

/// A scope's answer to one response.
struct response_action {
    enum class kind {
        deliver,  ///< success: deliver the result
        retry,    ///< send again after `delay`; `ec` is why this attempt failed
        give_up,  ///< deliver the failure `ec` (`cause`: the attempt's own failure, when the
                  ///< retry budget turned a retry into errc::retry_budget_exhausted)
        stopped,  ///< the run is stopping and the request would have been retried: it is not
                  ///< answered, so it is recorded for a resumed run to send (`ec`: why)
        stop_run, ///< deliver the failure `ec` and stop the whole run (quota, bad key)
    };
    kind what = kind::deliver;
    error_code ec;
    error_code cause;
    std::chrono::nanoseconds delay{0};
    /// The response was a 429 that paces the client (counted in the stats).
    bool rate_limited = false;
    /// The scope took the server's limits for the first time (lower than configured, or not
    /// configured): report it once, with `limits()`.
    bool limits_learned = false;
    /// The scope started to find its request rate itself (a 429 with no hint, and no request
    /// limit known; see `adaptive_rate`): report it once, with `rate_limiter::adaptive_rpm`.
    bool adaptive_started = false;
};

/// The rules that combine a scope's policies on each response, sans I/O: the limiter's
/// books (the server's `x-ratelimit-remaining-tokens` wins over `usage`; a 429 is refunded
/// before the headers are reconciled, so it is not paid twice), the retry decision (429 spends
/// no retry budget, other retryable failures do; `x-should-retry`), the 429 hold, learned
/// request caps and the fatal stop. Every hint is capped at `retry_options::max_retry_after`
/// before any use. `scope<T>` adds the waiting line.
///
/// Thread safety: none; the engine calls it from its own strand.
class scope_rules {
public:
    using time_point = std::chrono::steady_clock::time_point;

    scope_rules(std::string name,
                const retry_options& retry,
                time_point now,
                std::uint64_t seed = std::random_device{}());

    /// An admitted request is about to go out for the `attempts`-th time: the first attempt
    /// counts toward the retry budget's allowance.
    void on_attempt(time_point now, unsigned attempts);

    /// Decides what follows `event`, updating `limiter` and the retry budget.
    response_action on_response(time_point now, const response_event& event, rate_limiter& limiter);

    /// Why a request costing `cost` can never be admitted by `limiter`, or empty.
    static std::string refusal(const rate_limiter& limiter, std::uint64_t cost);

    /// The scope's name: the model it limits, empty for the endpoint.
    const std::string& name() const noexcept { return name_; }
    const retry_options& retry() const noexcept { return retry_.options(); }

private:
    std::string name_;
    retry_policy retry_;
    retry_budget budget_;
    bool reported_limits_ = false;
};

/// One rate-limit scope (the endpoint, or the endpoint and one model), sans I/O: its FIFO of
/// waiting items of type `T`, its buckets, its retry budget and the rules that combine them
/// (`scope_rules`). The engine asks `next(now)` what to do and tells `on_response` what came
/// back; it owns the sockets, the timers and the clock.
///
/// Thread safety: none; the engine serialises access.
template <class T>
class scope {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::steady_clock::duration;

    /// `next` admitted the head, charging the buckets: send it, and pass `ticket` back in its
    /// `response_event`.
    struct admitted {
        T item;
        std::uint64_t ticket;
    };
    /// `next` took out the head because the scope learned meanwhile that it can never be
    /// admitted (`scope_rules::refusal` says why): fail it unsent.
    struct refused {
        T item;
        std::string reason;
    };
    /// `next` found the line empty.
    using idle = typename admission_queue<T>::empty;
    using step = std::variant<admitted, refused, duration, idle>;

    scope(std::string name,
          const limit_options& limits,
          const retry_options& retry,
          time_point now,
          std::uint64_t seed = std::random_device{}())
        : queue_(limits, now)
        , rules_(std::move(name), retry, now, seed) {}

    /// Why a request costing `cost` can never be admitted, or empty: then it may join.
    std::string refusal(std::uint64_t cost) const {
        return scope_rules::refusal(queue_.limiter(), cost);
    }

    /// Joins the end of the line.
    void push_back(T item, std::uint64_t cost) { queue_.push_back(std::move(item), cost); }

    /// Joins the front (a retry, having waited longest).
    void push_front(T item, std::uint64_t cost) { queue_.push_front(std::move(item), cost); }

    /// Admits the head when the buckets can pay for it, or refuses it (too large, as learned
    /// since it joined), or says how long to wait before asking again (a timer, not polling).
    step next(time_point now) {
        if (queue_.is_empty())
            return idle{};
        // A cap learned from a refusal while this one waited: sending it would only buy
        // another refusal.
        if (std::string why = refusal(queue_.head_cost()); !why.empty())
            return refused{queue_.pop_front(), std::move(why)};
        auto head = queue_.next(now);
        if (auto* wait = std::get_if<duration>(&head))
            return *wait;
        return admitted{std::move(std::get<T>(head)), queue_.limiter().last_ticket()};
    }

    /// See `scope_rules::on_attempt`.
    void on_attempt(time_point now, unsigned attempts) { rules_.on_attempt(now, attempts); }

    /// See `scope_rules::on_response`.
    response_action on_response(time_point now, const response_event& event) {
        return rules_.on_response(now, event, queue_.limiter());
    }

    /// Takes every waiting item out, in order (the run is stopping).
    std::deque<T> drain() { return queue_.drain(); }

    /// The head of the queue, which must exist, and its removal without admission (a
    /// request whose deadline passes before its turn).
    const T& head() const { return queue_.head(); }
    T pop_front() { return queue_.pop_front(); }

    bool is_empty() const noexcept { return queue_.is_empty(); }
    std::size_t size() const noexcept { return queue_.size(); }
    const std::string& name() const noexcept { return rules_.name(); }
    const limit_options& limits() const noexcept { return queue_.limiter().limits(); }
    rate_limiter& limiter() noexcept { return queue_.limiter(); }
    const rate_limiter& limiter() const noexcept { return queue_.limiter(); }

private:
    admission_queue<T> queue_;
    scope_rules rules_;
};

} // namespace sluice
