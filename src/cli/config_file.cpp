#include "cli/config_file.hpp"
#include "cli/toml_value.hpp"

#include <sluice/transport/header_value.hpp>
#include <sluice/transport/proxy.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

namespace sluice::cli {

extern const char* const builtin_tiers_toml;  // generated from configs/tiers.toml
extern const char* const builtin_prices_toml; // generated from configs/prices.toml

namespace {

using detail::parse_file;
using detail::parse_toml;
using detail::toml_value;
using detail::where;

// Where a config file's keys are stored.
struct targets {
    dispatcher_options& o;
    file_settings& f;
};

// Short names, so that a key of the tables below fits on one line.
using V = const toml_value&;
using T = targets&;

// One key of the config file: its section ("" at the top level), its name, and a reader that
// checks its type and range and stores it.
struct key_spec {
    std::string_view section;
    std::string_view name;
    void (*read)(V, T);
};

// A key of a table whose target is one struct, such as a model's limits or a tier.
template <class Target>
struct field {
    std::string_view name;
    void (*read)(V, Target&);
};

// Reads `v` with its entry of `fields`; false when `fields` has none.
template <class Target, std::size_t N>
bool read_field(const std::array<field<Target>, N>& fields, V v, Target& target) {
    for (const field<Target>& f : fields) {
        if (f.name == v.key) {
            f.read(v, target);
            return true;
        }
    }
    return false;
}

// Reads the table `table` (its name the key, its keys in `table.section`) into `target` with
// `fields`; a key not in `fields` is an error.
template <class Target, std::size_t N>
void read_fields(V table, const std::array<field<Target>, N>& fields, Target& target) {
    const toml::table* t = table.node.as_table();
    if (!t)
        table.fail("expected a table");
    for (const auto& [key, value] : *t) {
        const toml_value v{table.path, table.section, key.str(), value};
        if (!read_field(fields, v, target))
            v.fail("unknown key");
    }
}

// The keys [limits] and every [limits.models.NAME] share, read by the same entries, so a key
// means and checks the same in both.
using L = limit_options&;
using limit_field = field<limit_options>;
// clang-format off
constexpr std::array limit_fields{
    limit_field{"rpm", [](V v, L l) { l.rpm = v.number(0); }},
    limit_field{"tpm", [](V v, L l) { l.tpm = v.number(0); }},
    limit_field{"burst_seconds", [](V v, L l) {
        l.burst = std::chrono::duration<double>(v.number_in(0, 60, "expected seconds in (0, 60]"));
    }},
    limit_field{"learn_from_headers", [](V v, L l) { l.learn_from_headers = v.boolean(); }},
    limit_field{"adaptive", [](V v, L l) { l.adaptive.enabled = v.boolean(); }},
};
// clang-format on

overflow_policy read_on_full(V v) {
    const std::string s = v.string();
    if (s == "wait")
        return overflow_policy::wait;
    if (s == "fail")
        return overflow_policy::fail;
    v.fail("expected \"wait\" or \"fail\", got \"" + s + "\"");
}

unsigned read_threads(V v) {
    const auto n = v.integer<unsigned>(1);
    if (n > 64)
        v.fail("expected at most 64 event loops");
    return n;
}

// [limits.models."gpt-4o"]: a key left out takes limit_options' default, not [limits]' value.
void read_model_limits(V v, T t) {
    const toml::table* models = v.node.as_table();
    if (!models)
        v.fail("expected tables [limits.models.NAME]");
    for (const auto& [model, node] : *models) {
        const std::string name(model.str());
        limit_options l;
        read_fields(toml_value{v.path, "limits.models." + name, name, node}, limit_fields, l);
        t.o.model_limits[name] = l;
    }
}

using u32 = std::uint32_t;
using u64 = std::uint64_t;
using usize = std::size_t;
constexpr double inf = std::numeric_limits<double>::infinity();

// Every key of configs/default.toml but the [limits] ones in limit_fields and the [prices]
// tables; a key not here (or there) is an error.
// clang-format off
constexpr key_spec keys[] = {
    {"", "base_url", [](V v, T t) { t.o.base_url = v.header_value(); }},
    {"", "api_key_env", [](V v, T t) {
        t.f.api_key_env = v.header_value();
        t.f.api_key_env_set = true;
    }},
    {"", "api_style", [](V v, T t) {
        const std::string s = v.string();
        if (s != "openai" && s != "azure" && s != "auto")
            v.fail("expected \"openai\", \"azure\" or \"auto\"");
        t.o.style = parse_api_style(s, "api_style");
        t.f.api_style_set = true;
    }},
    {"", "api_version", [](V v, T t) { t.o.api_version = v.header_value(); }},
    {"", "proxy", [](V v, T t) {
        t.o.proxy.url = v.header_value();
        error_code ec;
        if (!t.o.proxy.url.empty() && (proxy_endpoint::parse(t.o.proxy.url, ec), ec))
            v.fail("not an http:// proxy URL (http://[user:password@]host[:port]); not shown");
    }},
    {"", "no_proxy", [](V v, T t) { t.o.proxy.no_proxy = v.header_value(); }},
    {"", "organization", [](V v, T t) { t.o.organization = v.header_value(); }},
    {"", "project", [](V v, T t) { t.o.project = v.header_value(); }},
    {"", "queue_limit", [](V v, T t) { t.o.queue_limit = v.integer<usize>(1); }},
    {"", "on_full", [](V v, T t) { t.o.on_full = read_on_full(v); }},
    {"", "deadline_ms", [](V v, T t) { t.o.deadline = v.millis(0); }},

    {"pool", "max_connections", [](V v, T t) { t.o.pool.max_connections = v.integer<usize>(1); }},
    {"pool", "max_connecting", [](V v, T t) { t.o.pool.max_connecting = v.integer<usize>(0); }},
    {"pool", "connect_timeout_ms", [](V v, T t) { t.o.pool.connect_timeout = v.millis(1); }},
    {"pool", "handshake_timeout_ms", [](V v, T t) { t.o.pool.handshake_timeout = v.millis(1); }},
    {"pool", "tunnel_timeout_ms", [](V v, T t) { t.o.pool.tunnel_timeout = v.millis(1); }},
    {"pool", "request_timeout_ms", [](V v, T t) { t.o.pool.request_timeout = v.millis(1); }},
    {"pool", "stream_idle_timeout_ms",
        [](V v, T t) { t.o.pool.stream_idle_timeout = v.millis(1); }},
    {"pool", "idle_timeout_ms", [](V v, T t) { t.o.pool.idle_timeout = v.millis(1); }},
    {"pool", "max_body_size", [](V v, T t) { t.o.pool.max_body_size = v.integer<usize>(1); }},
    {"pool", "max_body_bytes_in_flight",
        [](V v, T t) { t.o.pool.max_body_bytes_in_flight = v.integer<usize>(0); }},
    {"pool", "reuse_quiet_period_ms", [](V v, T t) { t.o.pool.reuse_quiet_period = v.millis(0); }},

    {"run", "threads", [](V v, T t) { t.f.run.threads = read_threads(v); }},
    {"run", "ordered", [](V v, T t) { t.f.run.ordered = v.boolean(); }},
    {"run", "reorder_window", [](V v, T t) { t.f.run.reorder_window = v.integer<usize>(1); }},
    {"run", "flush_interval_ms", [](V v, T t) { t.f.run.flush_interval_ms = v.integer<u64>(0); }},
    {"run", "fsync_interval_ms", [](V v, T t) { t.f.run.fsync_interval_ms = v.integer<u64>(0); }},
    {"run", "grace_period_s", [](V v, T t) { t.f.run.grace_period_s = v.number(0); }},
    {"run", "max_duration_s", [](V v, T t) { t.f.run.max_duration_s = v.number(0); }},
    {"run", "progress_interval_s", [](V v, T t) {
        t.f.run.progress_interval_s = v.number_in(0, inf, "expected a number > 0");
    }},
    {"run", "model", [](V v, T t) { t.f.run.model = v.header_value(); }},
    {"run", "system", [](V v, T t) { t.f.run.system = v.string(); }},
    {"run", "metrics_listen", [](V v, T t) { t.f.run.metrics_listen = v.string(); }},

    {"tls", "ca_file", [](V v, T t) { t.o.tls.ca_file = v.string(); }},
    {"tls", "insecure", [](V v, T t) { t.o.tls.insecure = v.boolean(); }},

    // rpm, tpm, burst_seconds, learn_from_headers: limit_fields.
    {"limits", "tier", [](V v, T t) { t.f.tier = v.string(); }},
    {"limits", "tiers_file", [](V v, T t) { t.f.tiers_file = v.string(); }},
    {"limits", "per_model", [](V v, T t) { t.o.per_model_limits = v.boolean(); }},
    {"limits", "redis", [](V v, T t) { t.o.shared_budget.url = v.string(); }},
    {"limits", "budget_key", [](V v, T t) { t.o.shared_budget.key = v.string(); }},
    {"limits", "redis_optional", [](V v, T t) { t.o.shared_budget.optional = v.boolean(); }},
    {"limits", "models", read_model_limits},

    {"retry", "max_attempts", [](V v, T t) { t.o.retry.max_attempts = v.integer<unsigned>(1); }},
    {"retry", "initial_backoff_ms", [](V v, T t) { t.o.retry.initial_backoff = v.millis(0); }},
    {"retry", "max_backoff_ms", [](V v, T t) { t.o.retry.max_backoff = v.millis(0); }},
    {"retry", "max_retry_after_ms", [](V v, T t) { t.o.retry.max_retry_after = v.millis(0); }},
    {"retry", "budget_ratio", [](V v, T t) { t.o.retry.budget_ratio = v.number(0); }},
    {"retry", "budget_min_per_second",
        [](V v, T t) { t.o.retry.budget_min_per_second = v.number(0); }},
    {"retry", "budget_window_s",
        [](V v, T t) { t.o.retry.budget_window = std::chrono::seconds(v.integer(1)); }},

    {"breaker", "failure_threshold",
        [](V v, T t) { t.o.breaker.failure_threshold = v.integer<unsigned>(0); }},
    {"breaker", "cool_down_ms", [](V v, T t) { t.o.breaker.cool_down = v.millis(1); }},
    {"breaker", "max_cool_down_ms", [](V v, T t) { t.o.breaker.max_cool_down = v.millis(1); }},

    {"estimate", "chars_per_token", [](V v, T t) {
        t.o.estimate.chars_per_token = v.number_in(0, inf, "expected a positive number");
    }},
    {"estimate", "per_message_overhead",
        [](V v, T t) { t.o.estimate.per_message_overhead = v.integer<u32>(0); }},
    {"estimate", "per_request_overhead",
        [](V v, T t) { t.o.estimate.per_request_overhead = v.integer<u32>(0); }},
    {"estimate", "default_max_tokens",
        [](V v, T t) { t.o.estimate.default_max_tokens = v.integer<u32>(1); }},
};
// clang-format on

// A table at the top level: a section of `keys` (not "", which holds the top-level keys).
bool is_section(std::string_view name) {
    if (name.empty())
        return false;
    for (const key_spec& k : keys) {
        if (k.section == name)
            return true;
    }
    return false;
}

void read_key(V v, T t) {
    if (v.section == "limits" && read_field(limit_fields, v, t.o.limits))
        return;
    for (const key_spec& k : keys) {
        if (k.section == v.section && k.name == v.key)
            return k.read(v, t);
    }
    v.fail("unknown key");
}

void read_section(const std::string& path, std::string_view name, const toml::node& node, T t) {
    if (!is_section(name))
        throw config_error(where(path, node) + "unknown section [" + std::string(name) + "]");
    for (const auto& [key, value] : *node.as_table())
        read_key(toml_value{path, name, key.str(), value}, t);
}

// The keys of a [tiers.NAME.models."MODEL"] table (or inline table).
using tier_model_ref = tier_model_limits&;
// clang-format off
constexpr std::array tier_model_fields{
    field<tier_model_limits>{"rpm", [](V v, tier_model_ref m) { m.rpm = v.number(0); }},
    field<tier_model_limits>{"tpm", [](V v, tier_model_ref m) { m.tpm = v.number(0); }},
};
// clang-format on

// [tiers.NAME.models]: "MODEL" = { rpm = ..., tpm = ... }, each a model name as sent in a
// request body.
void read_tier_models(V v, tier& t) {
    const toml::table* models = v.node.as_table();
    if (!models)
        v.fail("expected tables [" + std::string(v.section) + ".models.\"MODEL\"]");
    const std::string section = std::string(v.section) + ".models";
    for (const auto& [key, node] : *models) {
        const std::string model(key.str());
        const toml_value entry{v.path, section, key.str(), node};
        if (model.empty())
            entry.fail("a model name must not be empty");
        if (!node.is_table())
            entry.fail("expected a table { rpm = ..., tpm = ... }");
        tier_model_limits limits;
        read_fields(toml_value{v.path, section + ".\"" + model + "\"", key.str(), node},
                    tier_model_fields,
                    limits);
        t.models[model] = limits;
    }
}

// The keys of a [tiers.NAME] table of configs/tiers.toml.
using tier_ref = tier&;
// clang-format off
constexpr std::array tier_fields{
    field<tier>{"rpm", [](V v, tier_ref t) { t.rpm = v.number(0); }},
    field<tier>{"tpm", [](V v, tier_ref t) { t.tpm = v.number(0); }},
    field<tier>{"description", [](V v, tier_ref t) { t.description = v.string(); }},
    field<tier>{"models", read_tier_models},
};
// clang-format on

std::vector<tier> tiers_from(const toml::table& root, const std::string& path) {
    std::vector<tier> out;
    const toml::table* tiers = root["tiers"].as_table();
    if (!tiers)
        throw config_error(path + ": no [tiers.NAME] tables");
    for (const auto& [name, node] : *tiers) {
        tier entry;
        entry.name = std::string(name.str());
        read_fields(toml_value{path, "tiers." + entry.name, name.str(), node}, tier_fields, entry);
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
    const toml::table* models = node->as_table();
    if (!models)
        toml_value{path, "", "prices", *node}.fail("expected tables [prices.\"MODEL\"]");
    for (const auto& [name, entry] : *models) {
        const std::string model(name.str());
        const std::string section = "prices.\"" + model + "\"";
        const toml::table* t = entry.as_table();
        if (!t)
            toml_value{path, "", "prices." + model, entry}.fail(
                "expected a table with input and output");
        if (model.empty())
            toml_value{path, "", "prices", entry}.fail("a model name must not be empty");
        std::optional<double> input;
        std::optional<double> output;
        for (const auto& [key, value] : *t) {
            const toml_value v{path, section, key.str(), value};
            if (key == "input")
                input = v.number(0);
            else if (key == "output")
                output = v.number(0);
            else
                v.fail("unknown key (expected input, output)");
        }
        auto it = into.find(model);
        if (it == into.end()) {
            if (!input || !output)
                toml_value{path, section, input ? "output" : "input", entry}.fail(
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

// [headers]: "Name" = "value", or "Name" = { env = "VARIABLE" } for a value that is a secret
// and so belongs in the environment, not in a file. Errors name the header, never the value.
void read_headers(const std::string& path, const toml::node& node, dispatcher_options& o) {
    const toml::table* headers = node.as_table();
    if (!headers)
        toml_value{path, "", "headers", node}.fail("expected a table [headers]");
    for (const auto& [key, value] : *headers) {
        const std::string name(key.str());
        if (!is_valid_header_name(name))
            throw config_error(where(path, value) + "[headers]: " +
                               (is_valid_header_value(name) ? "\"" + name + "\" " : std::string()) +
                               "is not a header name (a token: letters, digits, "
                               "!#$%&'*+-.^_`|~)");
        const toml_value v{path, "headers", name, value};
        std::string text;
        if (const toml::table* from = value.as_table()) {
            const toml::node* env = from->get("env");
            if (!env || from->size() != 1)
                v.fail("expected a string or { env = \"VARIABLE\" }");
            const std::string variable = toml_value{path, "headers", name, *env}.string();
            const char* set = ::getenv(variable.c_str());
            if (!set)
                v.fail("the environment variable " + variable + " is not set");
            text = set;
            if (!is_valid_header_value(text))
                v.fail("the environment variable " + variable +
                       " contains a CR, LF, NUL or other control character; refused before "
                       "anything is sent, and not shown");
        } else {
            text = v.header_value();
        }
        for (const auto& [other, ignored] : o.headers)
            if (same_header_name(other, name))
                v.fail("given twice (header names ignore case)");
        o.headers.emplace_back(name, std::move(text));
    }
}

// One [[endpoints]] table. Its key only by the name of a variable: a key in a file that may be
// logged or committed is what this shape exists to avoid, so `api_key` is refused.
endpoint_entry read_endpoint(const std::string& path, std::size_t index, const toml::node& node) {
    const std::string section = "endpoints[" + std::to_string(index) + "]";
    const toml::table* table = node.as_table();
    if (!table)
        toml_value{path, "", "endpoints", node}.fail("expected tables [[endpoints]]");
    endpoint_entry entry;
    endpoint_options& e = entry.endpoint;
    for (const auto& [key, value] : *table) {
        const std::string k(key.str());
        const toml_value v{path, section, k, value};
        if (k == "name")
            e.name = v.string();
        else if (k == "base_url")
            e.base_url = v.header_value();
        else if (k == "api_key_env")
            entry.api_key_env = v.header_value();
        else if (k == "api_key")
            v.fail("a key is never written in a file: put it in an environment variable and "
                   "name that with api_key_env");
        else if (k == "api_style")
            e.style = parse_api_style(v.string(), section + " api_style");
        else if (k == "api_version")
            e.api_version = v.header_value();
        else if (k == "organization")
            e.organization = v.header_value();
        else if (k == "project")
            e.project = v.header_value();
        else if (k == "rpm") {
            e.limits.rpm = v.number(0);
            entry.rpm_set = true;
        } else if (k == "tpm") {
            e.limits.tpm = v.number(0);
            entry.tpm_set = true;
        } else if (k == "burst_seconds")
            e.limits.burst =
                std::chrono::duration<double>(v.number_in(0, 60, "expected seconds in (0, 60]"));
        else if (k == "tier")
            entry.tier = v.string();
        else if (k == "weight")
            e.weight = v.number_in(0, inf, "expected a number > 0");
        else if (k == "models") {
            const toml::array* models = value.as_array();
            if (!models)
                v.fail("expected a list of model names");
            for (const toml::node& m : *models)
                e.models.push_back(toml_value{path, section, k, m}.header_value());
        } else if (k == "headers") {
            dispatcher_options scratch;
            read_headers(path, value, scratch);
            e.headers = std::move(scratch.headers);
        } else
            v.fail("unknown key (expected name, base_url, api_key_env, api_style, api_version, "
                   "organization, project, rpm, tpm, burst_seconds, tier, weight, models, "
                   "headers)");
    }
    if (e.name.empty())
        toml_value{path, section, "name", node}.fail("missing: every endpoint needs a name");
    if (e.base_url.empty())
        toml_value{path, section, "base_url", node}.fail("missing: every endpoint needs one");
    return entry;
}

// [[endpoints]]: each endpoint names its own URL, key variable and limits, so the top-level
// ones would be ignored; refused instead, so that no setting is silently dropped.
void read_endpoints(const std::string& path, const toml::table& root, file_settings& settings) {
    const toml::node* node = root.get("endpoints");
    const toml::array* list = node->as_array();
    if (!list || list->empty())
        toml_value{path, "", "endpoints", *node}.fail("expected tables [[endpoints]]");
    for (std::size_t i = 0; i < list->size(); ++i)
        settings.endpoints.push_back(read_endpoint(path, i, *list->get(i)));
    for (const char* key : {"base_url",
                            "api_key_env",
                            "api_style",
                            "api_version",
                            "organization",
                            "project",
                            "headers"})
        if (const toml::node* n = root.get(key))
            toml_value{path, "", key, *n}.fail(
                "with [[endpoints]], each endpoint gives its own (this would be ignored)");
    if (const toml::table* limits = root["limits"].as_table())
        for (const char* key : {"rpm", "tpm", "tier"})
            if (const toml::node* n = limits->get(key))
                toml_value{path, "limits", key, *n}.fail(
                    "with [[endpoints]], each endpoint gives its own (this would be ignored)");
}

} // namespace

std::vector<tier> builtin_tiers() {
    const std::string path = "configs/tiers.toml (built in)";
    return tiers_from(parse_toml(builtin_tiers_toml, path), path);
}

std::vector<tier> load_tiers(const std::string& path) {
    return tiers_from(parse_file(path), path);
}

void merge_tiers(std::vector<tier>& into, std::vector<tier> from) {
    for (tier& t : from) {
        auto same = std::find_if(
            into.begin(), into.end(), [&](const tier& known) { return known.name == t.name; });
        if (same != into.end())
            *same = std::move(t);
        else
            into.push_back(std::move(t));
    }
}

std::vector<tier> known_tiers(const std::string& file_tiers, const std::string& flag_tiers) {
    std::vector<tier> tiers = builtin_tiers();
    for (const std::string* path : {&file_tiers, &flag_tiers})
        if (!path->empty())
            merge_tiers(tiers, load_tiers(*path));
    return tiers;
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
    targets t{updated, settings};
    for (const auto& [key, node] : root) {
        if (key.str() == "prices") {
            // Read by load_prices for --dry-run; checked here so a typo fails every command.
            price_table prices = builtin_prices();
            prices_from(root, path, prices);
        } else if (key.str() == "headers") {
            read_headers(path, node, updated);
        } else if (key.str() == "endpoints") {
            read_endpoints(path, root, settings);
        } else if (node.is_table()) {
            read_section(path, key.str(), node, t);
        } else {
            read_key(toml_value{path, "", key.str(), node}, t);
        }
    }
    if (const toml::table* limits = root["limits"].as_table()) {
        settings.rpm_set = limits->contains("rpm");
        settings.tpm_set = limits->contains("tpm");
    }
    try {
        updated.validate();
    } catch (const std::invalid_argument& e) {
        throw config_error(path + ": " + e.what());
    }
    opts = std::move(updated);
    return settings;
}

namespace {

// Every value here goes into the request line or a header: a CR or LF (a key pasted with its
// newline) would end the header and start another. Refused naming the variable; the value
// itself may be the key, so it is never shown.
void set_from_env(const std::function<const char*(const char*)>& getenv,
                  const char* name,
                  std::string& target,
                  const char* what) {
    const char* v = getenv(name);
    if (!v || !*v)
        return;
    if (!is_valid_header_value(v))
        throw config_error(std::string(name) + ": " + what +
                           " contains a CR, LF or other control character (a line end "
                           "copied with it?); refused before anything is sent, and not "
                           "shown");
    target = v;
}

} // namespace

void apply_environment(dispatcher_options& opts,
                       std::string_view api_key_env,
                       const std::function<const char*(const char*)>& getenv) {
    set_from_env(getenv, "OPENAI_BASE_URL", opts.base_url, "the base URL");
    set_from_env(getenv, std::string(api_key_env).c_str(), opts.api_key, "the API key");
    set_from_env(getenv, "OPENAI_ORG_ID", opts.organization, "the organization");
    set_from_env(getenv, "OPENAI_PROJECT_ID", opts.project, "the project");
    set_from_env(getenv, "OPENAI_API_VERSION", opts.api_version, "the API version");
    // A URL that may hold a password: read, never shown (validate() shows it redacted).
    if (const char* v = getenv("SLUICE_REDIS_URL"); v && *v)
        opts.shared_budget.url = v;
    if (const char* v = getenv("SLUICE_DEADLINE_MS"); v && *v) {
        const auto ms = parse_env_number(v);
        if (!ms || *ms != std::floor(*ms) || *ms > 1e15)
            throw config_error("SLUICE_DEADLINE_MS: expected a whole number of milliseconds "
                               "(0: none), got \"" +
                               printable(v) + "\"");
        opts.deadline = std::chrono::milliseconds(static_cast<std::int64_t>(*ms));
    }
}

std::optional<double> parse_env_number(std::string_view text) {
    double value = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || p != text.data() + text.size() || !std::isfinite(value) || value < 0)
        return std::nullopt;
    return value;
}

std::string printable(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, 40))
        out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
    return out;
}

void apply_api_key(dispatcher_options& opts,
                   std::string_view api_key_env,
                   const std::function<const char*(const char*)>& getenv) {
    opts.api_key.clear();
    set_from_env(getenv, std::string(api_key_env).c_str(), opts.api_key, "the API key");
}

api_style parse_api_style(std::string_view text, std::string_view where) {
    if (text == "openai")
        return api_style::openai;
    if (text == "azure")
        return api_style::azure;
    if (text == "auto")
        return api_style::automatic;
    throw config_error(std::string(where) + ": expected \"openai\", \"azure\" or \"auto\"");
}

} // namespace sluice::cli
