#pragma once

#include <chrono>

namespace sluice::detail {

// How the load generator waits for the next request of its schedule. A kernel timer's
// wake-up is dear: each costs two timerfd_settime calls and an epoll_wait (Asio re-arms the
// timerfd once the timer fires and again for the next wait), and in a virtual machine every
// reprogramming of the CPU's timer exits to the hypervisor (12.5-13.5 us of CPU a wake-up on the
// project's 2-core VM, more than a whole request costs). At high rates, where the gaps are a
// few microseconds and the loop is not busy through all of them, many requests pay one. A gap
// shorter than `busy_wait` is waited out by polling instead: the driver posts itself behind the
// handlers already queued, so the loop keeps reading answers (one epoll_wait with no timeout per
// round) and sends the request in the first round at or after its due time.
enum class pacing {
    send,  // due: send it now
    poll,  // due within busy_wait: look again after the handlers and I/O already waiting
    sleep, // due later: arm the timer for the due time
};

inline pacing pace(std::chrono::steady_clock::time_point due,
                   std::chrono::steady_clock::time_point now,
                   std::chrono::steady_clock::duration busy_wait) noexcept {
    if (due <= now)
        return pacing::send;
    return due - now < busy_wait ? pacing::poll : pacing::sleep;
}

} // namespace sluice::detail
