#include <sluice/engine_clock.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <utility>
#include <vector>

namespace sluice {

namespace asio = boost::asio;

namespace {

class steady_timer_adapter final : public engine_timer {
public:
    explicit steady_timer_adapter(asio::any_io_executor ex)
        : timer_(std::move(ex)) {}

    void async_wait_until(time_point when, wait_handler h) override {
        timer_.expires_at(when);
        timer_.async_wait(std::move(h));
    }

    void cancel() override { timer_.cancel(); }

private:
    asio::steady_timer timer_;
};

class steady_clock_source final : public engine_clock {
public:
    time_point now() const override { return std::chrono::steady_clock::now(); }

    std::unique_ptr<engine_timer> make_timer(asio::any_io_executor ex) override {
        return std::make_unique<steady_timer_adapter>(std::move(ex));
    }
};

void post_result(asio::any_io_executor ex, engine_timer::wait_handler h, error_code ec) {
    asio::post(ex, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
}

} // namespace

std::shared_ptr<engine_clock> steady_engine_clock() {
    // Stateless: one per caller costs nothing and keeps the library free of globals.
    return std::make_shared<steady_clock_source>();
}

class manual_clock::timer final : public engine_timer {
public:
    timer(manual_clock& clock, asio::any_io_executor ex)
        : clock_(clock)
        , ex_(std::move(ex)) {}

    ~timer() override { cancel(); }

    void async_wait_until(time_point when, wait_handler h) override {
        cancel();
        std::unique_lock lock(clock_.mutex_);
        key_ = clock_.add(when, waiter{ex_, std::move(h), this});
        clock_.fire_due(std::move(lock));
    }

    void cancel() override {
        std::unique_lock lock(clock_.mutex_);
        if (!key_)
            return;
        const key k = *key_;
        key_.reset();
        auto node = clock_.waiters_.extract(k);
        lock.unlock();
        post_result(std::move(node.mapped().ex),
                    std::move(node.mapped().handler),
                    asio::error::operation_aborted);
    }

private:
    friend class manual_clock;
    manual_clock& clock_;
    asio::any_io_executor ex_;
    std::optional<key> key_; // guarded by the clock's mutex
};

manual_clock::manual_clock(time_point start)
    : now_(start) {}

manual_clock::~manual_clock() = default;

manual_clock::time_point manual_clock::now() const {
    std::lock_guard lock(mutex_);
    return now_;
}

std::unique_ptr<engine_timer> manual_clock::make_timer(asio::any_io_executor ex) {
    return std::make_unique<timer>(*this, std::move(ex));
}

void manual_clock::advance(duration d) {
    std::unique_lock lock(mutex_);
    if (d > duration::zero())
        now_ += d;
    fire_due(std::move(lock));
}

void manual_clock::set(time_point t) {
    std::unique_lock lock(mutex_);
    if (t > now_)
        now_ = t;
    fire_due(std::move(lock));
}

std::size_t manual_clock::waiting() const {
    std::lock_guard lock(mutex_);
    return waiters_.size();
}

std::optional<manual_clock::time_point> manual_clock::next_wake() const {
    std::lock_guard lock(mutex_);
    if (waiters_.empty())
        return std::nullopt;
    return waiters_.begin()->first.first;
}

manual_clock::key manual_clock::add(time_point when, waiter w) {
    const key k{when, next_id_++};
    waiters_.emplace(k, std::move(w));
    return k;
}

void manual_clock::fire_due(std::unique_lock<std::mutex> lock) {
    std::vector<waiter> due;
    while (!waiters_.empty() && waiters_.begin()->first.first <= now_) {
        auto node = waiters_.extract(waiters_.begin());
        node.mapped().owner->key_.reset();
        due.push_back(std::move(node.mapped()));
    }
    lock.unlock();
    // Posted, never called here: the caller (a test, or a timer being armed) is not inside
    // the handler's executor.
    for (waiter& w : due)
        post_result(std::move(w.ex), std::move(w.handler), error_code{});
}

} // namespace sluice
