#include <sluice/transport/header_value.hpp>
#include <sluice/transport/proxy.hpp>

#include "detail/percent_decode.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <charconv>

namespace sluice {

namespace {

using detail::percent_decode;

namespace ip = boost::asio::ip;

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = lower(c);
    return out;
}

bool parse_port(std::string_view text, std::uint16_t& out) noexcept {
    unsigned value = 0;
    const auto [p, err] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || err != std::errc{} || p != text.data() + text.size() || value == 0 ||
        value > 65535)
        return false;
    out = static_cast<std::uint16_t>(value);
    return true;
}

std::string base64(std::string_view in) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16 |
                           static_cast<unsigned char>(in[i + 1]) << 8 |
                           static_cast<unsigned char>(in[i + 2]);
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += alphabet[v >> 6 & 63];
        out += alphabet[v & 63];
    }
    if (i < in.size()) {
        const bool two = i + 1 < in.size();
        const unsigned v = static_cast<unsigned char>(in[i]) << 16 |
                           (two ? static_cast<unsigned char>(in[i + 1]) << 8 : 0u);
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += two ? alphabet[v >> 6 & 63] : '=';
        out += '=';
    }
    return out;
}

bool valid_host_name(std::string_view host) noexcept {
    if (host.empty() || host.front() == '.' || host.find("..") != std::string_view::npos)
        return false;
    for (char c : host)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    return true;
}

// One NO_PROXY entry against the host (lowercase, no trailing dot) and port.
bool entry_matches(std::string_view entry, const std::string& host, std::uint16_t port) {
    if (entry == "*")
        return true;
    std::string_view name = entry;
    std::string_view port_text;
    if (name.front() == '[') { // [v6] or [v6]:port
        const std::size_t close = name.find(']');
        if (close == std::string_view::npos)
            return false;
        const std::string_view after = name.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                return false;
            port_text = after.substr(1);
        }
        name = name.substr(1, close - 1);
    } else if (const std::size_t colon = name.find(':');
               colon != std::string_view::npos &&
               name.find(':', colon + 1) == std::string_view::npos) {
        port_text = name.substr(colon + 1); // name:port; more colons: a bare IPv6 literal
        name = name.substr(0, colon);
    }
    if (!port_text.empty()) {
        std::uint16_t wanted = 0;
        if (!parse_port(port_text, wanted) || wanted != port)
            return false;
    }
    std::string n = lowercase(name);
    while (!n.empty() && n.front() == '.')
        n.erase(0, 1);
    while (!n.empty() && n.back() == '.')
        n.pop_back();
    if (n.empty())
        return false;

    error_code ec;
    const ip::address address = ip::make_address(host, ec);
    const bool host_is_ip = !ec;
    if (const std::size_t slash = n.find('/'); slash != std::string::npos) {
        if (!host_is_ip)
            return false;
        if (address.is_v4()) {
            const auto net = ip::make_network_v4(n, ec);
            return !ec &&
                   (address.to_v4().to_uint() & net.netmask().to_uint()) == net.network().to_uint();
        }
        const auto net = ip::make_network_v6(n, ec);
        if (ec)
            return false;
        const auto bytes = address.to_v6().to_bytes();
        const auto netbytes = net.network().to_bytes();
        unsigned bits = net.prefix_length();
        for (std::size_t i = 0; i < bytes.size() && bits > 0; ++i) {
            const unsigned take = bits >= 8 ? 8 : bits;
            const auto mask = static_cast<unsigned char>(0xff << (8 - take));
            if ((bytes[i] & mask) != (netbytes[i] & mask))
                return false;
            bits -= take;
        }
        return true;
    }
    if (host_is_ip) {
        const ip::address other = ip::make_address(n, ec);
        return !ec && other == address;
    }
    return host == n ||
           (host.size() > n.size() && host.compare(host.size() - n.size(), n.size(), n) == 0 &&
            host[host.size() - n.size() - 1] == '.');
}

} // namespace

proxy_endpoint proxy_endpoint::parse(std::string_view url, error_code& ec) {
    ec = {};
    proxy_endpoint p;
    std::string_view rest = url;
    if (const std::size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
        if (lowercase(rest.substr(0, scheme)) != "http") {
            ec = errc::invalid_url; // https://, socks5://, ...: not supported
            return {};
        }
        rest.remove_prefix(scheme + 3);
    }
    if (!rest.empty() && rest.back() == '/')
        rest.remove_suffix(1);
    if (rest.empty() || rest.find_first_of("/?#") != std::string_view::npos ||
        !is_valid_header_value(rest)) {
        ec = errc::invalid_url;
        return {};
    }
    std::string_view authority = rest;
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority.remove_prefix(at + 1);
        const std::size_t colon = userinfo.find(':');
        std::string user;
        std::string password;
        if (!percent_decode(userinfo.substr(0, colon), user) ||
            (colon != std::string_view::npos &&
             !percent_decode(userinfo.substr(colon + 1), password)) ||
            user.empty()) {
            ec = errc::invalid_url;
            return {};
        }
        p.authorization = "Basic " + base64(user + ":" + password);
        p.password = password;
    }
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            ec = errc::invalid_url;
            return {};
        }
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty() && (after.front() != ':' || after.size() == 1)) {
            ec = errc::invalid_url;
            return {};
        }
        port = after.empty() ? after : after.substr(1);
        error_code aec;
        ip::make_address_v6(std::string(host), aec);
        if (aec) {
            ec = errc::invalid_url;
            return {};
        }
    } else {
        const std::size_t colon = authority.rfind(':');
        if (colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
            if (port.empty()) {
                ec = errc::invalid_url;
                return {};
            }
        }
        if (!valid_host_name(host)) {
            ec = errc::invalid_url;
            return {};
        }
    }
    if (!port.empty() && !parse_port(port, p.port)) {
        ec = errc::invalid_url;
        return {};
    }
    p.host = std::string(host);
    return p;
}

std::string proxy_endpoint::display() const {
    std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    out += ':';
    out += std::to_string(port);
    return out;
}

bool no_proxy_matches(std::string_view no_proxy, std::string_view host, std::uint16_t port) {
    std::string h = lowercase(host);
    while (!h.empty() && h.back() == '.')
        h.pop_back();
    if (h.size() > 2 && h.front() == '[' && h.back() == ']')
        h = h.substr(1, h.size() - 2);
    while (!no_proxy.empty()) {
        const std::size_t comma = no_proxy.find(',');
        std::string_view entry = no_proxy.substr(0, comma);
        no_proxy =
            comma == std::string_view::npos ? std::string_view{} : no_proxy.substr(comma + 1);
        while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t'))
            entry.remove_prefix(1);
        while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t'))
            entry.remove_suffix(1);
        if (!entry.empty() && entry_matches(entry, h, port))
            return true;
    }
    return false;
}

proxy_options proxy_from_environment(bool tls,
                                     const std::function<const char*(const char*)>& getenv,
                                     std::string* url_variable) {
    auto first = [&](std::initializer_list<const char*> names, std::string* which) {
        for (const char* name : names) {
            const char* v = getenv(name);
            if (v && *v) {
                if (which)
                    *which = name;
                return std::string(v);
            }
        }
        if (which)
            which->clear();
        return std::string();
    };
    proxy_options p;
    p.url = tls ? first({"https_proxy", "HTTPS_PROXY"}, url_variable)
                : first({"http_proxy", "HTTP_PROXY"}, url_variable);
    p.no_proxy = first({"no_proxy", "NO_PROXY"}, nullptr);
    return p;
}

} // namespace sluice
