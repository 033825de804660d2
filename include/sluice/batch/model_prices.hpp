#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace sluice {

/// What one model costs, in US dollars per million tokens. The library holds no prices of its
/// own: a caller passes the ones it knows (the `sluice` tool compiles configs/prices.toml in
/// and lays a config file's `[prices."MODEL"]` tables over it).
struct model_price {
    /// USD per 1M prompt (input) tokens.
    double input = 0;
    /// USD per 1M completion (output) tokens.
    double output = 0;
};

/// Prices by model name. Ordered, with a transparent comparator, so that `find_price` can
/// walk back from a name to its longest priced prefix.
using price_table = std::map<std::string, model_price, std::less<>>;

/// The price of `model`: its exact name, else the longest name in `prices` that `model` starts
/// with followed by '-' or ':', so dated snapshots ("gpt-4o-mini-2024-07-18") find their model
/// ("gpt-4o-mini") while "gpt-4.1" never takes the price of a "gpt-4". Sets `matched` to the
/// name found when given. Null when none matches.
const model_price*
find_price(const price_table& prices, std::string_view model, std::string* matched = nullptr);

} // namespace sluice
