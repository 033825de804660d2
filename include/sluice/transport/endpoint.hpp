#pragma once

#include <sluice/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

/// A parsed base URL such as `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`:
/// scheme, host, port, path prefix and query. Requests go to
/// `prefix + "/chat/completions" + "?" + query` (no "?" without a query): a provider that
/// needs a query parameter on every request (Azure OpenAI's `api-version`) gets it from the
/// base URL, e.g. `https://X.openai.azure.com/openai/deployments/NAME?api-version=2024-10-21`.
struct endpoint {
    /// True for https.
    bool tls = true;
    /// Host name or IP literal, without brackets for IPv6.
    std::string host;
    /// Port; the scheme's default when the URL has none.
    std::uint16_t port = 443;
    /// Path prefix without trailing slash ("/v1"; empty for a bare host).
    std::string path_prefix;
    /// Query string without the "?" ("api-version=2024-10-21"); empty when none. A fragment
    /// ("#...") is refused: it is never sent.
    std::string query;

    /// Parses `url`; sets `ec` to errc::invalid_url on a malformed URL or unknown scheme.
    static endpoint parse(std::string_view url, error_code& ec);

    /// The value of query parameter `name` ("api-version"), as written; absent when the query
    /// has no such parameter.
    std::optional<std::string_view> query_param(std::string_view name) const;

    /// Sets query parameter `name` to `value` (both sent as given), replacing its first
    /// occurrence or appending it.
    void set_query_param(std::string_view name, std::string_view value);

    /// `path_prefix + path`, then "?" and `query` when there is one, e.g.
    /// target("/chat/completions") == "/v1/chat/completions".
    std::string target(std::string_view path) const;

    /// The Host header value: host, with ":port" when not the scheme's default, and brackets
    /// around an IPv6 literal.
    std::string host_header() const;

    /// True when `host` is an IPv4 or IPv6 literal (no SNI; certificate checked by IP).
    bool host_is_ip() const;

    /// True when `host` names this machine's loopback interface: 127.0.0.0/8, ::1,
    /// `localhost` or a name under it.
    bool host_is_loopback() const;
};

} // namespace sluice
