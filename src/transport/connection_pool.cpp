#include <sluice/transport/connection_pool.hpp>

#include "transport/detail/pool_impl.hpp"

#include <memory>
#include <utility>

namespace sluice {

namespace asio = boost::asio;

// The pool's machinery lives in detail::pool_impl (transport/detail/pool_impl.hpp), its steps
// in the pool_*.cpp files; this is only the public face.

connection_pool::connection_pool(asio::any_io_executor ex,
                                 endpoint ep,
                                 request_headers headers,
                                 pool_options opts,
                                 asio::ssl::context* tls,
                                 proxy_endpoint proxy)
    : impl_(std::make_shared<detail::pool_impl>(
          std::move(ex), std::move(ep), std::move(headers), opts, tls, std::move(proxy))) {}

connection_pool::~connection_pool() {
    if (impl_)
        impl_->close_all();
}

void connection_pool::async_exchange(std::string_view body,
                                     body_observer* observer,
                                     std::chrono::steady_clock::time_point not_after,
                                     asio::any_completion_handler<void(http_response)> handler) {
    auto x = std::make_unique<detail::exchange>(body, observer, std::move(handler));
    x->not_after = not_after;
    if (impl_->closed)
        return impl_->complete_later(std::move(x), "");
    impl_->submit(std::move(x));
}

void connection_pool::close() {
    impl_->close_all();
}

pool_stats connection_pool::stats() const noexcept {
    pool_stats s = impl_->stats;
    s.open = impl_->live.size();
    s.idle = impl_->idle.size();
    s.waiting = impl_->waiters.size();
    return s;
}

const pool_options& connection_pool::options() const noexcept {
    return impl_->opts;
}

} // namespace sluice
