#include <sluice/harness/recorder.hpp>

#include <algorithm>

namespace sluice {

request_timing recorder::on_sent(time_point scheduled, time_point sent) noexcept {
    send_lag_.record(sent - scheduled);
    request_timing r;
    r.scheduled = scheduled;
    r.sent = sent;
    return r;
}

void recorder::on_content(request_timing& r, time_point at) noexcept {
    if (r.content_events == 0) {
        r.first_content = at;
        ttft_.record(at - r.sent);
    } else {
        itl_.record(at - r.last_content);
    }
    r.last_content = at;
    ++r.content_events;
}

void recorder::on_success(const request_timing& r,
                          time_point at,
                          std::uint64_t input_tokens,
                          std::uint64_t output_tokens) noexcept {
    ++completed_;
    input_tokens_ += input_tokens;
    output_tokens_ += output_tokens;
    e2e_.record(at - r.sent);
    if (r.content_events > 0 && output_tokens > 1) {
        // Rounded to the nanosecond, far below the histogram's resolution.
        const auto decode = at - r.first_content;
        tpot_.record(decode / static_cast<std::int64_t>(output_tokens - 1));
    }
    span(r.sent, at);
}

void recorder::on_failure(const request_timing& r, time_point at, std::string_view kind) {
    ++failed_;
    auto it = failures_.find(kind);
    if (it == failures_.end())
        it = failures_.emplace(std::string(kind), 0).first;
    ++it->second;
    span(r.sent, at);
}

void recorder::merge(const recorder& other) {
    e2e_.merge(other.e2e_);
    ttft_.merge(other.ttft_);
    itl_.merge(other.itl_);
    tpot_.merge(other.tpot_);
    send_lag_.merge(other.send_lag_);
    completed_ += other.completed_;
    failed_ += other.failed_;
    input_tokens_ += other.input_tokens_;
    output_tokens_ += other.output_tokens_;
    for (const auto& [kind, n] : other.failures_)
        failures_[kind] += n;
    if (other.any_ended_)
        span(other.first_sent_, other.last_ended_);
}

void recorder::span(time_point sent, time_point ended) noexcept {
    if (!any_ended_) {
        first_sent_ = sent;
        last_ended_ = ended;
        any_ended_ = true;
        return;
    }
    first_sent_ = std::min(first_sent_, sent);
    last_ended_ = std::max(last_ended_, ended);
}

recorder::duration recorder::wall() const noexcept {
    if (!any_ended_ || last_ended_ <= first_sent_)
        return duration::zero();
    return last_ended_ - first_sent_;
}

double recorder::per_second(std::uint64_t n) const noexcept {
    const double secs = std::chrono::duration<double>(wall()).count();
    return secs > 0 ? static_cast<double>(n) / secs : 0.0;
}

double recorder::request_throughput() const noexcept {
    return per_second(completed_);
}

double recorder::output_throughput() const noexcept {
    return per_second(output_tokens_);
}

double recorder::total_token_throughput() const noexcept {
    return per_second(input_tokens_ + output_tokens_);
}

} // namespace sluice
