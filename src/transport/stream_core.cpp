#include "transport/stream_core.hpp"

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>

namespace sluice::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

bool stream_core::same_loop(const executor_type& ex) noexcept {
    using tracked =
        std::decay_t<decltype(asio::prefer(std::declval<asio::io_context::executor_type>(),
                                           asio::execution::outstanding_work.tracked))>;
    const auto own = loop();
    if (!own)
        return false;
    if (const auto* t = ex.target<tracked>())
        return &t->context() == &own->context();
    if (const auto* u = ex.target<asio::io_context::executor_type>())
        return &u->context() == &own->context();
    return false;
}

// No clock is read here: a deadline already passed arms a timer that fires at once, and its
// handler cuts the wait (a read of the clock per wait was 1 in 13 of a request's).
error_code stream_core::before_wait() {
    if (timed_out_)
        return beast::error::timeout;
    if (deadline_ != clock::time_point::max())
        arm_timer();
    return {};
}

void stream_core::arm_timer() {
    if (armed_for_ <= deadline_)
        return; // fires first, and then sees the later deadline
    armed_for_ = deadline_;
    timer_.expires_at(deadline_); // a wait for a later time is cancelled (and ignores that)
    timer_.async_wait([this, owner = owner_](error_code ec) {
        if (ec)
            return;
        const auto keep = owner.lock();
        if (!keep)
            return;
        on_timer();
    });
}

void stream_core::on_timer() {
    armed_for_ = clock::time_point::max();
    if (deadline_ == clock::time_point::max())
        return; // no deadline now: nothing to cut
    if (clock::now() < deadline_) {
        if (waiting_ > 0)
            arm_timer();
        return; // a later deadline: armed again if something waits, else at the next wait
    }
    if (waiting_ == 0)
        return; // the next wait arms the timer again, and it fires at once
    timed_out_ = true;
    // As beast::tcp_stream does on a timeout: the connection is not used again.
    error_code ignored;
    tcp_.socket().close(ignored);
}

} // namespace sluice::detail
