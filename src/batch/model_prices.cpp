#include <sluice/batch/model_prices.hpp>

namespace sluice {

const model_price*
find_price(const price_table& prices, std::string_view model, std::string* matched) {
    auto found = prices.find(model);
    if (found == prices.end() && !model.empty()) {
        // Every prefix of `model` sorts before it, a longer prefix after a shorter one: walking
        // back from `model`, the first name that is a prefix ending at a boundary is the longest.
        for (auto it = prices.lower_bound(model); it != prices.begin();) {
            --it;
            const std::string_view name = it->first;
            if (name.empty() || name.front() != model.front())
                break;
            if (model.size() > name.size() && model.starts_with(name) &&
                (model[name.size()] == '-' || model[name.size()] == ':')) {
                found = it;
                break;
            }
        }
    }
    if (found == prices.end())
        return nullptr;
    if (matched)
        *matched = found->first;
    return &found->second;
}

} // namespace sluice
