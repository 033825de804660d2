#include "cli/progress.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace sluice::cli {

namespace asio = boost::asio;

progress_sample sample_of(const stats_snapshot& stats) {
    progress_sample s;
    s.done = stats.succeeded + stats.failed;
    s.in_flight = stats.in_flight;
    s.retries = stats.retries;
    s.rate_limited = stats.rate_limited;
    s.failed = stats.failed;
    s.tokens = stats.prompt_tokens + stats.completion_tokens;
    for (const auto& [key, scope] : stats.scopes)
        s.adaptive_rpm += scope.adaptive_rpm;
    for (const auto& [name, e] : stats.endpoints)
        if (e.state != "closed")
            s.endpoints_out.push_back(name + " " + e.state);
    return s;
}

std::string format_count(std::uint64_t n) {
    std::string digits = std::to_string(n);
    std::string out;
    out.reserve(digits.size() + digits.size() / 3);
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return out;
}

std::string format_rate(double per_second) {
    if (!(per_second > 0)) // also NaN
        per_second = 0;
    char buf[32];
    // Thresholds at the rounding edge, so 999.96 reads "1.0k" rather than "1000.0".
    if (per_second < 999.95)
        std::snprintf(buf, sizeof buf, "%.1f", per_second);
    else if (per_second < 999'950)
        std::snprintf(buf, sizeof buf, "%.1fk", per_second / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.1fM", per_second / 1e6);
    return buf;
}

std::string format_hms(std::chrono::seconds d) {
    const long long total = std::max<long long>(0, d.count());
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
    return buf;
}

std::string tty_frame(std::string_view text, std::size_t width) {
    const std::size_t room = width > 0 ? width - 1 : 0;
    if (text.size() > room) {
        // Whole fields only ("64 in flig" reads as noise); a hard cut when not even one fits.
        const std::size_t gap = text.rfind("  ", room);
        text = text.substr(0, gap != std::string_view::npos && gap > 0 ? gap : room);
    }
    std::string out = "\r";
    out.append(text);
    out += "\x1b[K";
    return out;
}

std::string plain_frame(std::string_view label, std::string_view text) {
    std::string out;
    if (!label.empty()) {
        out.append(label);
        out += ": ";
    }
    out.append(text);
    out += '\n';
    return out;
}

progress_meter::progress_meter(clock::duration window)
    : window_(window) {
    if (window <= clock::duration::zero())
        throw std::invalid_argument("window: must be positive");
}

progress_rates progress_meter::rates() const noexcept {
    progress_rates r;
    if (points_.size() < 2)
        return r;
    const point& base = points_.front();
    const point& last = points_.back();
    const double secs = std::chrono::duration<double>(last.at - base.at).count();
    if (secs <= 0)
        return r;
    // Counters only grow; should one be reset anyway, show 0 rather than a huge number.
    auto delta = [](std::uint64_t to, std::uint64_t from) {
        return to > from ? static_cast<double>(to - from) : 0.0;
    };
    r.requests_per_second = delta(last.done, base.done) / secs;
    r.tokens_per_second = delta(last.tokens, base.tokens) / secs;
    return r;
}

namespace {

// Beyond this an ETA says nothing but "stalled".
constexpr double max_eta_seconds = 999.0 * 3600;

std::string format_eta(std::uint64_t remaining, const std::optional<double>& rate) {
    if (remaining == 0)
        return format_hms(std::chrono::seconds(0));
    if (!rate || *rate <= 0)
        return "-:--:--";
    // Rounded up, so it never reads 0:00:00 while work remains.
    const double secs = std::ceil(static_cast<double>(remaining) / *rate);
    if (secs > max_eta_seconds)
        return ">999h";
    return format_hms(std::chrono::seconds(static_cast<long long>(secs)));
}

} // namespace

std::string progress_meter::update(clock::time_point now, const progress_sample& s) {
    if (!points_.empty() && now <= points_.back().at)
        points_.back() = {points_.back().at, s.done, s.tokens};
    else
        points_.push_back({now, s.done, s.tokens});
    // Keep the newest point at least a window old as the base; drop the ones before it.
    const auto horizon = now - window_;
    while (points_.size() >= 2 && points_[1].at <= horizon)
        points_.pop_front();

    const progress_rates r = rates();
    const std::uint64_t shown = s.done + s.skipped;
    std::string line;
    if (s.total) {
        const std::uint64_t total = *s.total;
        const double pct = total == 0 ? 100.0
                                      : std::min(100.0,
                                                 std::floor(1000.0 * static_cast<double>(shown) /
                                                            static_cast<double>(total)) /
                                                     10.0);
        char pct_s[16];
        std::snprintf(pct_s, sizeof pct_s, "%.1f%%", pct);
        line = format_count(shown) + '/' + format_count(total) + " (" + pct_s;
        if (s.skipped > 0)
            line += ", " + format_count(s.skipped) + " skipped";
        line += ")  ETA " + format_eta(total > shown ? total - shown : 0, r.requests_per_second);
    } else {
        line = format_count(shown) + " done";
        if (s.skipped > 0)
            line += " (" + format_count(s.skipped) + " skipped)";
    }
    auto rate = [](const std::optional<double>& v) {
        return v ? format_rate(*v) : "-";
    };
    line += "  " + rate(r.requests_per_second) + " req/s";
    line += "  " + rate(r.tokens_per_second) + " tok/s";
    // Trouble before plumbing: on a narrow terminal the cut falls on in-flight and retries
    // before it hides failures and 429s.
    line += "  " + format_count(s.failed) + " failed";
    line += "  " + format_count(s.rate_limited) + " 429s";
    // The rate the 429s taught, where no limit is known: why the run goes at this pace.
    if (s.adaptive_rpm > 0)
        line += " (adaptive " +
                format_count(static_cast<std::uint64_t>(std::llround(s.adaptive_rpm))) + " rpm)";
    line += "  " + format_count(s.retries) + " retries";
    line += "  " + format_count(s.in_flight) + " in flight";
    for (const std::string& out : s.endpoints_out)
        line += "  endpoint " + out;
    return line;
}

void progress_options::validate() const {
    if (interval <= std::chrono::milliseconds::zero())
        throw std::invalid_argument("interval: must be positive");
    if (window <= std::chrono::milliseconds::zero())
        throw std::invalid_argument("window: must be positive");
    if (width && *width == 0)
        throw std::invalid_argument("width: must be at least 1");
}

struct progress_display::impl : std::enable_shared_from_this<impl> {
    enum class state { idle, running, stopped };

    impl(asio::io_context& ioc, std::function<progress_sample()> sample, int fd, progress_options o)
        : timer_(ioc)
        , sample_(std::move(sample))
        , fd_(fd)
        , opts_(std::move(o))
        , tty_(opts_.tty.value_or(::isatty(fd) == 1))
        , meter_(opts_.window) {}

    std::chrono::steady_clock::duration period() const {
        if (tty_)
            return tty_interval;
        return opts_.interval;
    }

    void arm() {
        // Keep the cadence of the first expiry, but never try to catch up after a stall.
        auto next = timer_.expiry() + period();
        const auto now = std::chrono::steady_clock::now();
        if (next <= now)
            next = now + period();
        timer_.expires_at(next);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            self->on_tick(ec);
        });
    }

    void on_tick(const boost::system::error_code& ec) {
        if (ec || state_ != state::running)
            return;
        draw(false);
        arm();
    }

    std::size_t width() const {
        if (opts_.width)
            return *opts_.width;
        winsize ws{};
        if (::ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
            return ws.ws_col;
        return 80;
    }

    void draw(bool final) {
        const std::string text = meter_.update(std::chrono::steady_clock::now(), sample_());
        if (tty_) {
            std::string frame = tty_frame(text, width());
            if (final)
                frame += '\n';
            write_all(frame);
            showing_ = !final;
        } else {
            write_all(plain_frame(opts_.label, text));
        }
    }

    void write_all(std::string_view s) {
        while (!s.empty()) {
            const ssize_t n = ::write(fd_, s.data(), s.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return; // best effort: the display must never fail the job
            s.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    asio::steady_timer timer_;
    std::function<progress_sample()> sample_;
    int fd_;
    progress_options opts_;
    bool tty_;
    progress_meter meter_;
    state state_ = state::idle;
    bool showing_ = false; // a terminal line is drawn and not yet ended
};

progress_display::progress_display(asio::io_context& ioc,
                                   std::function<progress_sample()> sample,
                                   int fd,
                                   progress_options opts) {
    opts.validate();
    impl_ = std::make_shared<impl>(ioc, std::move(sample), fd, std::move(opts));
}

progress_display::~progress_display() {
    impl& d = *impl_;
    if (d.state_ == impl::state::running) {
        d.state_ = impl::state::stopped;
        d.timer_.cancel();
        if (d.showing_)
            d.write_all("\n");
    }
    // The pending handler keeps `d` alive until it runs; with state_ stopped it does nothing.
}

void progress_display::start() {
    impl& d = *impl_;
    if (d.state_ != impl::state::idle)
        return;
    d.state_ = impl::state::running;
    const auto now = std::chrono::steady_clock::now();
    if (d.tty_)
        d.draw(false);
    else
        d.meter_.update(now, d.sample_());
    d.timer_.expires_at(now);
    d.arm();
}

void progress_display::stop() {
    impl& d = *impl_;
    if (d.state_ != impl::state::running)
        return;
    d.state_ = impl::state::stopped;
    d.timer_.cancel();
    d.draw(true);
}

void progress_display::clear() {
    impl& d = *impl_;
    if (d.tty_ && d.showing_) {
        d.write_all("\r\x1b[K");
        d.showing_ = false;
    }
}

bool progress_display::tty() const noexcept {
    return impl_->tty_;
}

} // namespace sluice::cli
