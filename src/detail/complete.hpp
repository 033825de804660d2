#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <optional>
#include <utility>

namespace sluice::detail {

// Runs `fn` on the associated executor of `handler` (`fallback` when it has none). `fn` owns
// the handler and its arguments, typically through one unique_ptr, so that the layers of
// executor wrappers move a pointer instead of a response (Asio moves a dispatched function
// several times on its way through a strand). Not asio::append either: in Asio 1.26 it hands
// the handler on as an lvalue, which any_completion_handler then wraps in itself without end.
//
// A type-erased handler (any_completion_handler) has a type-erased executor, through which
// dispatch wraps `fn` in a function object of its own, allocated, even when it then runs
// `fn` at once. When that executor is an io_context's and this thread runs that io_context,
// dispatch would run `fn` here and now, so it is called directly: the same order, without
// the wrapper (one allocation per completion on the engine's path, two per request).
template <class Executor, class Handler, class Fn>
void dispatch_to_handler(const Executor& fallback, const Handler& handler, Fn&& fn) {
    auto ex = boost::asio::get_associated_executor(handler, fallback);
    if constexpr (requires { ex.template target<boost::asio::io_context::executor_type>(); }) {
        const auto* loop = ex.template target<boost::asio::io_context::executor_type>();
        if (loop && loop->running_in_this_thread()) {
            std::forward<Fn>(fn)();
            return;
        }
    }
    boost::asio::dispatch(ex, std::forward<Fn>(fn));
}

// The io_context executor inside `ex`, when that is what it holds (the usual case). A handler
// bound to it, or a fallback given as it, converts to the any_completion_executor that
// any_completion_handler works with in place; the type-erased any_io_executor does not fit
// there and costs an allocation per conversion, two per request on the engine's path.
inline std::optional<boost::asio::io_context::executor_type>
concrete_loop_executor(const boost::asio::any_io_executor& ex) {
    if (const auto* loop = ex.target<boost::asio::io_context::executor_type>())
        return *loop;
    return std::nullopt;
}

// dispatch_to_handler with the loop's own executor as the fallback when there is one.
template <class Handler, class Fn>
void dispatch_to_handler(const boost::asio::any_io_executor& fallback,
                         const std::optional<boost::asio::io_context::executor_type>& loop,
                         const Handler& handler,
                         Fn&& fn) {
    if (loop)
        dispatch_to_handler(*loop, handler, std::forward<Fn>(fn));
    else
        dispatch_to_handler(fallback, handler, std::forward<Fn>(fn));
}

// Posts `fn` to the loop's own executor when there is one: through the type-erased
// `fallback`, the function would be wrapped, and allocated, once more.
template <class Fn>
void post_on_loop(const boost::asio::any_io_executor& fallback,
                  const std::optional<boost::asio::io_context::executor_type>& loop,
                  Fn&& fn) {
    if (loop)
        boost::asio::post(*loop, std::forward<Fn>(fn));
    else
        boost::asio::post(fallback, std::forward<Fn>(fn));
}

} // namespace sluice::detail
