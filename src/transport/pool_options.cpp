#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/header_value.hpp>

#include "transport/request_head.hpp"

#include <stdexcept>

// The pool's settings: option checks and the request head, apart from the Beast code.
namespace sluice {

void pool_options::validate() const {
    if (max_connections == 0)
        throw std::invalid_argument("pool.max_connections: must be at least 1");
    if (connect_timeout.count() <= 0)
        throw std::invalid_argument("pool.connect_timeout: must be positive");
    if (handshake_timeout.count() <= 0)
        throw std::invalid_argument("pool.handshake_timeout: must be positive");
    if (tunnel_timeout.count() <= 0)
        throw std::invalid_argument("pool.tunnel_timeout: must be positive");
    if (request_timeout.count() <= 0)
        throw std::invalid_argument("pool.request_timeout: must be positive");
    if (stream_idle_timeout.count() <= 0)
        throw std::invalid_argument("pool.stream_idle_timeout: must be positive");
    if (idle_timeout.count() <= 0)
        throw std::invalid_argument("pool.idle_timeout: must be positive");
    if (max_body_size == 0)
        throw std::invalid_argument("pool.max_body_size: must be at least 1");
    if (max_body_bytes_in_flight != 0 && max_body_bytes_in_flight < max_body_size)
        throw std::invalid_argument(
            "pool.max_body_bytes_in_flight: must be 0 or at least max_body_size");
    if (reuse_quiet_period.count() < 0)
        throw std::invalid_argument("pool.reuse_quiet_period: must not be negative");
}

bool is_valid_header_value(std::string_view value) noexcept {
    for (char c : value)
        if ((static_cast<unsigned char>(c) < ' ' && c != '\t') || c == 0x7f)
            return false;
    return true;
}

bool is_valid_header_name(std::string_view name) noexcept {
    if (name.empty())
        return false;
    for (char c : name) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
            return false;
    }
    return true;
}

bool same_header_name(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) {
            return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        };
        if (lower(a[i]) != lower(b[i]))
            return false;
    }
    return true;
}

bool is_framing_header(std::string_view name) noexcept {
    // What request_head writes (Host, Content-Type, Accept; Content-Length per request), and
    // what would change how the request is framed or the connection kept.
    for (std::string_view framing : {"host",
                                     "content-length",
                                     "content-type",
                                     "transfer-encoding",
                                     "connection",
                                     "keep-alive",
                                     "upgrade",
                                     "te",
                                     "trailer",
                                     "expect",
                                     "accept",
                                     "proxy-connection",
                                     "proxy-authorization"})
        if (same_header_name(name, framing))
            return true;
    return false;
}

namespace detail {

namespace {

// The message names the field only: the value may be the key.
void check_header_value(std::string_view value, const char* field) {
    if (!is_valid_header_value(value))
        throw std::invalid_argument(std::string("request_headers.") + field +
                                    ": contains a control character (CR, LF, NUL, ...)");
}

} // namespace

// A custom header: the message names it when its name is printable, never its value.
void check_extra_header(const std::pair<std::string, std::string>& header) {
    const auto& [name, value] = header;
    const std::string shown = is_valid_header_value(name) ? " " + name : std::string();
    if (!is_valid_header_name(name))
        throw std::invalid_argument("request_headers.extra:" + shown +
                                    ": not a header name (a token: letters, digits, "
                                    "!#$%&'*+-.^_`|~)");
    if (!is_valid_header_value(value))
        throw std::invalid_argument("request_headers.extra: " + name +
                                    ": its value contains a control character (CR, LF, NUL, "
                                    "...); not shown");
    if (is_framing_header(name))
        throw std::invalid_argument("request_headers.extra: " + name +
                                    ": sluice writes this header itself to frame every request");
}

std::string request_head(const endpoint& ep, const request_headers& h) {
    check_header_value(h.target, "target");
    return "POST " + h.target + " HTTP/1.1\r\n" + request_fields(ep, h) +
           // Either answer form: a request with "stream": true is answered with an event stream.
           "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n";
}

std::string request_fields(const endpoint& ep, const request_headers& h) {
    check_header_value(h.authorization, "authorization");
    check_header_value(h.api_key, "api_key");
    check_header_value(h.organization, "organization");
    check_header_value(h.project, "project");
    check_header_value(h.user_agent, "user_agent");
    bool own_user_agent = false;
    for (const auto& header : h.extra) {
        check_extra_header(header);
        own_user_agent = own_user_agent || same_header_name(header.first, "User-Agent");
    }
    std::string head = "Host: " + ep.host_header() + "\r\n";
    if (!h.authorization.empty())
        head += "Authorization: " + h.authorization + "\r\n";
    if (!h.api_key.empty())
        head += "api-key: " + h.api_key + "\r\n";
    if (!h.organization.empty())
        head += "OpenAI-Organization: " + h.organization + "\r\n";
    if (!h.project.empty())
        head += "OpenAI-Project: " + h.project + "\r\n";
    if (!own_user_agent)
        head += "User-Agent: " + h.user_agent + "\r\n";
    for (const auto& [name, value] : h.extra)
        head += name + ": " + value + "\r\n";
    return head;
}

} // namespace detail

} // namespace sluice
