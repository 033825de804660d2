#include "detail/op_memory.hpp"
#include "dispatcher_impl.hpp"

#include <boost/asio/post.hpp>

namespace sluice {

namespace asio = boost::asio;

dispatcher::dispatcher(asio::any_io_executor ex, dispatcher_options opts) {
    opts.validate();
    impl_ = std::make_shared<impl>(std::move(ex), std::move(opts));
}

dispatcher::~dispatcher() {
    if (impl_)
        asio::post(impl_->ex, [i = impl_] { i->do_stop(false); });
}

// The request's operation is made here, on the caller's thread, and the request moved into
// it once: carried to the loop in its own right it was moved four times on the way.
void dispatcher::async_complete_erased(request&& req, detail::result_handler h) {
    auto op = std::make_unique<detail::request_op>(std::move(req), std::move(h));
    detail::op_memory_handler submit{[i = impl_, op = std::move(op)]() mutable {
        i->submit(std::move(op));
    }};
    detail::post_on_loop(impl_->ex, impl_->loop_ex, std::move(submit));
}

void dispatcher::async_drain_erased(asio::any_completion_handler<void(error_code)> h) {
    asio::post(impl_->ex, [i = impl_, h = std::move(h)]() mutable { i->drain(std::move(h)); });
}

void dispatcher::async_stop_erased(bool graceful,
                                   asio::any_completion_handler<void(error_code)> h) {
    asio::post(impl_->ex, [i = impl_, graceful, h = std::move(h)]() mutable {
        i->stop_and_wait(graceful, std::move(h));
    });
}

asio::any_io_executor dispatcher::get_executor() const noexcept {
    return impl_->ex;
}

void dispatcher::stop(bool graceful) {
    asio::post(impl_->ex, [i = impl_, graceful] { i->do_stop(graceful); });
}

stats_snapshot dispatcher::stats() const {
    stats_snapshot s = impl_->snapshot();
    return s;
}

const dispatcher_options& dispatcher::options() const noexcept {
    return impl_->opts;
}

} // namespace sluice
