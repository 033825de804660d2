#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>

#include <utility>

namespace sluice::detail {

// Runs a type-erased handler with `args` on its associated executor (`fallback` when it has
// none). Not asio::append: in Asio 1.26 it hands the handler on as an lvalue, which
// any_completion_handler then wraps in itself without end.
template <class Signature, class Executor, class... Args>
void complete(const Executor& fallback,
              boost::asio::any_completion_handler<Signature> handler,
              Args&&... args) {
    auto ex = boost::asio::get_associated_executor(handler, fallback);
    boost::asio::dispatch(ex,
                          [h = std::move(handler), ... a = std::forward<Args>(args)]() mutable {
                              std::move(h)(std::move(a)...);
                          });
}

} // namespace sluice::detail
