#pragma once

#include <sluice/metrics.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Only a reference crosses this header: the timer and the rest of Asio stay in progress.cpp.
namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace sluice::cli {

/// The numbers the progress display shows, pulled from the caller once per redraw. Plain
/// counters, so the caller decides where they come from (dispatcher stats, its own job).
struct progress_sample {
    /// Lines finished in this run, with success or a final error (bad input lines included).
    std::uint64_t done = 0;
    /// Lines the whole input holds, skipped ones included; empty when unknown (stdin, a pipe):
    /// then there is no percentage and no ETA.
    std::optional<std::uint64_t> total;
    /// Requests accepted and not yet finished.
    std::uint64_t in_flight = 0;
    /// Attempts beyond each request's first.
    std::uint64_t retries = 0;
    /// 429 rate-limit answers seen.
    std::uint64_t rate_limited = 0;
    /// The request rate found from 429s without limits or hints, per minute, summed over the
    /// scopes that adapt (`scope_stats::adaptive_rpm`); 0: none adapts.
    double adaptive_rpm = 0;
    /// Lines of `done` that ended in an error.
    std::uint64_t failed = 0;
    /// Prompt plus completion tokens of the responses so far.
    std::uint64_t tokens = 0;
    /// Lines already done in an earlier run (resume): they count towards `total` but not
    /// towards the rates.
    std::uint64_t skipped = 0;
    /// With several endpoints, those not in service as "NAME STATE" ("backup open",
    /// "azure retired"); empty when all are (or there is one).
    std::vector<std::string> endpoints_out;
};

/// The counters of `stats` as a sample (done = succeeded + failed); `total`, `skipped` and
/// lines that never reached the dispatcher (bad input) are the caller's to add.
progress_sample sample_of(const stats_snapshot& stats);

/// Current rates, each empty until two samples at different times have been seen.
struct progress_rates {
    std::optional<double> requests_per_second;
    std::optional<double> tokens_per_second;
};

/// The sans-I/O core of the display: told `(now, sample)`, answers the text of the status
/// line, without any control characters (the framing is tty_frame / plain_frame's job).
///
/// Rates are taken over a sliding window of recent samples rather than the whole run, so a
/// slowdown (a 429 storm, a slow model) shows within seconds and the ETA follows it. The base
/// of the window is the newest sample at least `window` old, so with samples further apart
/// than the window (a plain line every 10 s) the rate spans the last interval.
///
/// Time is a parameter: tests drive it exactly. Thread safety: none.
class progress_meter {
public:
    using clock = std::chrono::steady_clock;

    /// `window`: how far back the rates look; must be positive.
    explicit progress_meter(clock::duration window = std::chrono::seconds(5));

    /// Records `sample` as seen at `now` and returns the line, e.g.
    /// "1,234/10,000 (12.3%)  ETA 0:01:10  125.0 req/s  38.2k tok/s  0 failed  2 429s
    /// 5 retries  64 in flight", with "(adaptive 2,950 rpm)" after the 429s while a scope
    /// finds its rate from them. A `now` not later than the previous sample's replaces it.
    std::string update(clock::time_point now, const progress_sample& sample);

    /// The rates as of the last update.
    progress_rates rates() const noexcept;

private:
    struct point {
        clock::time_point at;
        std::uint64_t done;
        std::uint64_t tokens;
    };

    clock::duration window_;
    std::deque<point> points_; // oldest first; front is the window's base
};

/// "1,234,567": counts are exact, separators make them readable at a glance.
std::string format_count(std::uint64_t n);

/// "12.3", "45.6k", "7.8M": rates to three significant digits or so, short enough that the
/// line does not jump around as they change.
std::string format_rate(double per_second);

/// "h:mm:ss" (hours unbounded): "0:05:49", "27:00:00".
std::string format_hms(std::chrono::seconds d);

/// The line as redrawn on a terminal: carriage return, the text cut to `width - 1` columns
/// (writing the last column makes some terminals wrap, which would scroll) at the last field
/// boundary (two spaces) that fits, then clear to end of line so a shorter line leaves nothing
/// of the previous one behind. The text is ASCII, so bytes are columns.
std::string tty_frame(std::string_view text, std::size_t width);

/// The line as logged when stderr is not a terminal: "label: text\n" ("text\n" with an empty
/// label), no control characters but the final newline.
std::string plain_frame(std::string_view label, std::string_view text);

/// Options of progress_display.
struct progress_options {
    /// Redraw on one terminal line (true) or log plain lines (false); empty: isatty(fd).
    std::optional<bool> tty;
    /// Plain mode: time between status lines. Default 10 s; must be positive. (A terminal is
    /// redrawn every progress_display::tty_interval instead.)
    std::chrono::milliseconds interval{std::chrono::seconds(10)};
    /// How far back the rates look (see progress_meter). Default 5 s; must be positive.
    std::chrono::milliseconds window{std::chrono::seconds(5)};
    /// Terminal width in columns; empty: TIOCGWINSZ on fd at each redraw (so a resize is
    /// followed), 80 when that fails. Must be at least 1 when set.
    std::optional<std::size_t> width;
    /// Plain mode: prefix of each line, so it is told apart from other messages in a log;
    /// empty for none. Default "progress".
    std::string label = "progress";

    /// Throws std::invalid_argument naming the first bad field.
    void validate() const;
};

/// The progress display of a batch job: a steady_timer on the caller's io_context pulls a
/// sample and writes the line to `fd` (normally stderr). On a terminal one line is redrawn in
/// place 10 times a second; elsewhere a plain status line is written every `interval`.
///
/// Usage: construct, start() before or while the io_context runs, stop() when the job is done,
/// then print the summary. The armed timer is work on the io_context: run() does not return
/// until stop() (or the destructor) cancels it.
///
/// Writes are best effort: a failing fd never fails the job. Thread safety: none; start, stop,
/// clear and the sample function run on the thread that runs the io_context. Object
/// lifetimes: the io_context must outlive this object; the sample function is not called
/// after stop() or destruction, so it may reference objects that die right after.
class progress_display {
public:
    /// Redraw period on a terminal: at most 10 redraws a second.
    static constexpr std::chrono::milliseconds tty_interval{100};

    /// Throws std::invalid_argument when `opts` is invalid.
    progress_display(boost::asio::io_context& ioc,
                     std::function<progress_sample()> sample,
                     int fd,
                     progress_options opts = {});
    /// Cancels the timer; on a terminal, ends the line shown (without sampling again).
    ~progress_display();
    progress_display(const progress_display&) = delete;
    progress_display& operator=(const progress_display&) = delete;

    /// Takes the first sample (the rates' starting point), draws at once on a terminal and arms
    /// the timer. Once only; later calls do nothing.
    void start();

    /// Takes a last sample and writes it as a finished line (ending in a newline), so what is
    /// printed next starts on a clean line; cancels the timer. Does nothing if not started or
    /// already stopped.
    void stop();

    /// On a terminal, erases the line until the next redraw, so the caller can print a message
    /// ("stopping...") that does not land on the end of the progress line. Plain mode: nothing.
    void clear();

    /// Whether this display redraws a terminal line (else plain lines).
    bool tty() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_; // shared with the pending timer handler
};

} // namespace sluice::cli
