#include "cli/run_options.hpp"

#include <sluice/transport/endpoint.hpp>
#include <sluice/transport/header_value.hpp>
#include <sluice/transport/proxy.hpp>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace sluice::cli {

namespace {

// The proxy: --no-proxy or --proxy, else the environment's for the endpoint's scheme (as curl
// reads it), else the config file's. Errors name where the URL came from, never the URL (it
// may hold a password).
void apply_proxy(const run_options& o, dispatcher_options& opts) {
    auto check = [](const std::string& url, const std::string& where) {
        error_code ec;
        if (!url.empty() && (proxy_endpoint::parse(url, ec), ec))
            throw std::invalid_argument(where + ": not an http:// proxy URL "
                                                "(http://[user:password@]host[:port]); not shown");
    };
    error_code ec;
    const endpoint ep = endpoint::parse(opts.base_url, ec);
    std::string variable;
    const proxy_options env = proxy_from_environment(ec || ep.tls, ::getenv, &variable);
    if (!env.url.empty()) {
        check(env.url, variable);
        opts.proxy.url = env.url;
    }
    if (!env.no_proxy.empty())
        opts.proxy.no_proxy = env.no_proxy;
    if (o.proxy) {
        check(*o.proxy, "--proxy");
        opts.proxy.url = *o.proxy;
    }
    if (o.no_proxy)
        opts.proxy.url.clear();
}

// A tier's limits onto `opts`. A --tier flag (`flag`) outranks the file's rpm and tpm; the
// file's own tier only what it leaves out. A model's limits in the file
// (`[limits.models."NAME"]`) outrank the tier's for that model either way, being the more
// particular; the tier's other models get scopes of their own with the tier's figures and the
// rest of the endpoint's settings (burst, learning, adaptation).
void apply_tier(const tier& t, bool flag, const file_settings& file, dispatcher_options& opts) {
    if (flag || !file.rpm_set)
        opts.limits.rpm = t.rpm;
    if (flag || !file.tpm_set)
        opts.limits.tpm = t.tpm;
    for (const auto& [model, figures] : t.models) {
        if (opts.model_limits.count(model) > 0)
            continue;
        limit_options l = opts.limits;
        l.rpm = figures.rpm;
        l.tpm = figures.tpm;
        opts.model_limits.emplace(model, l);
    }
}

} // namespace

// Flags > environment > config file > defaults, in that order of strength; within the file
// and within the flags, rpm/tpm override the tier's numbers.
dispatcher_options
build_options(const run_options& o, std::string* api_key_env, run_settings* run_file) {
    dispatcher_options opts;
    file_settings file;
    if (!o.config_file.empty())
        file = apply_config_file(o.config_file, opts);
    std::string key_env = o.api_key_env.value_or(file.api_key_env);
    apply_environment(opts, key_env);
    if (run_file)
        *run_file = file.run;

    const std::string tier_name = o.tier.value_or(file.tier);
    if (!tier_name.empty()) {
        const auto tiers = known_tiers(file.tiers_file, o.tiers_file.value_or(""));
        apply_tier(find_tier(tiers, tier_name), o.tier.has_value(), file, opts);
    } else if (o.tiers_file) {
        known_tiers({}, *o.tiers_file); // checked even when no tier is chosen: a typo shows
    }
    if (o.base_url) {
        check_header_flag("--base-url", *o.base_url);
        opts.base_url = *o.base_url;
    }
    if (o.api_style)
        opts.style = parse_api_style(*o.api_style, "--api-style");
    if (o.api_version) {
        check_header_flag("--api-version", *o.api_version);
        opts.api_version = *o.api_version;
    }
    // An Azure endpoint's key is in AZURE_OPENAI_API_KEY, as the SDKs' Azure client reads it,
    // unless a flag or the file names the variable: an OpenAI key is never sent to Azure.
    if (!o.api_key_env && !file.api_key_env_set && opts.effective_style() == api_style::azure) {
        key_env = "AZURE_OPENAI_API_KEY";
        apply_api_key(opts, key_env);
    }
    // Several endpoints (the flags' replace the file's): each names its own URL, key and
    // limits, so the flags that set the one endpoint's are refused rather than dropped.
    std::vector<endpoint_entry> entries = file.endpoints;
    if (!o.endpoints.empty()) {
        entries.clear();
        for (const std::string& arg : o.endpoints)
            entries.push_back(parse_endpoint_flag(arg));
    }
    if (!entries.empty()) {
        const std::pair<const char*, bool> one_endpoint_flags[] = {
            {"--base-url", o.base_url.has_value()},
            {"--api-key-env", o.api_key_env.has_value()},
            {"--api-style", o.api_style.has_value()},
            {"--api-version", o.api_version.has_value()},
            {"--rpm", o.rpm.has_value()},
            {"--tpm", o.tpm.has_value()},
            {"--tier", o.tier.has_value()},
            {"--header", !o.headers.empty()},
        };
        for (const auto& [flag, given] : one_endpoint_flags)
            if (given)
                throw std::invalid_argument(std::string(flag) +
                                            ": with several endpoints (--endpoint or "
                                            "[[endpoints]]) each endpoint gives its own");
        key_env = apply_endpoints(opts, entries);
    }
    if (api_key_env)
        *api_key_env = key_env;
    apply_proxy(o, opts);
    if (o.ca_file)
        opts.tls.ca_file = *o.ca_file;
    if (o.insecure)
        opts.tls.insecure = true;
    if (o.concurrency)
        opts.pool.max_connections = *o.concurrency;
    if (o.rpm)
        opts.limits.rpm = *o.rpm;
    if (o.tpm)
        opts.limits.tpm = *o.tpm;
    if (o.redis)
        opts.shared_budget.url = *o.redis;
    if (o.budget_key)
        opts.shared_budget.key = *o.budget_key;
    if (o.redis_optional)
        opts.shared_budget.optional = true;
    if (o.no_adaptive) {
        opts.limits.adaptive.enabled = false;
        for (auto& [model, limits] : opts.model_limits)
            limits.adaptive.enabled = false;
    }
    if (o.max_attempts)
        opts.retry.max_attempts = *o.max_attempts;
    if (o.retry_budget) {
        opts.retry.budget_ratio = *o.retry_budget;
        // 0 means no retries of failures: the floor of the budget goes too.
        if (*o.retry_budget == 0)
            opts.retry.budget_min_per_second = 0;
    }
    if (o.request_timeout_ms)
        opts.pool.request_timeout = std::chrono::milliseconds(*o.request_timeout_ms);
    if (o.stream_idle_timeout_ms)
        opts.pool.stream_idle_timeout = std::chrono::milliseconds(*o.stream_idle_timeout_ms);
    if (o.deadline_ms)
        opts.deadline = std::chrono::milliseconds(*o.deadline_ms);
    for (const std::string& arg : o.headers) {
        auto header = parse_header_flag(arg);
        auto same = std::find_if(opts.headers.begin(), opts.headers.end(), [&](const auto& h) {
            return same_header_name(h.first, header.first);
        });
        if (same != opts.headers.end())
            same->second = std::move(header.second); // the flag over the file
        else
            opts.headers.push_back(std::move(header));
    }
    // Everything the engine will refuse, refused now, before a file is opened or a byte sent.
    opts.validate();
    return opts;
}

std::pair<std::string, std::string> parse_header_flag(std::string_view arg) {
    const std::size_t colon = arg.find(':');
    if (colon == std::string_view::npos)
        throw std::invalid_argument("--header: expected 'Name: value' (the value is not shown)");
    const std::string name(arg.substr(0, colon));
    if (!is_valid_header_name(name))
        throw std::invalid_argument(
            "--header: " + (is_valid_header_value(name) ? "\"" + name + "\" " : std::string()) +
            "is not a header name (a token: letters, digits, !#$%&'*+-.^_`|~; no blanks)");
    std::string_view value = arg.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
    if (!is_valid_header_value(value))
        throw std::invalid_argument("--header " + name +
                                    ": the value contains a CR, LF, NUL or other control "
                                    "character; refused before anything is sent, and not shown");
    return {name, std::string(value)};
}

void apply_run_settings(run_options& o, const run_settings& file) {
    auto take = [&](const char* flag, auto& target, const auto& value) {
        if (value && !o.given.count(flag))
            target = *value;
    };
    take("--threads", o.threads, file.threads);
    take("--ordered", o.ordered, file.ordered);
    take("--reorder-window", o.reorder_window, file.reorder_window);
    take("--flush-interval-ms", o.flush_interval_ms, file.flush_interval_ms);
    take("--fsync-interval-ms", o.fsync_interval_ms, file.fsync_interval_ms);
    take("--grace-period", o.grace_period_s, file.grace_period_s);
    // The environment outranks the file, as for the engine's options.
    std::optional<double> max_duration = file.max_duration_s;
    if (const char* v = ::getenv("SLUICE_MAX_DURATION"); v && *v) {
        max_duration = parse_env_number(v);
        if (!max_duration)
            throw config_error("SLUICE_MAX_DURATION: expected a number of seconds (0: none), "
                               "got \"" +
                               printable(v) + "\"");
    }
    take("--max-duration", o.max_duration_s, max_duration);
    take("--progress-interval", o.progress_interval_s, file.progress_interval_s);
    take("--model", o.model, file.model);
    take("--system", o.system, file.system);
    take("--metrics-listen", o.metrics_listen, file.metrics_listen);
}

std::string missing_key_error(const dispatcher_options& opts, std::string_view api_key_env) {
    if (!opts.api_key.empty())
        return {};
    const char* auth = opts.effective_style() == api_style::azure ? "api-key" : "Authorization";
    for (const auto& [name, value] : opts.headers)
        if (same_header_name(name, auth))
            return {}; // the user's own authentication

    error_code ec;
    const endpoint ep = endpoint::parse(opts.base_url, ec);
    if (ec || !ep.tls || ep.host_is_loopback())
        return {}; // a bad URL is reported where the engine is built
    return "no API key: set " + std::string(api_key_env) + " (or name another variable with " +
           "--api-key-env) before sending to " + opts.base_url;
}

endpoint_entry parse_endpoint_flag(std::string_view arg) {
    const std::string flag = "--endpoint";
    if (!is_valid_header_value(arg))
        throw std::invalid_argument(flag + ": contains a CR, LF, NUL or other control character");
    endpoint_entry entry;
    endpoint_options& e = entry.endpoint;
    std::size_t at = 0;
    bool first = true;
    while (at <= arg.size()) {
        const std::size_t comma = std::min(arg.find(',', at), arg.size());
        const std::string_view item = arg.substr(at, comma - at);
        at = comma + 1;
        const std::size_t eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0)
            throw std::invalid_argument(
                flag + ": expected NAME=URL[,key=value...] (keys: api_key_env, rpm, tpm, tier, "
                       "weight, models, api_style, api_version, organization, project)");
        const std::string key(item.substr(0, eq));
        const std::string value(item.substr(eq + 1));
        auto number = [&](double min_exclusive) {
            const auto v = parse_env_number(value);
            if (!v || *v <= min_exclusive)
                throw std::invalid_argument(flag + " " + e.name + ": " + key +
                                            ": expected a number" +
                                            (min_exclusive >= 0 ? " > 0" : " >= 0"));
            return *v;
        };
        if (first) {
            e.name = key;
            e.base_url = value;
            first = false;
        } else if (key == "api_key_env")
            entry.api_key_env = value;
        else if (key == "api_key")
            throw std::invalid_argument(flag + " " + e.name +
                                        ": a key is never given on the command line (other "
                                        "users see it in the process list): name its "
                                        "environment variable with api_key_env");
        else if (key == "rpm") {
            e.limits.rpm = number(-1);
            entry.rpm_set = true;
        } else if (key == "tpm") {
            e.limits.tpm = number(-1);
            entry.tpm_set = true;
        } else if (key == "tier")
            entry.tier = value;
        else if (key == "weight")
            e.weight = number(0);
        else if (key == "models") {
            std::size_t from = 0;
            while (from <= value.size()) {
                const std::size_t bar = std::min(value.find('|', from), value.size());
                if (bar > from)
                    e.models.push_back(value.substr(from, bar - from));
                from = bar + 1;
            }
        } else if (key == "api_style")
            e.style = parse_api_style(value, flag + " " + e.name + ": api_style");
        else if (key == "api_version")
            e.api_version = value;
        else if (key == "organization")
            e.organization = value;
        else if (key == "project")
            e.project = value;
        else
            throw std::invalid_argument(flag + " " + e.name + ": unknown key " + key +
                                        " (keys: api_key_env, rpm, tpm, tier, weight, models, "
                                        "api_style, api_version, organization, project)");
    }
    return entry;
}

std::string apply_endpoints(dispatcher_options& opts,
                            const std::vector<endpoint_entry>& entries,
                            const std::function<const char*(const char*)>& getenv) {
    std::vector<endpoint_options> list;
    std::string first_key_env;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const endpoint_entry& entry = entries[i];
        endpoint_options e = entry.endpoint;
        if (!entry.tier.empty()) {
            const auto tiers = builtin_tiers();
            const tier& t = find_tier(tiers, entry.tier);
            if (!entry.rpm_set)
                e.limits.rpm = t.rpm;
            if (!entry.tpm_set)
                e.limits.tpm = t.tpm;
        }
        // The key: from the entry's variable, else as for one endpoint (an Azure endpoint's
        // from AZURE_OPENAI_API_KEY, so an OpenAI key is never sent to Azure).
        dispatcher_options view;
        view.base_url = e.base_url;
        view.style = e.style;
        std::string key_env = entry.api_key_env;
        if (key_env.empty())
            key_env = view.effective_style() == api_style::azure ? "AZURE_OPENAI_API_KEY"
                                                                 : "OPENAI_API_KEY";
        try {
            apply_api_key(view, key_env, getenv);
        } catch (const config_error& err) {
            throw config_error("endpoint " + e.name + ": " + err.what());
        }
        e.api_key = view.api_key;
        if (i == 0) {
            first_key_env = key_env;
        } else {
            dispatcher_options check;
            check.base_url = e.base_url;
            check.style = e.style;
            check.api_key = e.api_key;
            check.headers = e.headers;
            if (const std::string why = missing_key_error(check, key_env); !why.empty())
                throw config_error("endpoint " + e.name + ": " + why);
        }
        list.push_back(std::move(e));
    }
    endpoint_options& d = list.front();
    opts.endpoint_name = d.name;
    opts.base_url = d.base_url;
    opts.api_key = d.api_key;
    opts.style = d.style;
    opts.api_version = d.api_version;
    opts.organization = d.organization;
    opts.project = d.project;
    opts.headers = d.headers;
    opts.limits.rpm = d.limits.rpm;
    opts.limits.tpm = d.limits.tpm;
    opts.limits.burst = d.limits.burst;
    opts.models = d.models;
    opts.weight = d.weight;
    opts.endpoints.assign(std::make_move_iterator(list.begin() + 1),
                          std::make_move_iterator(list.end()));
    return first_key_env;
}

void check_header_flag(std::string_view flag, std::string_view value) {
    if (!is_valid_header_value(value))
        throw std::invalid_argument(std::string(flag) +
                                    ": contains a CR, LF, NUL or other control character; "
                                    "refused before anything is sent");
}

batch_options make_batch_options(const run_options& o, dispatcher_options engine) {
    // --model or the config's [run] model (the file's was checked as it was read).
    check_header_flag("--model", o.model);
    batch_options bo;
    bo.engine = std::move(engine);
    bo.reader.model = o.model;
    bo.reader.system = o.system;
    if (!o.shard.empty()) {
        try {
            bo.reader.shard = shard_spec::parse(o.shard);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string("--") + e.what());
        }
    }
    bo.threads = o.threads;
    bo.retry_failed = o.retry_failed;
    bo.job.ordered = o.ordered;
    bo.job.reorder_window = o.reorder_window;
    bo.job.flush_interval = std::chrono::milliseconds(o.flush_interval_ms);
    bo.job.fsync_interval = std::chrono::milliseconds(o.fsync_interval_ms);
    return bo;
}

} // namespace sluice::cli
