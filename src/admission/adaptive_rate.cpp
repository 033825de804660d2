#include <sluice/admission/adaptive_rate.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sluice {

void adaptive_options::validate() const {
    // Written so that NaN fails every check.
    if (!(backoff > 0 && backoff < 1))
        throw std::invalid_argument("limits.adaptive.backoff: must be between 0 and 1");
    if (!(growth > 0 && std::isfinite(growth)))
        throw std::invalid_argument("limits.adaptive.growth: must be positive");
    if (!(window.count() >= 1e-3 && window.count() <= 60))
        throw std::invalid_argument(
            "limits.adaptive.window: must be at least 1 ms and at most 60 seconds");
    if (!(min_rpm > 0 && std::isfinite(min_rpm)))
        throw std::invalid_argument("limits.adaptive.min_rpm: must be positive");
    if (!(burst.count() > 0 && burst.count() <= 60))
        throw std::invalid_argument(
            "limits.adaptive.burst: must be more than 0 and at most 60 seconds");
}

adaptive_rate::adaptive_rate(const adaptive_options& opts, time_point now)
    : opts_(opts)
    , origin_(now) {}

// The window is cut into `slots` slots of whole nanoseconds (exact arithmetic: a test on a
// manual clock knows which slot a request falls in); counts belong to the slot their index
// names, so a slot left over from an older turn of the ring is recognised and not counted.
std::int64_t adaptive_rate::slot_of(time_point t) const noexcept {
    return t <= origin_ ? 0 : (t - origin_).count() / slot_length().count();
}

adaptive_rate::clock::duration adaptive_rate::slot_length() const noexcept {
    const auto window = std::chrono::duration_cast<clock::duration>(opts_.window);
    return std::max(clock::duration(1), window / static_cast<std::int64_t>(slots));
}

adaptive_rate::slot& adaptive_rate::current(time_point now) noexcept {
    const std::int64_t s = slot_of(now);
    slot& c = slots_[static_cast<std::size_t>(s % static_cast<std::int64_t>(ring))];
    if (c.index != s)
        c = slot{s, 0, 0};
    return c;
}

void adaptive_rate::on_sent(time_point now) noexcept {
    ++current(now).sent;
    ++sent_since_cut_;
}

void adaptive_rate::on_refused(time_point now) noexcept {
    ++current(now).refused;
    ++refused_since_cut_;
}

// The counts of the current slot and the `slots` before it, over the time they cover: the
// whole window plus what has passed of the current slot. Early in a run that is longer than
// the run itself, so the first measure errs low, never high.
double adaptive_rate::taken(time_point now) const noexcept {
    const std::int64_t s = slot_of(now);
    std::uint64_t sent = 0;
    std::uint64_t refused = 0;
    for (const slot& c : slots_) {
        if (c.index >= s - static_cast<std::int64_t>(slots) && c.index <= s) {
            sent += c.sent;
            refused += c.refused;
        }
    }
    if (refused >= sent)
        return 0;
    const auto into_slot = now > origin_ ? (now - origin_) - s * slot_length() : clock::duration{};
    const double covered = std::chrono::duration<double>(slot_length() * slots + into_slot).count();
    return static_cast<double>(sent - refused) / covered;
}

double adaptive_rate::rate(time_point now) const noexcept {
    if (!active_)
        return 0;
    const double t = now > cut_ ? std::chrono::duration<double>(now - cut_).count() : 0.0;
    const double x = t - knee_;
    double r = ceiling_ * (1 + opts_.growth * x * x * x);
    // Grown only while used: a client held back by its connections or its input does not
    // build up a rate it has never tried, and then burst at it.
    r = std::min(r, std::max(ceiling_, 2 * taken(now)));
    return std::max(r, opts_.min_rpm / 60.0);
}

bool adaptive_rate::on_throttled(time_point now,
                                 std::uint64_t ticket,
                                 std::uint64_t last_ticket) noexcept {
    // A 429 of a request sent before the last cut tells nothing new: the cut answered it.
    if (active_ && ticket <= cut_ticket_)
        return false;
    const double floor = opts_.min_rpm / 60.0;
    const double span = active_ ? std::chrono::duration<double>(now - cut_).count() : 0.0;
    // The server's pace while it refuses. Since the last cut, when that is a whole window
    // ago: the server's bucket was empty then and is empty now, so what it took between is
    // at most its refill, a lower bound of its limit. Otherwise (the first 429, or a second
    // one soon after a cut) the last window's; the first time that includes the server's
    // initial bucket, which the next cut corrects.
    double measured = taken(now);
    if (active_ && span >= opts_.window.count())
        measured = refused_since_cut_ >= sent_since_cut_
                       ? 0.0
                       : static_cast<double>(sent_since_cut_ - refused_since_cut_) / span;
    // A first refusal before the server took anything measures nothing: no rate is set, and
    // the retry's backoff paces the request (a server that refuses everything is not asked
    // at a crawl for ever after).
    if (!active_ && !(measured > 0))
        return false;
    double base = measured;
    if (active_)
        base = measured > 0 ? std::min(rate(now), measured) : rate(now);
    ceiling_ = std::max(base, floor);
    knee_ = std::cbrt((1 - opts_.backoff) / opts_.growth);
    cut_ = now;
    cut_ticket_ = last_ticket;
    sent_since_cut_ = 0;
    refused_since_cut_ = 0;
    active_ = true;
    return true;
}

void adaptive_rate::reset(time_point now) noexcept {
    *this = adaptive_rate(opts_, now);
}

} // namespace sluice
