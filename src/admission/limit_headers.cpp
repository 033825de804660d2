#include <sluice/admission/limit_headers.hpp>

#include "detail/trim.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <ctime>

namespace sluice {

namespace {

std::string_view trim(std::string_view s) noexcept {
    return detail::trim(s, detail::http_blanks);
}

// A non-negative decimal number ("60000", "59.5", ".5"); the whole of `s` must be used.
std::optional<double> parse_number(std::string_view s) noexcept {
    s = trim(s);
    if (s.empty() || s.front() == '-' || s.front() == '+')
        return std::nullopt;
    double value = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(value) || value < 0)
        return std::nullopt;
    return value;
}

// Nanoseconds from a non-negative count; empty beyond about 30 years, which no server means
// and which would overflow on the way to a time point.
std::optional<std::chrono::nanoseconds> to_ns(double ns) noexcept {
    if (!(ns >= 0 && ns <= 1e18))
        return std::nullopt;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(ns)));
}

// An IMF-fixdate as in "Wed, 21 Oct 2015 07:28:00 GMT" (RFC 9110), without locale.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s) noexcept {
    static constexpr std::string_view months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    s = trim(s);
    // "Www, DD Mon YYYY HH:MM:SS GMT" is exactly 29 characters.
    if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT")
        return std::nullopt;
    auto num = [&](std::size_t pos, std::size_t len, int& out) {
        const auto [p, ec] = std::from_chars(s.data() + pos, s.data() + pos + len, out);
        return ec == std::errc{} && p == s.data() + pos + len;
    };
    std::tm tm{};
    int day = 0, year = 0, hour = 0, minute = 0, second = 0;
    if (!num(5, 2, day) || !num(12, 4, year) || !num(17, 2, hour) || !num(20, 2, minute) ||
        !num(23, 2, second))
        return std::nullopt;
    int month = -1;
    for (int i = 0; i < 12; ++i)
        if (s.substr(8, 3) == months[i])
            month = i;
    // Years outside 1900-2200 are garbage, and would overflow system_clock's nanoseconds.
    if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60 ||
        year < 1900 || year > 2200)
        return std::nullopt;
    tm.tm_mday = day;
    tm.tm_mon = month;
    tm.tm_year = year - 1900;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const std::time_t t = ::timegm(&tm);
    if (t == static_cast<std::time_t>(-1))
        return std::nullopt;
    return std::chrono::system_clock::from_time_t(t);
}

} // namespace

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) noexcept {
    std::string_view s = trim(text);
    if (s.empty())
        return std::nullopt;
    if (auto seconds = parse_number(s))
        return to_ns(*seconds * 1e9);

    // Go's time.Duration format: a sequence of <number><unit>, units h, m, s, ms, us/µs, ns.
    double total_ns = 0;
    while (!s.empty()) {
        std::size_t n = 0;
        while (n < s.size() && ((s[n] >= '0' && s[n] <= '9') || s[n] == '.'))
            ++n;
        if (n == 0)
            return std::nullopt;
        const auto value = parse_number(s.substr(0, n));
        if (!value)
            return std::nullopt;
        s.remove_prefix(n);
        double unit = 0;
        if (s.starts_with("ms")) {
            unit = 1e6;
            s.remove_prefix(2);
        } else if (s.starts_with("us")) {
            unit = 1e3;
            s.remove_prefix(2);
        } else if (s.starts_with("\xC2\xB5s") || s.starts_with("\xCE\xBCs")) { // µs, μs (as Go)
            unit = 1e3;
            s.remove_prefix(3);
        } else if (s.starts_with("ns")) {
            unit = 1;
            s.remove_prefix(2);
        } else if (s.starts_with("h")) {
            unit = 3600e9;
            s.remove_prefix(1);
        } else if (s.starts_with("m")) {
            unit = 60e9;
            s.remove_prefix(1);
        } else if (s.starts_with("s")) {
            unit = 1e9;
            s.remove_prefix(1);
        } else {
            return std::nullopt;
        }
        total_ns += *value * unit;
    }
    return to_ns(total_ns);
}

rate_limit_headers parse_rate_limit_headers(const response_meta_view& meta) noexcept {
    rate_limit_headers h;
    h.limit_requests = parse_number(meta.limit_requests);
    h.limit_tokens = parse_number(meta.limit_tokens);
    h.remaining_requests = parse_number(meta.remaining_requests);
    h.remaining_tokens = parse_number(meta.remaining_tokens);
    h.reset_requests = parse_duration(meta.reset_requests);
    h.reset_tokens = parse_duration(meta.reset_tokens);
    // A limit of zero is not a limit anyone can work with (Azure has sent 0 and -1): ignore.
    if (h.limit_requests && *h.limit_requests == 0)
        h.limit_requests.reset();
    if (h.limit_tokens && *h.limit_tokens == 0)
        h.limit_tokens.reset();
    return h;
}

namespace {

bool starts_with_nocase(std::string_view s, std::string_view prefix) noexcept {
    if (s.size() < prefix.size())
        return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        const auto lower = [](char c) {
            return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
        };
        if (lower(s[i]) != lower(prefix[i]))
            return false;
    }
    return true;
}

// The number after the word `label` and a space ("Limit 10,000"), or empty.
std::optional<double> number_after(std::string_view s, std::string_view label) noexcept {
    for (std::size_t at = s.find(label); at != std::string_view::npos; at = s.find(label, at + 1)) {
        // A whole word: "Limit" must not match inside "RateLimit".
        if (at > 0 &&
            ((s[at - 1] >= 'a' && s[at - 1] <= 'z') || (s[at - 1] >= 'A' && s[at - 1] <= 'Z')))
            continue;
        std::size_t p = at + label.size();
        if (p >= s.size() || s[p] != ' ')
            continue;
        ++p;
        std::string digits;
        while (p < s.size() && ((s[p] >= '0' && s[p] <= '9') || s[p] == ',' || s[p] == '.') &&
               digits.size() < 32) {
            if (s[p] != ',')
                digits.push_back(s[p]);
            ++p;
        }
        while (!digits.empty() && digits.back() == '.') // the sentence's full stop
            digits.pop_back();
        if (auto v = parse_number(digits))
            return v;
    }
    return std::nullopt;
}

} // namespace

std::optional<too_large_hint> parse_too_large(std::string_view message) noexcept {
    message = trim(message);
    if (!starts_with_nocase(message, "request too large"))
        return std::nullopt;
    const auto limit = number_after(message, "Limit");
    const auto requested = number_after(message, "Requested");
    if (!limit || !requested || !(*limit > 0) || !(*requested > *limit))
        return std::nullopt;
    return too_large_hint{*limit, *requested};
}

std::optional<std::chrono::nanoseconds>
parse_retry_after(const response_meta_view& meta,
                  std::chrono::system_clock::time_point now) noexcept {
    if (auto ms = parse_number(meta.retry_after_ms))
        if (auto ns = to_ns(*ms * 1e6))
            return ns;
    if (meta.retry_after.empty())
        return std::nullopt;
    if (auto seconds = parse_number(meta.retry_after))
        return to_ns(*seconds * 1e9);
    if (auto date = parse_http_date(meta.retry_after)) {
        if (*date <= now)
            return std::chrono::nanoseconds{0};
        return std::chrono::duration_cast<std::chrono::nanoseconds>(*date - now);
    }
    return std::nullopt;
}

} // namespace sluice
