#include "cli/signal_stop.hpp"

#include <sluice/error.hpp>

#include <chrono>
#include <csignal>
#include <iostream>

namespace sluice::cli {

signal_stop::signal_stop(boost::asio::io_context& ioc,
                         batch_run& job,
                         std::optional<progress_display>& progress,
                         double grace_period_s,
                         double max_duration_s)
    : signals_(ioc, SIGINT, SIGTERM)
    , grace_(ioc)
    , deadline_(ioc)
    , job_(job)
    , progress_(progress)
    , grace_period_s_(grace_period_s) {
    watch();
    if (max_duration_s > 0) {
        deadline_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(max_duration_s)));
        deadline_.async_wait([this, max_duration_s](error_code ec) {
            if (ec || job_.interrupted())
                return;
            deadline_passed_ = true;
            if (progress_)
                progress_->clear();
            std::cerr << "sluice run: the job deadline passed (--max-duration " << max_duration_s
                      << " s); stopping as on SIGTERM: waiting for requests in flight, then "
                         "run the same command again to resume\n";
            stop_gracefully();
        });
    }
}

void signal_stop::cancel() {
    signals_.cancel();
    grace_.cancel();
    deadline_.cancel();
}

// As the first signal: stop reading, give the requests on the wire the grace period.
void signal_stop::stop_gracefully() {
    job_.interrupt(false);
    grace_.expires_after(std::chrono::milliseconds(static_cast<long>(grace_period_s_ * 1000)));
    grace_.async_wait([this](error_code gec) {
        if (gec)
            return;
        std::cerr << "sluice run: grace period over; cancelling " << job_.in_flight()
                  << " requests in flight\n";
        job_.interrupt(true);
    });
}

void signal_stop::watch() {
    signals_.async_wait([this](error_code ec, int) {
        if (ec)
            return;
        const bool again = job_.interrupted();
        if (progress_)
            progress_->clear();
        std::cerr << (again ? "sluice run: stopping now\n"
                            : "sluice run: stopping; waiting for requests in flight "
                              "(signal again to stop at once)\n");
        deadline_.cancel();
        if (again)
            job_.interrupt(true);
        else
            stop_gracefully();
        watch();
    });
}

} // namespace sluice::cli
