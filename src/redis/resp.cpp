#include "redis/resp.hpp"

#include <charconv>

namespace sluice::detail {

void resp_encode(std::string& out, const std::vector<std::string>& args) {
    out += '*';
    out += std::to_string(args.size());
    out += "\r\n";
    for (const std::string& a : args) {
        out += '$';
        out += std::to_string(a.size());
        out += "\r\n";
        out += a;
        out += "\r\n";
    }
}

namespace {

constexpr std::int64_t max_length = 64 << 20;

// The line at `pos` up to CRLF: its end, or npos when incomplete.
std::size_t line_end(std::string_view in, std::size_t pos) {
    const std::size_t cr = in.find('\r', pos);
    if (cr == std::string_view::npos || cr + 1 >= in.size())
        return std::string_view::npos;
    return cr;
}

bool to_int(std::string_view s, std::int64_t& v) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
}

// 0: incomplete, -1: bad, else the position after the value.
std::ptrdiff_t parse_at(std::string_view in, std::size_t pos, resp_value& v, int depth) {
    if (depth > 8)
        return -1;
    if (pos >= in.size())
        return 0;
    const char type = in[pos];
    const std::size_t end = line_end(in, pos + 1);
    if (end == std::string_view::npos)
        return in.size() - pos > 1024 * 1024 ? -1 : 0;
    if (in[end + 1] != '\n')
        return -1;
    const std::string_view line = in.substr(pos + 1, end - pos - 1);
    const std::size_t next = end + 2;
    switch (type) {
    case '+':
    case '-':
        v.type = type == '+' ? resp_value::kind::simple : resp_value::kind::error;
        v.text.assign(line);
        return static_cast<std::ptrdiff_t>(next);
    case ':':
        v.type = resp_value::kind::integer;
        return to_int(line, v.number) ? static_cast<std::ptrdiff_t>(next) : -1;
    case '$': {
        std::int64_t n = 0;
        if (!to_int(line, n) || n < -1 || n > max_length)
            return -1;
        if (n == -1) {
            v.type = resp_value::kind::null;
            return static_cast<std::ptrdiff_t>(next);
        }
        const auto len = static_cast<std::size_t>(n);
        if (in.size() < next + len + 2)
            return 0;
        if (in[next + len] != '\r' || in[next + len + 1] != '\n')
            return -1;
        v.type = resp_value::kind::bulk;
        v.text.assign(in.substr(next, len));
        return static_cast<std::ptrdiff_t>(next + len + 2);
    }
    case '*': {
        std::int64_t n = 0;
        if (!to_int(line, n) || n < -1 || n > 1024 * 1024)
            return -1;
        if (n == -1) {
            v.type = resp_value::kind::null;
            return static_cast<std::ptrdiff_t>(next);
        }
        v.type = resp_value::kind::array;
        v.items.assign(static_cast<std::size_t>(n), resp_value{});
        std::size_t at = next;
        for (auto& item : v.items) {
            const std::ptrdiff_t r = parse_at(in, at, item, depth + 1);
            if (r <= 0)
                return r;
            at = static_cast<std::size_t>(r);
        }
        return static_cast<std::ptrdiff_t>(at);
    }
    default:
        return -1;
    }
}

} // namespace

std::ptrdiff_t resp_parse(std::string_view in, resp_value& value) {
    value = resp_value{};
    return parse_at(in, 0, value, 0);
}

} // namespace sluice::detail
