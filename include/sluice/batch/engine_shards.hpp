#pragma once

#include <sluice/dispatcher.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace sluice {

/// `threads` dispatchers, each on an event loop of its own: shard 0 on the caller's
/// io_context, the others on threads started here. The endpoint's connections, rate limits and
/// queue are split evenly between them, so together they keep the configured limits, and
/// requests are handed out round robin. One loop per thread (rather than one loop run by
/// several threads) keeps each dispatcher's strand uncontended.
class engine_shards {
public:
    engine_shards(boost::asio::io_context& main, const dispatcher_options& opts, unsigned threads);
    ~engine_shards();
    engine_shards(const engine_shards&) = delete;
    engine_shards& operator=(const engine_shards&) = delete;

    /// The dispatcher for the next request.
    dispatcher& next();

    /// Stops every dispatcher (cancelling requests on the wire unless `graceful`) and lets the
    /// extra loops run out.
    void stop(bool graceful = true);

    /// The counters of all shards together.
    stats_snapshot stats() const;

    std::size_t size() const noexcept { return shards_.size(); }

private:
    struct shard {
        std::unique_ptr<boost::asio::io_context> ioc; // null for shard 0 (the caller's loop)
        std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
            work;
        std::unique_ptr<dispatcher> engine;
        std::thread thread;
    };

    std::vector<shard> shards_;
    std::size_t next_ = 0;
};

/// The options of shard `index` of `count`: connections and queue divided evenly (the
/// remainder to the first shards), and the limits of every scope (endpoint and models) divided
/// by `count`, with `limit_options::share` divided alike so that each shard takes its share of
/// the server's headers too.
dispatcher_options shard_options(const dispatcher_options& opts, unsigned index, unsigned count);

} // namespace sluice
