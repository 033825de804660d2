#include "cli/signal_stop.hpp"

#include <sluice/error.hpp>

#include <chrono>
#include <csignal>
#include <iostream>

namespace sluice::cli {

signal_stop::signal_stop(boost::asio::io_context& ioc,
                         batch_run& job,
                         std::optional<progress_display>& progress,
                         double grace_period_s)
    : signals_(ioc, SIGINT, SIGTERM)
    , grace_(ioc)
    , job_(job)
    , progress_(progress)
    , grace_period_s_(grace_period_s) {
    watch();
}

void signal_stop::cancel() {
    signals_.cancel();
    grace_.cancel();
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
        job_.interrupt(again);
        if (!again) {
            grace_.expires_after(
                std::chrono::milliseconds(static_cast<long>(grace_period_s_ * 1000)));
            grace_.async_wait([this](error_code gec) {
                if (gec)
                    return;
                std::cerr << "sluice run: grace period over; cancelling " << job_.in_flight()
                          << " requests in flight\n";
                job_.interrupt(true);
            });
        }
        watch();
    });
}

} // namespace sluice::cli
