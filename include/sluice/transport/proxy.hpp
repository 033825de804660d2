#pragma once

#include <sluice/error.hpp>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>

namespace sluice {

/// An HTTP proxy that the connection pool tunnels through with `CONNECT host:port`, parsed
/// from a URL such as `http://proxy.example:3128` or `http://user:password@10.0.0.1:3128`.
/// A URL without a scheme is taken as http://, and without a port as port 1080, as curl does.
/// Only http:// proxies are supported (the connection to the proxy is plain; TLS to the
/// server runs inside the tunnel). Credentials in the URL (percent-decoded) become the
/// `Proxy-Authorization: Basic` header of the CONNECT request only, never of the requests
/// inside the tunnel.
struct proxy_endpoint {
    /// Host name or IP literal (IPv6 without brackets); empty: no proxy.
    std::string host;
    std::uint16_t port = 1080;
    /// "Basic base64(user:password)" for Proxy-Authorization; empty when the URL has no
    /// user. A secret: never logged nor put in a message.
    std::string authorization;
    /// The password alone, percent-decoded; empty when none. For scrubbing only.
    std::string password;

    /// Parses `url`; sets `ec` to errc::invalid_url for anything but an http:// proxy URL of
    /// a host, an optional port and optional credentials (a path other than "/", a query or
    /// a fragment included).
    static proxy_endpoint parse(std::string_view url, error_code& ec);

    bool empty() const noexcept { return host.empty(); }

    /// "host:port" (brackets around an IPv6 literal): what messages say of the proxy, never
    /// its credentials.
    std::string display() const;
};

/// Whether and how the engine's connections go through a proxy. By default they do not: the
/// library reads no environment (`proxy_from_environment` does, for front ends that want
/// curl's behaviour, as the `sluice` tool does).
struct proxy_options {
    /// Proxy URL (see proxy_endpoint); empty: connect directly.
    std::string url;
    /// Hosts reached directly although `url` is set, in curl's NO_PROXY syntax: names,
    /// IP addresses or CIDR ranges separated by commas (blanks around them ignored); a name
    /// matches itself and every name under it (`example.com` and `.example.com` both match
    /// `api.example.com` and `example.com`); an entry may end in `:port` to match that port
    /// only (`[::1]:8443` for IPv6); `*` matches every host. Loopback is no exception: only
    /// this list bypasses the proxy.
    std::string no_proxy;
};

/// True when `host` (a name or IP literal, IPv6 without brackets) at `port` is in the
/// NO_PROXY list `no_proxy` (syntax: proxy_options::no_proxy). Names compare without case
/// and a trailing dot.
bool no_proxy_matches(std::string_view no_proxy, std::string_view host, std::uint16_t port);

/// The proxy settings of the environment, as curl reads them, for a server reached over
/// https (`tls`) or http: the URL from `https_proxy`, then `HTTPS_PROXY` (`http_proxy`, then
/// `HTTP_PROXY`, for http), and the list from `no_proxy`, then `NO_PROXY`; an empty variable
/// counts as unset. `url_variable`, when given, receives the name of the variable the URL
/// came from (empty when none), so that an error can name it.
proxy_options
proxy_from_environment(bool tls,
                       const std::function<const char*(const char*)>& getenv = ::getenv,
                       std::string* url_variable = nullptr);

} // namespace sluice
