#include "cli/bench_progress.hpp"

#include "cli/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace sluice::cli {

namespace {

std::string ms(std::chrono::nanoseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f ms", std::chrono::duration<double, std::milli>(d).count());
    return buf;
}

std::string seconds(std::chrono::steady_clock::duration d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
    return buf;
}

std::size_t terminal_width(int fd) {
    winsize ws{};
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

std::string counts(const loadgen_progress& p) {
    const std::uint64_t done = p.completed + p.failed;
    if (!p.total)
        return format_count(done) + " done";
    char pct[16];
    const double total = static_cast<double>(*p.total);
    std::snprintf(
        pct, sizeof pct, "%.1f%%", total > 0 ? 100.0 * static_cast<double>(done) / total : 100.0);
    return format_count(done) + "/" + format_count(*p.total) + " (" + pct + ")";
}

} // namespace

std::string bench_progress_text(const loadgen_progress& p,
                                const std::optional<loadgen_progress>& previous) {
    if (p.warming_up)
        return seconds(p.elapsed) + "  warm-up  " + format_count(p.sent) + " sent  " +
               format_count(p.in_flight) + " in flight";
    std::string line = seconds(p.elapsed) + "  " + counts(p);
    if (previous && p.elapsed > previous->elapsed) {
        const double secs = std::chrono::duration<double>(p.elapsed - previous->elapsed).count();
        const auto done = [](const loadgen_progress& x) {
            return x.completed + x.failed;
        };
        const auto delta = [](std::uint64_t to, std::uint64_t from) {
            return to > from ? static_cast<double>(to - from) : 0.0;
        };
        line += "  " + format_rate(delta(done(p), done(*previous)) / secs) + " req/s";
        line += "  " + format_rate(delta(p.tokens, previous->tokens) / secs) + " tok/s";
    }
    line += "  " + format_count(p.failed) + " failed";
    line += "  " + format_count(p.in_flight) + " in flight";
    if (p.ttft_p50.count() > 0)
        line += "  TTFT p50 " + ms(p.ttft_p50);
    if (p.e2el_p50.count() > 0)
        line += "  E2EL p50 " + ms(p.e2el_p50);
    line += "  lag p99 " + ms(p.send_lag_p99);
    return line;
}

bench_progress::bench_progress(int fd, bool tty, std::chrono::milliseconds plain_interval)
    : fd_(fd)
    , tty_(tty)
    , plain_interval_(plain_interval) {}

void bench_progress::start_level(std::string label) {
    label_ = std::move(label) + "  ";
    previous_.reset();
    last_plain_ = {};
}

void bench_progress::update(const loadgen_progress& p) {
    if (tty_) {
        write(tty_frame(label_ + bench_progress_text(p, previous_), terminal_width(fd_)));
        drawn_ = true;
        previous_ = p;
        return;
    }
    if (previous_ && p.elapsed - last_plain_ < plain_interval_)
        return;
    write(plain_frame("bench", label_ + bench_progress_text(p, previous_)));
    last_plain_ = p.elapsed;
    previous_ = p;
}

void bench_progress::clear() {
    if (tty_ && drawn_) {
        write("\r\x1b[K");
        drawn_ = false;
    }
}

void bench_progress::finish() {
    clear();
}

void bench_progress::write(const std::string& text) {
    const char* data = text.data();
    std::size_t left = text.size();
    while (left > 0) {
        const ssize_t n = ::write(fd_, data, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; // best effort: a closed stderr never fails the run
        data += n;
        left -= static_cast<std::size_t>(n);
    }
}

} // namespace sluice::cli
