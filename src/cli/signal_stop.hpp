#pragma once

#include "cli/progress.hpp"

#include <sluice/batch/batch_run.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <optional>

namespace sluice::cli {

/// SIGINT/SIGTERM for `sluice run`: the first signal stops reading and lets the requests on
/// the wire finish for `grace_period_s` seconds while every record is written; a second
/// signal, or the end of the grace period, cancels those too. Nothing already answered is
/// lost. Says what it does on stderr, clearing the progress line first. The job deadline
/// (`max_duration_s` > 0) stops the job the same way as the first signal when it passes.
///
/// Object lifetimes: `job` and `progress` must outlive it; call `cancel()` when the job is
/// done, so that the loop can end.
class signal_stop {
public:
    signal_stop(boost::asio::io_context& ioc,
                batch_run& job,
                std::optional<progress_display>& progress,
                double grace_period_s,
                double max_duration_s = 0);

    /// Stops waiting for signals, the job deadline and the end of the grace period.
    void cancel();

    /// Whether the job deadline stopped the job (before any signal did).
    bool deadline_passed() const noexcept { return deadline_passed_; }

private:
    void watch();
    void stop_gracefully();

    boost::asio::signal_set signals_;
    boost::asio::steady_timer grace_;
    boost::asio::steady_timer deadline_;
    bool deadline_passed_ = false;
    batch_run& job_;
    std::optional<progress_display>& progress_;
    double grace_period_s_;
};

} // namespace sluice::cli
