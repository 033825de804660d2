#pragma once

// The member side of a shared budget on the engine's event loop: one Redis connection, one
// budget_lease per rate-limit scope, and a coroutine that calls the lease script when a
// lease is due, falls back to local limits when Redis is lost and rejoins when it returns.

#include <sluice/admission/budget_lease.hpp>
#include <sluice/logger.hpp>
#include <sluice/redis/shared_budget.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace sluice::detail {

class budget_client : public std::enable_shared_from_this<budget_client> {
public:
    /// `opts` validated, its key set.
    budget_client(boost::asio::any_io_executor ex, shared_budget_options opts, logger log);
    ~budget_client();

    /// The books of scope `name` ("" the endpoint's); created on first use, stable address.
    budget_lease& lease(const std::string& name);

    /// Called on the executor when a lease brought budget, or the state changed: waiting
    /// requests may go now.
    void on_change(std::function<void()> wake) { wake_ = std::move(wake); }

    /// Starts the coroutine (once).
    void start();

    /// Gives back what is held, leaves, and closes; the coroutine ends.
    void close();

    shared_budget_stats stats() const;

    /// This member's name in the members' set.
    const std::string& member() const noexcept { return member_; }

private:
    boost::asio::awaitable<void> run();
    boost::asio::awaitable<error_code>
    call(const std::string& scope, const lease_call& c, lease_reply& r);
    void lose(const std::string& why);
    void poke();
    void publish();

    boost::asio::any_io_executor ex_;
    shared_budget_options opts_;
    redis_url url_;
    logger log_;
    std::string member_;
    std::optional<boost::asio::ssl::context> tls_;
    boost::asio::steady_timer timer_;
    std::map<std::string, std::unique_ptr<budget_lease>> leases_;
    std::function<void()> wake_;
    struct connection_holder;
    std::unique_ptr<connection_holder> conn_;
    bool started_ = false;
    bool closing_ = false;
    bool lost_ = false;
    bool script_loaded_ = false;

    mutable std::mutex stats_mutex_;
    shared_budget_stats stats_;
};

} // namespace sluice::detail
