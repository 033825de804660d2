#include <sluice/transport/endpoint.hpp>

#include <boost/asio/ip/address.hpp>

#include <charconv>

namespace sluice {

namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size())
        return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
        if (c != prefix[i])
            return false;
    }
    return true;
}

bool valid_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

// The base path goes into the request line as it is: no fragment, and nothing
// that would end the line or the target (a CR/LF here would inject headers).
bool valid_path(std::string_view path) noexcept {
    if (!path.empty() && path.front() != '/')
        return false; // a query or fragment in a base URL
    for (char c : path)
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '?' || c == '#')
            return false;
    return true;
}

// The query goes into the request line as it is: printable, no blank, no fragment.
bool valid_query(std::string_view query) noexcept {
    for (char c : query)
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '#')
            return false;
    return true;
}

// The host and port of an authority with no credentials: "[v6]:port" or "name:port". The
// port is left empty, with `has_port` false, when there is none.
bool split_authority(std::string_view authority,
                     std::string_view& host,
                     std::string_view& port,
                     bool& has_port) {
    has_port = false;
    if (authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos)
            return false;
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                return false;
            port = after.substr(1);
            has_port = true;
        }
        error_code aec;
        boost::asio::ip::make_address_v6(std::string(host), aec);
        // A zone ("fe80::1%eth0") names an interface of this machine: no use for a server's
        // certificate or Host header.
        return !aec && host.find('%') == std::string_view::npos;
    }
    const std::size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
        port = authority.substr(colon + 1);
        has_port = true;
    }
    if (host.empty() || host.front() == '.' || host.find("..") != std::string_view::npos)
        return false; // no host, or an empty label
    for (char c : host)
        if (!valid_host_char(c))
            return false;
    return true;
}

bool parse_port(std::string_view port, std::uint16_t& out) noexcept {
    unsigned value = 0;
    const auto [p, err] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || err != std::errc{} || p != port.data() + port.size() || value == 0 ||
        value > 65535)
        return false;
    out = static_cast<std::uint16_t>(value);
    return true;
}

} // namespace

endpoint endpoint::parse(std::string_view url, error_code& ec) {
    ec = {};
    endpoint ep;
    std::string_view rest;
    if (starts_with_ci(url, "https://")) {
        ep.tls = true;
        ep.port = 443;
        rest = url.substr(8);
    } else if (starts_with_ci(url, "http://")) {
        ep.tls = false;
        ep.port = 80;
        rest = url.substr(7);
    } else {
        ec = errc::invalid_url;
        return {};
    }

    const std::size_t slash = rest.find_first_of("/?#");
    const std::string_view authority = rest.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    std::string_view query;
    if (const std::size_t question = path.find('?'); question != std::string_view::npos) {
        query = path.substr(question + 1);
        path = path.substr(0, question);
        if (!valid_query(query)) {
            ec = errc::invalid_url;
            return {};
        }
    }
    std::string_view host;
    std::string_view port;
    bool has_port = false;
    // No host, credentials in the URL (never send those), a bad path, host or port.
    if (authority.empty() || authority.find('@') != std::string_view::npos || !valid_path(path) ||
        !split_authority(authority, host, port, has_port) ||
        (has_port && !parse_port(port, ep.port))) {
        ec = errc::invalid_url;
        return {};
    }
    ep.host = std::string(host);
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
    ep.path_prefix = std::string(path);
    ep.query = std::string(query);
    return ep;
}

std::optional<std::string_view> endpoint::query_param(std::string_view name) const {
    std::string_view rest = query;
    while (!rest.empty()) {
        const std::size_t amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const std::size_t eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    }
    return std::nullopt;
}

void endpoint::set_query_param(std::string_view name, std::string_view value) {
    const std::string pair = std::string(name) + "=" + std::string(value);
    std::size_t from = 0;
    while (from <= query.size()) {
        std::size_t amp = query.find('&', from);
        if (amp == std::string::npos)
            amp = query.size();
        const std::string_view item = std::string_view(query).substr(from, amp - from);
        if (item.substr(0, item.find('=')) == name) {
            query.replace(from, amp - from, pair);
            return;
        }
        from = amp + 1;
    }
    if (!query.empty())
        query += '&';
    query += pair;
}

std::string endpoint::target(std::string_view path) const {
    std::string t = path_prefix + std::string(path);
    if (!query.empty()) {
        t += '?';
        t += query;
    }
    return t;
}

std::string endpoint::host_header() const {
    const bool v6 = host.find(':') != std::string::npos;
    std::string h = v6 ? "[" + host + "]" : host;
    if (port != (tls ? 443 : 80)) {
        // Appended in two steps: GCC 12 warns (-Wrestrict, a false positive) on
        // ":" + std::to_string(port) at -O3.
        h += ':';
        h += std::to_string(port);
    }
    return h;
}

bool endpoint::host_is_ip() const {
    error_code ec;
    boost::asio::ip::make_address(host, ec);
    return !ec;
}

bool endpoint::host_is_loopback() const {
    error_code ec;
    const auto address = boost::asio::ip::make_address(host, ec);
    if (!ec)
        return address.is_loopback();
    // RFC 6761 reserves "localhost" and its subdomains for the loopback interface.
    std::string name(host);
    for (char& c : name)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    if (!name.empty() && name.back() == '.')
        name.pop_back();
    return name == "localhost" ||
           (name.size() > 10 && name.compare(name.size() - 10, 10, ".localhost") == 0);
}

} // namespace sluice
