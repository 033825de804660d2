#include "dispatcher_impl.hpp"

#include <sluice/transport/header_value.hpp>

#include <boost/asio/post.hpp>

#include <stdexcept>

namespace sluice {

namespace asio = boost::asio;

void dispatcher_options::validate() const {
    error_code ec;
    endpoint::parse(base_url, ec);
    if (ec) // the URL as given, unless it holds what would break the line it is printed on
        throw std::invalid_argument("base_url: not an http:// or https:// URL" +
                                    (is_valid_header_value(base_url)
                                         ? ": " + base_url
                                         : std::string(" (it holds a control character)")));
    // They go into request headers: a CR or LF would inject lines of its own. The value is
    // never put in the message.
    for (const auto& [name, value] :
         {std::pair<const char*, const std::string&>{"api_key", api_key},
          {"organization", organization},
          {"project", project}}) {
        if (!is_valid_header_value(value))
            throw std::invalid_argument(std::string(name) +
                                        ": holds a control character (CR, LF or NUL)");
    }
    if (queue_limit == 0)
        throw std::invalid_argument("queue_limit: must be at least 1");
    pool.validate();
    limits.validate();
    for (const auto& [model, l] : model_limits) {
        if (model.empty())
            throw std::invalid_argument("model_limits: a model name must not be empty");
        l.validate();
    }
    retry.validate();
    if (estimate.chars_per_token <= 0)
        throw std::invalid_argument("estimate.chars_per_token: must be positive");
    if (deadline.count() < 0)
        throw std::invalid_argument("deadline: must not be negative");
}

dispatcher::dispatcher(asio::any_io_executor ex, dispatcher_options opts) {
    opts.validate();
    impl_ = std::make_shared<impl>(std::move(ex), std::move(opts));
}

dispatcher::~dispatcher() {
    if (impl_)
        asio::post(impl_->ex, [i = impl_] { i->do_stop(false); });
}

void dispatcher::async_complete_erased(request req, detail::result_handler h) {
    asio::post(impl_->ex, [i = impl_, req = std::move(req), h = std::move(h)]() mutable {
        i->submit(std::move(req), std::move(h));
    });
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
