#include <sluice/harness/slo.hpp>

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace sluice {

namespace {

using ms = slo_options::milliseconds;

void check(const std::optional<ms>& v, const char* name) {
    // Written so that NaN fails the check too.
    if (v && (!(v->count() > 0) || std::isinf(v->count())))
        throw std::invalid_argument(std::string("slo.") + name +
                                    ": must be a finite number of milliseconds > 0");
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && s.front() == ' ')
        s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ')
        s.remove_suffix(1);
    return s;
}

ms parse_ms(std::string_view metric, std::string_view text) {
    double v = 0;
    const auto res = std::from_chars(text.data(), text.data() + text.size(), v);
    if (res.ec != std::errc() || res.ptr != text.data() + text.size() || !(v > 0) || std::isinf(v))
        throw std::invalid_argument("--slo: " + std::string(metric) + "=" + std::string(text) +
                                    ": the objective must be a number of milliseconds > 0");
    return ms(v);
}

std::optional<ms>* slot_of(slo_options& slo, std::string_view metric) {
    if (metric == "ttft")
        return &slo.ttft;
    if (metric == "tpot")
        return &slo.tpot;
    if (metric == "e2e" || metric == "e2el")
        return &slo.e2el;
    return nullptr;
}

void append_ms(std::string& out, const char* name, const std::optional<ms>& v) {
    if (!v)
        return;
    if (!out.empty())
        out += ',';
    char buf[32];
    const auto res = std::to_chars(buf, buf + sizeof buf, v->count());
    out += name;
    out += '=';
    out.append(buf, res.ptr);
}

} // namespace

void slo_options::validate() const {
    check(ttft, "ttft");
    check(tpot, "tpot");
    check(e2el, "e2el");
}

slo_options parse_slo(std::string_view text) {
    slo_options slo;
    while (!trim(text).empty()) {
        const std::size_t comma = text.find(',');
        const std::string_view item = trim(text.substr(0, comma));
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
        const std::size_t eq = item.find_first_of("=:");
        if (eq == std::string_view::npos)
            throw std::invalid_argument("--slo: '" + std::string(item) +
                                        "' is not METRIC=MS (metrics: ttft, tpot, e2e)");
        const std::string_view metric = trim(item.substr(0, eq));
        std::optional<ms>* slot = slot_of(slo, metric);
        if (!slot)
            throw std::invalid_argument("--slo: unknown metric '" + std::string(metric) +
                                        "' (metrics: ttft, tpot, e2e)");
        if (*slot)
            throw std::invalid_argument("--slo: " + std::string(metric) + " given twice");
        *slot = parse_ms(metric, trim(item.substr(eq + 1)));
    }
    return slo;
}

std::string to_string(const slo_options& slo) {
    std::string out;
    append_ms(out, "ttft", slo.ttft);
    append_ms(out, "tpot", slo.tpot);
    append_ms(out, "e2e", slo.e2el);
    return out;
}

goodput_counter::goodput_counter(const slo_options& slo)
    : slo_(slo) {
    slo_.validate();
}

bool goodput_counter::meets(const request_timing& r,
                            time_point at,
                            std::uint64_t output_tokens) const noexcept {
    const ms e2el = at - r.sent;
    const bool streamed = r.content_events > 0;
    const ms ttft = streamed ? ms(r.first_content - r.sent) : e2el;
    ms tpot(0);
    if (streamed && output_tokens > 1)
        tpot = ms(at - r.first_content) / static_cast<double>(output_tokens - 1);
    return (!slo_.ttft || ttft <= *slo_.ttft) && (!slo_.tpot || tpot <= *slo_.tpot) &&
           (!slo_.e2el || e2el <= *slo_.e2el);
}

void goodput_counter::on_success(const request_timing& r,
                                 time_point at,
                                 std::uint64_t output_tokens) noexcept {
    if (slo_.any() && meets(r, at, output_tokens))
        ++good_;
}

} // namespace sluice
