#include "cli/config_file.hpp"

#include <toml++/toml.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>

namespace sluice::cli {

extern const char* const builtin_tiers_toml;  // generated from configs/tiers.toml
extern const char* const builtin_prices_toml; // generated from configs/prices.toml

namespace {

using namespace std::string_literals;

std::string where(const std::string& path, const toml::node& n) {
    return path + ":" + std::to_string(n.source().begin.line) + ": ";
}

// Reads typed values out of one section, failing with "file:line: [section] key: what".
struct section_reader {
    const std::string& path;
    std::string section;

    [[noreturn]] void fail(const toml::node& n, std::string_view key, std::string_view what) const {
        std::string msg = where(path, n);
        if (!section.empty())
            msg += "[" + section + "] ";
        msg += std::string(key) + ": " + std::string(what);
        throw config_error(msg);
    }

    std::int64_t integer(const toml::node& n, std::string_view key, std::int64_t min) const {
        const auto v = n.value<std::int64_t>();
        if (!n.is_integer() || !v)
            fail(n, key, "expected an integer >= " + std::to_string(min));
        if (*v < min)
            fail(n,
                 key,
                 "expected an integer >= " + std::to_string(min) + ", got " + std::to_string(*v));
        return *v;
    }

    double number(const toml::node& n, std::string_view key, double min) const {
        if (!n.is_number())
            fail(n, key, "expected a number");
        const double v = *n.value<double>();
        if (!std::isfinite(v) || v < min)
            fail(n, key, "expected a number >= " + std::to_string(min));
        return v;
    }

    bool boolean(const toml::node& n, std::string_view key) const {
        if (!n.is_boolean())
            fail(n, key, "expected true or false");
        return *n.value<bool>();
    }

    std::string string(const toml::node& n, std::string_view key) const {
        if (!n.is_string())
            fail(n, key, "expected a string");
        return *n.value<std::string>();
    }

    std::chrono::milliseconds
    millis(const toml::node& n, std::string_view key, std::int64_t min) const {
        return std::chrono::milliseconds(integer(n, key, min));
    }
};

using setter = std::function<void(const toml::node&, std::string_view, const section_reader&)>;
using section_table = std::map<std::string, setter, std::less<>>;

std::map<std::string, section_table, std::less<>> make_schema(dispatcher_options& o,
                                                              file_settings& f) {
    using R = const section_reader&;
    using N = const toml::node&;
    using K = std::string_view;
    std::map<std::string, section_table, std::less<>> s;
    s[""] = {
        {"base_url",
         [&](N n, K k, R r) {
             o.base_url = r.string(n, k);
         }},
        {"api_key_env",
         [&](N n, K k, R r) {
             f.api_key_env = r.string(n, k);
         }},
        {"organization",
         [&](N n, K k, R r) {
             o.organization = r.string(n, k);
         }},
        {"project",
         [&](N n, K k, R r) {
             o.project = r.string(n, k);
         }},
        {"queue_limit",
         [&](N n, K k, R r) {
             o.queue_limit = static_cast<std::size_t>(r.integer(n, k, 1));
         }},
        {"on_full",
         [&](N n, K k, R r) {
             const std::string v = r.string(n, k);
             if (v == "wait")
                 o.on_full = overflow_policy::wait;
             else if (v == "fail")
                 o.on_full = overflow_policy::fail;
             else
                 r.fail(n, k, "expected \"wait\" or \"fail\", got \"" + v + "\"");
         }},
    };
    s["pool"] = {
        {"max_connections",
         [&](N n, K k, R r) {
             o.pool.max_connections = static_cast<std::size_t>(r.integer(n, k, 1));
         }},
        {"connect_timeout_ms",
         [&](N n, K k, R r) {
             o.pool.connect_timeout = r.millis(n, k, 1);
         }},
        {"handshake_timeout_ms",
         [&](N n, K k, R r) {
             o.pool.handshake_timeout = r.millis(n, k, 1);
         }},
        {"request_timeout_ms",
         [&](N n, K k, R r) {
             o.pool.request_timeout = r.millis(n, k, 1);
         }},
        {"idle_timeout_ms",
         [&](N n, K k, R r) {
             o.pool.idle_timeout = r.millis(n, k, 1);
         }},
        {"max_body_size",
         [&](N n, K k, R r) {
             o.pool.max_body_size = static_cast<std::size_t>(r.integer(n, k, 1));
         }},
        {"max_body_bytes_in_flight",
         [&](N n, K k, R r) {
             o.pool.max_body_bytes_in_flight = static_cast<std::size_t>(r.integer(n, k, 0));
         }},
        {"reuse_quiet_period_ms",
         [&](N n, K k, R r) {
             o.pool.reuse_quiet_period = r.millis(n, k, 0);
         }},
    };
    s["run"] = {
        {"threads",
         [&](N n, K k, R r) {
             const auto v = r.integer(n, k, 1);
             if (v > 64)
                 r.fail(n, k, "expected at most 64 event loops");
             f.run.threads = static_cast<unsigned>(v);
         }},
        {"ordered",
         [&](N n, K k, R r) {
             f.run.ordered = r.boolean(n, k);
         }},
        {"reorder_window",
         [&](N n, K k, R r) {
             f.run.reorder_window = static_cast<std::size_t>(r.integer(n, k, 1));
         }},
        {"flush_interval_ms",
         [&](N n, K k, R r) {
             f.run.flush_interval_ms = static_cast<std::uint64_t>(r.integer(n, k, 0));
         }},
        {"fsync_interval_ms",
         [&](N n, K k, R r) {
             f.run.fsync_interval_ms = static_cast<std::uint64_t>(r.integer(n, k, 0));
         }},
        {"grace_period_s",
         [&](N n, K k, R r) {
             f.run.grace_period_s = r.number(n, k, 0);
         }},
        {"progress_interval_s",
         [&](N n, K k, R r) {
             const double v = r.number(n, k, 0);
             if (v <= 0)
                 r.fail(n, k, "expected a number > 0");
             f.run.progress_interval_s = v;
         }},
        {"model",
         [&](N n, K k, R r) {
             f.run.model = r.string(n, k);
         }},
        {"system",
         [&](N n, K k, R r) {
             f.run.system = r.string(n, k);
         }},
    };
    s["tls"] = {
        {"ca_file",
         [&](N n, K k, R r) {
             o.tls.ca_file = r.string(n, k);
         }},
        {"insecure",
         [&](N n, K k, R r) {
             o.tls.insecure = r.boolean(n, k);
         }},
    };
    s["limits"] = {
        {"tier",
         [&](N n, K k, R r) {
             f.tier = r.string(n, k);
         }},
        {"rpm",
         [&](N n, K k, R r) {
             o.limits.rpm = r.number(n, k, 0);
             f.rpm_set = true;
         }},
        {"tpm",
         [&](N n, K k, R r) {
             o.limits.tpm = r.number(n, k, 0);
             f.tpm_set = true;
         }},
        {"burst_seconds",
         [&](N n, K k, R r) {
             const double v = r.number(n, k, 0);
             if (v <= 0 || v > 60)
                 r.fail(n, k, "expected seconds in (0, 60]");
             o.limits.burst = std::chrono::duration<double>(v);
         }},
        {"learn_from_headers",
         [&](N n, K k, R r) {
             o.limits.learn_from_headers = r.boolean(n, k);
         }},
        {"per_model",
         [&](N n, K k, R r) {
             o.per_model_limits = r.boolean(n, k);
         }},
        {"models",
         [&](N n, K k, R r) {
             // [limits.models."gpt-4o"] rpm = ..., tpm = ..., burst_seconds = ...,
             // learn_from_headers = ...; a key left out takes the struct's default.
             const toml::table* models = n.as_table();
             if (!models)
                 r.fail(n, k, "expected tables [limits.models.NAME]");
             for (const auto& [model, node] : *models) {
                 const toml::table* t = node.as_table();
                 section_reader mr{r.path, "limits.models." + std::string(model.str())};
                 if (!t)
                     mr.fail(node, model.str(), "expected a table");
                 limit_options l;
                 for (const auto& [key, value] : *t) {
                     if (key == "rpm")
                         l.rpm = mr.number(value, key.str(), 0);
                     else if (key == "tpm")
                         l.tpm = mr.number(value, key.str(), 0);
                     else if (key == "burst_seconds")
                         l.burst = std::chrono::duration<double>(mr.number(value, key.str(), 0));
                     else if (key == "learn_from_headers")
                         l.learn_from_headers = mr.boolean(value, key.str());
                     else
                         mr.fail(value, key.str(), "unknown key");
                 }
                 o.model_limits[std::string(model.str())] = l;
             }
         }},
    };
    s["retry"] = {
        {"max_attempts",
         [&](N n, K k, R r) {
             o.retry.max_attempts = static_cast<unsigned>(r.integer(n, k, 1));
         }},
        {"initial_backoff_ms",
         [&](N n, K k, R r) {
             o.retry.initial_backoff = r.millis(n, k, 0);
         }},
        {"max_backoff_ms",
         [&](N n, K k, R r) {
             o.retry.max_backoff = r.millis(n, k, 0);
         }},
        {"max_retry_after_ms",
         [&](N n, K k, R r) {
             o.retry.max_retry_after = r.millis(n, k, 0);
         }},
        {"budget_ratio",
         [&](N n, K k, R r) {
             o.retry.budget_ratio = r.number(n, k, 0);
         }},
        {"budget_min_per_second",
         [&](N n, K k, R r) {
             o.retry.budget_min_per_second = r.number(n, k, 0);
         }},
        {"budget_window_s",
         [&](N n, K k, R r) {
             o.retry.budget_window = std::chrono::seconds(r.integer(n, k, 1));
         }},
    };
    s["estimate"] = {
        {"chars_per_token",
         [&](N n, K k, R r) {
             const double v = r.number(n, k, 0);
             if (v <= 0)
                 r.fail(n, k, "expected a positive number");
             o.estimate.chars_per_token = v;
         }},
        {"per_message_overhead",
         [&](N n, K k, R r) {
             o.estimate.per_message_overhead = static_cast<std::uint32_t>(r.integer(n, k, 0));
         }},
        {"per_request_overhead",
         [&](N n, K k, R r) {
             o.estimate.per_request_overhead = static_cast<std::uint32_t>(r.integer(n, k, 0));
         }},
        {"default_max_tokens",
         [&](N n, K k, R r) {
             o.estimate.default_max_tokens = static_cast<std::uint32_t>(r.integer(n, k, 1));
         }},
    };
    return s;
}

toml::table parse_toml(std::string_view text, const std::string& path) {
    try {
        return toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        throw config_error(path + ":" + std::to_string(e.source().begin.line) + ": " +
                           std::string(e.description()));
    }
}

std::vector<tier> tiers_from(const toml::table& root, const std::string& path) {
    std::vector<tier> out;
    const toml::table* tiers = root["tiers"].as_table();
    if (!tiers)
        throw config_error(path + ": no [tiers.NAME] tables");
    for (const auto& [name, node] : *tiers) {
        const toml::table* t = node.as_table();
        section_reader r{path, "tiers." + std::string(name.str())};
        if (!t)
            r.fail(node, name.str(), "expected a table");
        tier entry;
        entry.name = std::string(name.str());
        for (const auto& [key, value] : *t) {
            if (key == "rpm")
                entry.rpm = r.number(value, key.str(), 0);
            else if (key == "tpm")
                entry.tpm = r.number(value, key.str(), 0);
            else if (key == "description")
                entry.description = r.string(value, key.str());
            else
                r.fail(value, key.str(), "unknown key");
        }
        out.push_back(std::move(entry));
    }
    return out;
}

// Lays the `[prices."MODEL"]` tables of `root` over `into`; a table may set either field of a
// model already there, a new model needs both.
void prices_from(const toml::table& root, const std::string& path, price_table& into) {
    const toml::node* node = root.get("prices");
    if (!node)
        return;
    const section_reader r{path, ""};
    const toml::table* models = node->as_table();
    if (!models)
        r.fail(*node, "prices", "expected tables [prices.\"MODEL\"]");
    for (const auto& [name, entry] : *models) {
        const std::string model(name.str());
        const section_reader mr{path, "prices.\"" + model + "\""};
        const toml::table* t = entry.as_table();
        if (!t)
            r.fail(entry, "prices." + model, "expected a table with input and output");
        if (model.empty())
            r.fail(entry, "prices", "a model name must not be empty");
        std::optional<double> input;
        std::optional<double> output;
        for (const auto& [key, value] : *t) {
            if (key == "input")
                input = mr.number(value, key.str(), 0);
            else if (key == "output")
                output = mr.number(value, key.str(), 0);
            else
                mr.fail(value, key.str(), "unknown key (expected input, output)");
        }
        auto it = into.find(model);
        if (it == into.end()) {
            if (!input || !output)
                mr.fail(entry,
                        input ? "output" : "input",
                        "missing (a model without a built-in price needs input and output)");
            into.emplace(model, model_price{*input, *output});
            continue;
        }
        if (input)
            it->second.input = *input;
        if (output)
            it->second.output = *output;
    }
}

toml::table parse_file(const std::string& path) {
    try {
        return toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        const auto& src = e.source();
        if (src.begin.line == 0)
            throw config_error(path + ": " + std::string(e.description()));
        throw config_error(path + ":" + std::to_string(src.begin.line) + ": " +
                           std::string(e.description()));
    }
}

} // namespace

std::vector<tier> builtin_tiers() {
    const std::string path = "configs/tiers.toml (built in)";
    return tiers_from(parse_toml(builtin_tiers_toml, path), path);
}

std::vector<tier> load_tiers(const std::string& path) {
    try {
        return tiers_from(toml::parse_file(path), path);
    } catch (const toml::parse_error& e) {
        throw config_error(path + ":" + std::to_string(e.source().begin.line) + ": " +
                           std::string(e.description()));
    }
}

const tier& find_tier(const std::vector<tier>& tiers, std::string_view name) {
    std::string known;
    for (const tier& t : tiers) {
        if (t.name == name)
            return t;
        known += (known.empty() ? "" : ", ") + t.name;
    }
    throw config_error("unknown tier \"" + std::string(name) + "\" (known tiers: " + known + ")");
}

price_table builtin_prices() {
    const std::string path = "configs/prices.toml (built in)";
    price_table prices;
    prices_from(parse_toml(builtin_prices_toml, path), path, prices);
    return prices;
}

price_table load_prices(const std::string& config_path) {
    price_table prices = builtin_prices();
    if (!config_path.empty())
        prices_from(parse_file(config_path), config_path, prices);
    return prices;
}

file_settings apply_config_file(const std::string& path, dispatcher_options& opts) {
    const toml::table root = parse_file(path);
    file_settings settings;
    dispatcher_options updated = opts;
    const auto schema = make_schema(updated, settings);
    const section_table& top = schema.at("");
    for (const auto& [key, node] : root) {
        if (key.str() == "prices") {
            // Read by load_prices for --dry-run; checked here so a typo fails every command.
            price_table prices = builtin_prices();
            prices_from(root, path, prices);
            continue;
        }
        if (node.is_table()) {
            auto section = schema.find(key.str());
            if (section == schema.end() || key.str().empty())
                throw config_error(where(path, node) + "unknown section [" +
                                   std::string(key.str()) + "]");
            section_reader reader{path, std::string(key.str())};
            for (const auto& [sub, value] : *node.as_table()) {
                auto it = section->second.find(sub.str());
                if (it == section->second.end())
                    reader.fail(value, sub.str(), "unknown key");
                it->second(value, sub.str(), reader);
            }
            continue;
        }
        section_reader reader{path, ""};
        auto it = top.find(key.str());
        if (it == top.end())
            reader.fail(node, key.str(), "unknown key");
        it->second(node, key.str(), reader);
    }
    try {
        updated.validate();
    } catch (const std::invalid_argument& e) {
        throw config_error(path + ": " + e.what());
    }
    opts = std::move(updated);
    return settings;
}

void apply_environment(dispatcher_options& opts,
                       std::string_view api_key_env,
                       const std::function<const char*(const char*)>& getenv) {
    auto set = [&](const char* name, std::string& target) {
        if (const char* v = getenv(name); v && *v)
            target = v;
    };
    set("OPENAI_BASE_URL", opts.base_url);
    set(std::string(api_key_env).c_str(), opts.api_key);
    set("OPENAI_ORG_ID", opts.organization);
    set("OPENAI_PROJECT_ID", opts.project);
}

} // namespace sluice::cli
