#pragma once

#include <sluice/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

namespace sluice {

/// A wait for one moment of an `engine_clock`, on one executor. At most one wait is
/// outstanding; `cancel` completes it with `operation_aborted`, and so does destroying the
/// timer. Handlers are never called from inside `async_wait_until` or `cancel`.
class engine_timer {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using wait_handler = boost::asio::any_completion_handler<void(error_code)>;

    virtual ~engine_timer() = default;
    /// Completes `h` (on the timer's executor) once the clock reads `when` or later.
    virtual void async_wait_until(time_point when, wait_handler h) = 0;
    virtual void cancel() = 0;
};

/// The time source of the engine's decisions: when a request is admitted, how long a retry
/// waits, when a 429 hold ends. The transport's timeouts stay on the steady clock, since they
/// bound real waits on sockets. The default is the steady clock; a test (the project's, or an
/// embedder's) gives the dispatcher a `manual_clock` and makes every rate-limit and retry
/// decision exact, instead of asserting wall-clock windows.
class engine_clock {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::steady_clock::duration;

    virtual ~engine_clock() = default;
    virtual time_point now() const = 0;
    virtual std::unique_ptr<engine_timer> make_timer(boost::asio::any_io_executor ex) = 0;
};

/// The steady clock, with Asio's steady_timer: what the engine uses unless told otherwise.
std::shared_ptr<engine_clock> steady_engine_clock();

/// A clock that moves only when told to. Timers made from it complete when `advance` or
/// `set` reaches their moment: each due handler is posted to its timer's executor, earliest
/// first, so a test advances the clock and then runs the io_context until it has nothing left
/// to do. Thread-safe; timers must not outlive the clock.
class manual_clock final : public engine_clock {
public:
    /// Starts at `start` (by default an hour after the epoch, so `now() - 1s` is valid).
    explicit manual_clock(time_point start = time_point{} + std::chrono::hours(1));
    ~manual_clock() override;

    time_point now() const override;
    std::unique_ptr<engine_timer> make_timer(boost::asio::any_io_executor ex) override;

    /// Moves the clock forward by `d` and fires the timers now due.
    void advance(duration d);
    /// Moves the clock to `t` (never backwards) and fires the timers now due.
    void set(time_point t);

    /// Timers waiting, and the moment the first of them waits for: a test can jump straight
    /// there (`set(*next_wake())`) instead of stepping.
    std::size_t waiting() const;
    std::optional<time_point> next_wake() const;

private:
    class timer;
    using key = std::pair<time_point, std::uint64_t>;
    struct waiter {
        boost::asio::any_io_executor ex;
        engine_timer::wait_handler handler;
        timer* owner;
    };

    key add(time_point when, waiter w);
    void fire_due(std::unique_lock<std::mutex> lock);

    mutable std::mutex mutex_;
    time_point now_;
    std::uint64_t next_id_ = 1;
    // Ordered by (moment, arming order): two timers due at once fire in the order they were
    // armed, as a test expects when it reasons about which request goes first.
    std::map<key, waiter> waiters_;
};

} // namespace sluice
