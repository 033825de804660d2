#include <sluice/loadgen/bench_results.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>

namespace sluice {

std::string failure_kind(const result& r) {
    if (r.status >= 400 && (r.ec == errc::server_error || r.ec == errc::client_error))
        return "http_" + std::to_string(r.status);
    return error_kind(r.ec);
}

bool is_cancellation(const result& r) noexcept {
    return r.ec == errc::not_attempted || r.ec == errc::stopped ||
           r.ec == boost::asio::error::operation_aborted;
}

bench_results::bench_results(const slo_options& slo,
                             time_point start,
                             recorder::duration timeline_width,
                             std::size_t timeline_slices)
    : goodput_(slo)
    , over_time_(start, timeline_width, timeline_slices)
    , timeline_width_(timeline_width)
    , timeline_slices_(timeline_slices) {}

void bench_results::restart_timeline(time_point start) {
    over_time_ = timeline(start, timeline_width_, timeline_slices_);
}

void bench_results::record(const sent_request& s, const result& r) {
    constexpr time_point never{};
    request_timing t = rec_.on_sent(s.scheduled, s.submitted);
    if (r.times.sent != never)
        t.sent = r.times.sent;
    const time_point end = std::max(r.times.done != never ? r.times.done : t.sent, t.sent);
    over_time_.on_sent(t.sent);
    if (!r.ok()) {
        rec_.on_failure(t, end, failure_kind(r));
        over_time_.on_failure(end);
        return;
    }
    if (r.streamed && r.times.first_token != never) {
        time_point at = r.times.first_token;
        rec_.on_content(t, at);
        for (const auto gap : r.times.token_gaps) {
            at += std::chrono::duration_cast<recorder::duration>(gap);
            rec_.on_content(t, at);
        }
    }
    const auto& usage = r.completion.usage;
    const std::uint64_t out = usage ? usage->completion_tokens : t.content_events;
    const std::uint64_t in = usage ? usage->prompt_tokens : s.input_tokens;
    rec_.on_success(t, end, in, out);
    goodput_.on_success(t, end, out);
    over_time_.on_success(t, end, out);
}

report_extras bench_results::extras() const {
    report_extras x;
    x.goodput = &goodput_;
    x.over_time = &over_time_;
    x.warmup_requests = warmup_requests_;
    x.cancelled = cancelled_;
    return x;
}

} // namespace sluice
