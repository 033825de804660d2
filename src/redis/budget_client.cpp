#include "redis/budget_client.hpp"

#include "redis/lease_script.hpp"
#include "redis/redis_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <random>

#include <unistd.h>

namespace sluice::detail {

namespace asio = boost::asio;

struct budget_client::connection_holder {
    template <class... Args>
    explicit connection_holder(Args&&... args)
        : conn(std::forward<Args>(args)...) {}
    redis_connection conn;
};

namespace {

std::string make_member_name() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::random_device rd;
    static std::atomic<unsigned> counter{0};
    return std::string(host) + ":" + std::to_string(::getpid()) + ":" +
           std::to_string(counter.fetch_add(1)) + ":" + std::to_string(rd() % 1000000);
}

} // namespace

budget_client::budget_client(asio::any_io_executor ex, shared_budget_options opts, logger log)
    : ex_(std::move(ex))
    , opts_(std::move(opts))
    , log_(std::move(log))
    , member_(make_member_name())
    , timer_(ex_) {
    error_code ec;
    url_ = redis_url::parse(opts_.url, ec);
    if (url_.tls)
        tls_.emplace(make_client_tls_context(opts_.tls));
    stats_.enabled = true;
}

budget_client::~budget_client() = default;

budget_lease& budget_client::lease(const std::string& name) {
    auto it = leases_.find(name);
    if (it == leases_.end()) {
        it = leases_.emplace(name, std::make_unique<budget_lease>(opts_.lease)).first;
        it->second->on_due([this] { poke(); });
        // A member that lost Redis before this scope existed runs it locally too.
        if (lost_)
            it->second->on_lost();
        poke();
    }
    return *it->second;
}

void budget_client::start() {
    if (started_)
        return;
    started_ = true;
    asio::co_spawn(
        ex_, [self = shared_from_this()] { return self->run(); }, asio::detached);
}

void budget_client::close() {
    if (closing_)
        return;
    closing_ = true;
    poke();
}

void budget_client::poke() {
    timer_.cancel();
}

shared_budget_stats budget_client::stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

void budget_client::publish() {
    std::lock_guard lock(stats_mutex_);
    stats_.requests_held = 0;
    stats_.tokens_held = 0;
    stats_.state = lost_ ? 2 : 0;
    for (const auto& [name, l] : leases_) {
        stats_.requests_held += l->requests_held();
        stats_.tokens_held += l->tokens_held();
        stats_.members = l->members();
        if (!lost_ && l->current() == budget_lease::state::shared)
            stats_.state = 1;
    }
}

void budget_client::lose(const std::string& why) {
    {
        std::lock_guard lock(stats_mutex_);
        ++stats_.failures;
        if (!lost_)
            ++stats_.fallbacks;
    }
    if (conn_) {
        conn_->conn.close();
        conn_.reset();
    }
    if (lost_)
        return;
    lost_ = true;
    std::uint64_t members = 1;
    for (auto& [name, l] : leases_) {
        members = std::max(members, l->members());
        l->on_lost();
    }
    log_.log(log_level::warning,
             "shared budget: Redis lost (" + why + "); keeping to 1/" + std::to_string(members) +
                 " of the limits until it returns");
    publish();
    if (wake_)
        wake_();
}

asio::awaitable<error_code>
budget_client::call(const std::string& scope, const lease_call& c, lease_reply& r) {
    resp_value reply;
    auto cmd = lease_command(opts_.key, scope, member_, c, opts_.lease.ttl, !script_loaded_);
    error_code ec = co_await conn_->conn.exec(cmd, reply);
    {
        std::lock_guard lock(stats_mutex_);
        ++stats_.round_trips;
    }
    if (ec)
        co_return ec;
    if (reply.is_error() && reply.text.rfind("NOSCRIPT", 0) == 0) {
        // Redis restarted or its script cache was flushed: EVAL loads it again.
        cmd = lease_command(opts_.key, scope, member_, c, opts_.lease.ttl, true);
        ec = co_await conn_->conn.exec(cmd, reply);
        {
            std::lock_guard lock(stats_mutex_);
            ++stats_.round_trips;
        }
        if (ec)
            co_return ec;
    }
    if (reply.is_error()) {
        log_.log(log_level::warning,
                 "shared budget: Redis refused the lease script: " + reply.text);
        co_return make_error_code(boost::system::errc::protocol_error);
    }
    if (!parse_lease_reply(reply, r))
        co_return make_error_code(boost::system::errc::bad_message);
    script_loaded_ = true;
    co_return error_code{};
}

asio::awaitable<void> budget_client::run() {
    auto self = shared_from_this(); // alive until the coroutine ends
    std::chrono::milliseconds backoff = opts_.reconnect_delay;
    constexpr auto use = asio::as_tuple(asio::use_awaitable);
    while (!closing_) {
        if (!conn_) {
            conn_ = std::make_unique<connection_holder>(
                ex_, url_, opts_.timeout, tls_ ? &*tls_ : nullptr);
            std::string why;
            if (error_code ec = co_await conn_->conn.connect(why)) {
                lose(why);
                if (closing_)
                    break;
                timer_.expires_after(backoff);
                co_await timer_.async_wait(use);
                backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(2));
                continue;
            }
            backoff = opts_.reconnect_delay;
            script_loaded_ = false;
            if (lost_) {
                lost_ = false;
                for (auto& [name, l] : leases_)
                    l->on_rejoin();
                log_.log(log_level::warning,
                         "shared budget: Redis is back; sharing the budget again");
                publish();
            }
        }
        bool called = false;
        for (auto& [name, l] : leases_) {
            if (closing_ || !conn_)
                break;
            const auto now = std::chrono::steady_clock::now();
            if (!l->due(now))
                continue;
            const lease_call c = l->prepare(now);
            lease_reply r;
            if (error_code ec = co_await call(name, c, r)) {
                lose("a lease call: " + ec.message());
                break;
            }
            called = true;
            l->on_reply(std::chrono::steady_clock::now(), r);
            publish();
            if (wake_ && (r.granted_requests > 0 || r.granted_tokens > 0))
                wake_();
        }
        if (called || !conn_ || closing_)
            continue;
        auto next = std::chrono::steady_clock::time_point::max();
        const auto now = std::chrono::steady_clock::now();
        for (auto& [name, l] : leases_)
            next = std::min(next, l->next_due(now));
        if (next == std::chrono::steady_clock::time_point::max())
            next = now + opts_.lease.ttl / 3;
        if (next > now) {
            timer_.expires_at(next);
            co_await timer_.async_wait(use);
        }
    }
    // Leaving: what is held goes back, so the others can use it at once.
    if (conn_ && !lost_) {
        for (auto& [name, l] : leases_) {
            lease_reply r;
            if (co_await call(name, l->leave(std::chrono::steady_clock::now()), r))
                break;
        }
    }
    if (conn_) {
        conn_->conn.close();
        conn_.reset();
    }
    publish();
}

} // namespace sluice::detail
