#include <sluice/admission/endpoint_router.hpp>

#include <algorithm>

namespace sluice {

endpoint_router::endpoint_router(std::vector<endpoint> endpoints)
    : endpoints_(std::move(endpoints))
    , routed_(endpoints_.size(), 0) {
    for (const endpoint& e : endpoints_)
        if (e.models.empty())
            all_listed_ = false;
}

bool endpoint_router::serves(std::size_t e, std::string_view model) const {
    const auto& models = endpoints_[e].models;
    if (models.empty())
        return true;
    if (model.empty())
        return all_listed_;
    return std::find(models.begin(), models.end(), model) != models.end();
}

void endpoint_router::candidates(std::string_view model,
                                 time_point now,
                                 const std::vector<circuit_breaker>& breakers,
                                 std::vector<std::size_t>& out) const {
    out.clear();
    for (std::size_t e = 0; e < endpoints_.size(); ++e)
        if (serves(e, model) && breakers[e].can_send(now))
            out.push_back(e);
    // Fewest routed per unit of weight first: a stable sort keeps the endpoints' order for
    // ties, so the first endpoint (the default) leads an even start.
    std::stable_sort(out.begin(), out.end(), [&](std::size_t a, std::size_t b) {
        return static_cast<double>(routed_[a]) / endpoints_[a].weight <
               static_cast<double>(routed_[b]) / endpoints_[b].weight;
    });
}

std::optional<endpoint_router::time_point>
endpoint_router::next_reopen(std::string_view model,
                             const std::vector<circuit_breaker>& breakers) const {
    std::optional<time_point> soonest;
    for (std::size_t e = 0; e < endpoints_.size(); ++e) {
        if (!serves(e, model))
            continue;
        if (const auto at = breakers[e].probe_at(); at && (!soonest || *at < *soonest))
            soonest = *at;
    }
    return soonest;
}

bool endpoint_router::can_serve(std::string_view model,
                                const std::vector<circuit_breaker>& breakers) const {
    for (std::size_t e = 0; e < endpoints_.size(); ++e)
        if (serves(e, model) && !breakers[e].retired())
            return true;
    return false;
}

std::size_t endpoint_router::live_count(std::string_view model,
                                        const std::vector<circuit_breaker>& breakers) const {
    std::size_t n = 0;
    for (std::size_t e = 0; e < endpoints_.size(); ++e)
        if (serves(e, model) && !breakers[e].retired())
            ++n;
    return n;
}

bool endpoint_router::anyone_serves(std::string_view model) const {
    for (std::size_t e = 0; e < endpoints_.size(); ++e)
        if (serves(e, model))
            return true;
    return false;
}

} // namespace sluice
