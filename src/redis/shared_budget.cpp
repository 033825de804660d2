#include <sluice/redis/shared_budget.hpp>

#include "detail/percent_decode.hpp"

#include <openssl/sha.h>

#include <charconv>
#include <cstdio>
#include <stdexcept>

namespace sluice {

using detail::percent_decode;

redis_url redis_url::parse(const std::string& text, error_code& ec) {
    ec = {};
    redis_url u;
    const auto bad = [&] {
        ec = make_error_code(std::errc::invalid_argument);
        return redis_url{};
    };
    std::string_view s = text;
    if (s.rfind("redis://", 0) == 0) {
        s.remove_prefix(8);
    } else if (s.rfind("rediss://", 0) == 0) {
        u.tls = true;
        s.remove_prefix(9);
    } else {
        return bad();
    }
    // Userinfo ends at the last '@' before the path: a password may hold '@' unencoded.
    const std::size_t slash = s.find('/');
    std::string_view authority = s.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : s.substr(slash);
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority.remove_prefix(at + 1);
        const std::size_t colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            // redis://secret@host: the one part is the password, as redis-cli takes it.
            if (!percent_decode(userinfo, u.password))
                return bad();
        } else if (!percent_decode(userinfo.substr(0, colon), u.user) ||
                   !percent_decode(userinfo.substr(colon + 1), u.password)) {
            return bad();
        }
    }
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos)
            return bad();
        u.host.assign(authority.substr(1, close - 1));
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':')
                return bad();
            port = rest.substr(1);
        }
    } else {
        const std::size_t colon = authority.rfind(':');
        u.host.assign(authority.substr(0, colon));
        if (colon != std::string_view::npos)
            port = authority.substr(colon + 1);
    }
    if (u.host.empty())
        return bad();
    if (!port.empty() || authority.find(':') != std::string_view::npos) {
        unsigned p = 0;
        const auto [end, perr] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (perr != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
            return bad();
        u.port = static_cast<std::uint16_t>(p);
    }
    if (!path.empty() && path != "/") {
        path.remove_prefix(1);
        unsigned db = 0;
        const auto [end, derr] = std::from_chars(path.data(), path.data() + path.size(), db);
        if (derr != std::errc() || end != path.data() + path.size() || db > 1000000)
            return bad();
        u.db = db;
    }
    return u;
}

std::string redis_url::redacted() const {
    std::string s = tls ? "rediss://" : "redis://";
    if (!user.empty() || !password.empty())
        s += user + (password.empty() ? "" : ":***") + "@";
    s += host.find(':') != std::string::npos ? "[" + host + "]" : host;
    s += ":" + std::to_string(port);
    if (db != 0)
        s += "/" + std::to_string(db);
    return s;
}

std::string redact_redis_url(const std::string& text) {
    error_code ec;
    const redis_url u = redis_url::parse(text, ec);
    if (!ec)
        return u.redacted();
    return "(a URL that is not redis://[[user]:password@]host[:port][/db]; not shown)";
}

void shared_budget_options::validate() const {
    if (!enabled())
        return;
    error_code ec;
    redis_url::parse(url, ec);
    if (ec)
        throw std::invalid_argument("redis: " + redact_redis_url(url));
    if (!(lease.block.count() > 0 && lease.block.count() <= 10))
        throw std::invalid_argument("redis lease block: must be more than 0 and at most 10 s");
    if (lease.ttl.count() < 30)
        throw std::invalid_argument("redis lease ttl: must be at least 30 ms");
    if (timeout.count() <= 0 || reconnect_delay.count() <= 0)
        throw std::invalid_argument("redis timeout and reconnect delay: must be positive");
}

std::string default_budget_key(const std::string& base_url, const std::string& api_key) {
    std::string material = base_url;
    material += '\n';
    material += api_key;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), md);
    std::string key = "sluice-";
    char buf[3];
    for (int i = 0; i < 8; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", md[i]);
        key += buf;
    }
    return key;
}

} // namespace sluice
