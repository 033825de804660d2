// The rate-limit header parsers (src/admission/limit_headers.cpp) on arbitrary values. The
// input is cut at NUL bytes into the header values of one response. What they return is never
// negative, a zero limit is never taken, a too-large hint asks for more than its limit, a
// plain number of seconds parses as the same number followed by "s", and a date in the past
// means "now".
#include "fuzz_support.hpp"

#include <sluice/admission/limit_headers.hpp>

#include <array>

using namespace sluice;
using namespace std::chrono;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in = fuzz::as_view(data, size);
    std::array<std::string_view, 8> v{};
    for (std::string_view& field : v) {
        const std::size_t end = in.find('\0');
        field = in.substr(0, end);
        in.remove_prefix(end == std::string_view::npos ? in.size() : end + 1);
    }
    response_meta_view meta;
    meta.retry_after = v[0];
    meta.retry_after_ms = v[1];
    meta.limit_requests = v[2];
    meta.limit_tokens = v[3];
    meta.remaining_requests = v[4];
    meta.remaining_tokens = v[5];
    meta.reset_requests = v[6];
    meta.reset_tokens = v[7];

    for (std::string_view s : v) {
        const auto d = parse_duration(s);
        if (!d)
            continue;
        SLUICE_FUZZ_CHECK(d->count() >= 0);
        if (!s.empty() && s.find_first_not_of("0123456789.") == std::string_view::npos) {
            const auto with_unit = parse_duration(std::string(s) + "s");
            SLUICE_FUZZ_CHECK(with_unit == d);
        }
    }

    const rate_limit_headers h = parse_rate_limit_headers(meta);
    for (const auto& n : {h.limit_requests, h.limit_tokens})
        SLUICE_FUZZ_CHECK(!n || *n > 0);
    for (const auto& n : {h.remaining_requests, h.remaining_tokens})
        SLUICE_FUZZ_CHECK(!n || *n >= 0);
    for (const auto& d : {h.reset_requests, h.reset_tokens})
        SLUICE_FUZZ_CHECK(!d || d->count() >= 0);

    // "now" fixed, so that a crash replays: 2026-01-01T00:00:00Z, and the far past.
    for (const system_clock::time_point now :
         {system_clock::time_point(seconds(1767225600)), system_clock::time_point{}}) {
        const auto wait = parse_retry_after(meta, now);
        SLUICE_FUZZ_CHECK(!wait || wait->count() >= 0);
    }

    for (std::string_view s : v) {
        if (const auto hint = parse_too_large(s))
            SLUICE_FUZZ_CHECK(hint->limit > 0 && hint->requested > hint->limit);
    }
    return 0;
}
