#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>

#include <utility>

namespace sluice::detail {

// Runs `fn` on the associated executor of `handler` (`fallback` when it has none). `fn` owns
// the handler and its arguments, typically through one unique_ptr, so that the layers of
// executor wrappers move a pointer instead of a response (Asio moves a dispatched function
// several times on its way through a strand). Not asio::append either: in Asio 1.26 it hands
// the handler on as an lvalue, which any_completion_handler then wraps in itself without end.
template <class Executor, class Handler, class Fn>
void dispatch_to_handler(const Executor& fallback, const Handler& handler, Fn&& fn) {
    auto ex = boost::asio::get_associated_executor(handler, fallback);
    boost::asio::dispatch(ex, std::forward<Fn>(fn));
}

} // namespace sluice::detail
