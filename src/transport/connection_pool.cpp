#include <sluice/transport/connection_pool.hpp>

#include "transport/detail/pool_impl.hpp"

#include <sluice/transport/header_value.hpp>

#include <memory>
#include <stdexcept>
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
                                     asio::any_completion_handler<void(http_response&&)> handler) {
    auto x = std::make_unique<detail::exchange>(body, observer, std::move(handler));
    x->not_after = not_after;
    if (impl_->closed)
        return impl_->complete_later(std::move(x), "");
    impl_->submit(std::move(x));
}

void connection_pool::async_request(const request_spec& spec,
                                    body_observer* observer,
                                    asio::any_completion_handler<void(http_response&&)> handler) {
    if (!is_valid_header_value(spec.method) || !is_valid_header_value(spec.target) ||
        !is_valid_header_value(spec.content_type))
        throw std::invalid_argument("connection_pool::async_request: a control character in "
                                    "the method, target or content type");
    auto x = std::make_unique<detail::exchange>(spec.body[0], observer, std::move(handler));
    x->more_body = {spec.body[1], spec.body[2]};
    x->observe_any = spec.observe_any_body;
    std::string& h = x->own_head;
    h.reserve(spec.method.size() + spec.target.size() + impl_->fields.size() + 96);
    h.append(spec.method).append(" ").append(spec.target).append(" HTTP/1.1\r\n");
    h += impl_->fields;
    if (!spec.content_type.empty())
        h.append("Content-Type: ").append(spec.content_type).append("\r\n");
    h += "Accept: application/json\r\n";
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
