#include <sluice/dispatcher.hpp>
#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/endpoint.hpp>
#include <sluice/transport/header_value.hpp>
#include <sluice/transport/proxy.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

// The engine's option checks, apart from the dispatcher's Asio code: the config loader and
// its fuzz target need them without building the engine.
namespace sluice {

namespace {

// The custom headers: each a token sent once with a clean value, none that sluice writes
// itself. The messages name the header, never its value (it may be a secret).
void validate_headers(const dispatcher_options& o) {
    for (std::size_t i = 0; i < o.headers.size(); ++i) {
        const auto& [name, value] = o.headers[i];
        if (!is_valid_header_name(name))
            throw std::invalid_argument(
                "headers:" + (is_valid_header_value(name) ? " \"" + name + "\"" : std::string()) +
                " is not a header name (a token: letters, digits, !#$%&'*+-.^_`|~)");
        if (!is_valid_header_value(value))
            throw std::invalid_argument("headers: " + name +
                                        ": the value holds a control character (CR, LF or "
                                        "NUL); not shown");
        for (std::size_t j = 0; j < i; ++j)
            if (same_header_name(o.headers[j].first, name))
                throw std::invalid_argument("headers: " + name + " is given twice");
        if (is_framing_header(name))
            throw std::invalid_argument("headers: " + name +
                                        ": sluice writes this header itself (it frames every "
                                        "request); it cannot be replaced");
        const bool azure = o.effective_style() == api_style::azure;
        if (same_header_name(name, "api-key") && azure && !o.api_key.empty())
            throw std::invalid_argument(
                "headers: api-key would replace the API key's \"api-key\" header (Azure "
                "style); to send your own, configure no API key");
        if (same_header_name(name, "Authorization") && !azure && !o.api_key.empty())
            throw std::invalid_argument(
                "headers: Authorization would replace the API key's \"Authorization: Bearer\" "
                "header; to send your own, configure no API key");
        if (same_header_name(name, "OpenAI-Organization") && !o.organization.empty())
            throw std::invalid_argument(
                "headers: OpenAI-Organization is already sent from organization; set one or "
                "the other");
        if (same_header_name(name, "OpenAI-Project") && !o.project.empty())
            throw std::invalid_argument(
                "headers: OpenAI-Project is already sent from project; set one or the other");
    }
}

bool is_api_version_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

// Azure's api-version: given in a safe spelling, and present one way or the other.
void validate_api_version(const dispatcher_options& o, const endpoint& ep) {
    for (char c : o.api_version)
        if (!is_api_version_char(c))
            throw std::invalid_argument(
                "api_version: letters, digits, '-', '.' and '_' only (e.g. 2024-10-21)");
    if (o.effective_style() != api_style::azure || !o.api_version.empty())
        return;
    const auto in_url = ep.query_param("api-version");
    if (!in_url || in_url->empty())
        throw std::invalid_argument(
            "api_version: Azure OpenAI needs an api-version on every request (without one it "
            "answers 404 \"Resource not found\"): set api_version (--api-version, "
            "OPENAI_API_VERSION) or add ?api-version=... to base_url");
}

} // namespace

api_style dispatcher_options::effective_style() const {
    if (style != api_style::automatic)
        return style;
    error_code ec;
    const endpoint ep = endpoint::parse(base_url, ec);
    return !ec && ep.path_prefix.find("/openai/deployments/") != std::string::npos
               ? api_style::azure
               : api_style::openai;
}

dispatcher_options dispatcher_options::endpoint_view(std::size_t i) const {
    dispatcher_options v = *this;
    v.endpoints.clear();
    if (i == 0)
        return v;
    const endpoint_options& e = endpoints.at(i - 1);
    v.endpoint_name = e.name;
    v.base_url = e.base_url;
    v.api_key = e.api_key;
    v.style = e.style;
    v.api_version = e.api_version;
    v.organization = e.organization;
    v.project = e.project;
    v.headers = e.headers;
    v.limits = e.limits;
    v.models = e.models;
    v.weight = e.weight;
    v.model_limits.clear();
    v.per_model_limits = false;
    return v;
}

namespace {

// The endpoints: named once each, weighed, and each valid as its own options are.
void validate_endpoints(const dispatcher_options& o) {
    for (std::size_t i = 0; i <= o.endpoints.size(); ++i) {
        const std::string& name = i == 0 ? o.endpoint_name : o.endpoints[i - 1].name;
        const double weight = i == 0 ? o.weight : o.endpoints[i - 1].weight;
        const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return is_api_version_char(c);
        });
        if (!plain) // a name goes into the summary's JSON and the metrics' labels as it is
            throw std::invalid_argument((i == 0 ? std::string("endpoint_name")
                                                : "endpoints[" + std::to_string(i - 1) + "].name") +
                                        ": letters, digits, '-', '.' and '_' only, not empty");
        if (!(weight > 0 && std::isfinite(weight)))
            throw std::invalid_argument("endpoints[" + name + "].weight: must be positive");
        for (std::size_t j = 0; j < i; ++j)
            if ((j == 0 ? o.endpoint_name : o.endpoints[j - 1].name) == name)
                throw std::invalid_argument("endpoints: the name " + name + " is given twice");
        if (i == 0)
            continue;
        try {
            o.endpoint_view(i).validate();
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("endpoints[" + name + "]: " + e.what());
        }
    }
    o.breaker.validate();
}

} // namespace

void dispatcher_options::validate() const {
    error_code ec;
    const endpoint ep = endpoint::parse(base_url, ec);
    if (ec) // the URL as given, unless it holds what would break the line it is printed on
        throw std::invalid_argument("base_url: not an http:// or https:// URL" +
                                    (is_valid_header_value(base_url)
                                         ? ": " + base_url
                                         : std::string(" (it holds a control character)")));
    // They go into request headers: a CR or LF would inject lines of its own. The value is
    // never put in the message.
    for (const auto& [name, value] :
         {std::pair<const char*, const std::string&>{"api_key", api_key},
          {"organization", organization},
          {"project", project}}) {
        if (!is_valid_header_value(value))
            throw std::invalid_argument(std::string(name) +
                                        ": holds a control character (CR, LF or NUL)");
    }
    validate_api_version(*this, ep);
    if (!proxy.url.empty()) {
        error_code pec;
        proxy_endpoint::parse(proxy.url, pec);
        if (pec) // never shown: it may hold the proxy's password
            throw std::invalid_argument(
                "proxy.url: not an http:// proxy URL (http://[user:password@]host[:port]); "
                "not shown");
    }
    if (!is_valid_header_value(proxy.no_proxy))
        throw std::invalid_argument("proxy.no_proxy: holds a control character");
    validate_headers(*this);
    shared_budget.validate();
    // Leases are timed by Redis and the steady clock: a manual clock would never see them.
    if (shared_budget.enabled() && clock)
        throw std::invalid_argument("shared_budget: needs the steady clock (leave clock null)");
    if (queue_limit == 0)
        throw std::invalid_argument("queue_limit: must be at least 1");
    pool.validate();
    limits.validate();
    for (const auto& [model, l] : model_limits) {
        if (model.empty())
            throw std::invalid_argument("model_limits: a model name must not be empty");
        l.validate();
    }
    retry.validate();
    if (estimate.chars_per_token <= 0)
        throw std::invalid_argument("estimate.chars_per_token: must be positive");
    if (deadline.count() < 0)
        throw std::invalid_argument("deadline: must not be negative");
    if (!endpoints.empty())
        validate_endpoints(*this);
}

} // namespace sluice
