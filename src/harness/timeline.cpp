#include <sluice/harness/timeline.hpp>

#include <algorithm>
#include <stdexcept>

namespace sluice {

void timeline_bucket::merge(const timeline_bucket& other) noexcept {
    sent += other.sent;
    completed += other.completed;
    output_tokens += other.output_tokens;
    failed += other.failed;
    e2el_sum += other.e2el_sum;
    e2el_max = std::max(e2el_max, other.e2el_max);
    ttft_sum += other.ttft_sum;
    ttft_count += other.ttft_count;
}

timeline::timeline(time_point start, duration width, std::size_t max_buckets)
    : start_(start)
    , width_(width)
    , max_buckets_(max_buckets) {
    if (width.count() <= 0)
        throw std::invalid_argument("timeline.width: must be positive");
    if (max_buckets < 2)
        throw std::invalid_argument("timeline.max_buckets: must be at least 2");
}

void timeline::on_sent(time_point at) {
    ++slot(at).sent;
}

void timeline::on_success(const request_timing& r, time_point at, std::uint64_t output_tokens) {
    timeline_bucket& b = slot(at);
    ++b.completed;
    b.output_tokens += output_tokens;
    const auto e2el = std::max<duration>(at - r.sent, duration::zero());
    b.e2el_sum += e2el;
    b.e2el_max = std::max<std::chrono::nanoseconds>(b.e2el_max, e2el);
    if (r.content_events > 0) {
        b.ttft_sum += std::max<duration>(r.first_content - r.sent, duration::zero());
        ++b.ttft_count;
    }
}

void timeline::on_failure(time_point at) {
    ++slot(at).failed;
}

timeline_bucket& timeline::slot(time_point at) {
    const duration since = at > start_ ? at - start_ : duration::zero();
    std::size_t index = static_cast<std::size_t>(since / width_);
    while (index >= max_buckets_) {
        coarsen();
        index = static_cast<std::size_t>(since / width_);
    }
    if (index >= buckets_.size())
        buckets_.resize(index + 1);
    return buckets_[index];
}

void timeline::coarsen() {
    std::vector<timeline_bucket> merged((buckets_.size() + 1) / 2);
    for (std::size_t i = 0; i < buckets_.size(); ++i)
        merged[i / 2].merge(buckets_[i]);
    buckets_ = std::move(merged);
    width_ *= 2;
}

} // namespace sluice
