#pragma once

#include <sluice/admission/circuit_breaker.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// Which of several endpoints a request may go to, and in what order to ask them, sans I/O.
/// An endpoint is a candidate for a request when it serves the request's model (its `models`
/// list names it, or it has no list) and its circuit breaker lets a request through now. The
/// engine asks the candidates' rate limiters in the order given and sends the request to the
/// first that admits it now; when none does, it waits for the soonest of their answers. So a
/// request goes to an endpoint that can admit it soonest, and among those that can admit it
/// now the weights decide: the candidates are ordered by requests routed so far per unit of
/// weight, fewest first (ties by position), which shares out requests in proportion to the
/// weights whenever several endpoints have room.
///
/// Thread safety: none; the engine calls it from its own executor.
class endpoint_router {
public:
    using time_point = std::chrono::steady_clock::time_point;

    /// What the router knows of one endpoint.
    struct endpoint {
        /// The models it serves; empty: every model.
        std::vector<std::string> models;
        /// Its share when several can admit a request at once; > 0.
        double weight = 1;
    };

    explicit endpoint_router(std::vector<endpoint> endpoints);

    /// Whether endpoint `e` serves `model`. A request that names no model is served by the
    /// endpoints without a models list, or by every endpoint when all have one.
    bool serves(std::size_t e, std::string_view model) const;

    /// The candidates for a request of `model` at `now`, in the order to ask them (see the
    /// class). `breakers[e]` is endpoint e's breaker.
    void candidates(std::string_view model,
                    time_point now,
                    const std::vector<circuit_breaker>& breakers,
                    std::vector<std::size_t>& out) const;

    /// When a breaker of an endpoint serving `model` next lets a probe through, if one is
    /// open; nothing when none is (closed ones need no timer, retired ones never return).
    std::optional<time_point> next_reopen(std::string_view model,
                                          const std::vector<circuit_breaker>& breakers) const;

    /// Whether an endpoint serving `model` is not retired: false means the request can never
    /// be sent.
    bool can_serve(std::string_view model, const std::vector<circuit_breaker>& breakers) const;

    /// How many endpoints serving `model` are not retired.
    std::size_t live_count(std::string_view model,
                           const std::vector<circuit_breaker>& breakers) const;

    /// Whether some endpoint serves `model` at all (retired or not).
    bool anyone_serves(std::string_view model) const;

    /// A request was sent to endpoint `e`.
    void routed(std::size_t e) { ++routed_[e]; }

    /// Requests sent to endpoint `e` so far.
    std::uint64_t routed_count(std::size_t e) const { return routed_[e]; }

    std::size_t size() const noexcept { return endpoints_.size(); }

private:
    std::vector<endpoint> endpoints_;
    std::vector<std::uint64_t> routed_;
    bool all_listed_ = true; // every endpoint has a models list
};

} // namespace sluice
