#include <sluice/batch/engine_shards.hpp>

#include <algorithm>

namespace sluice {

namespace asio = boost::asio;

dispatcher_options shard_options(const dispatcher_options& opts, unsigned index, unsigned count) {
    dispatcher_options o = opts;
    if (count <= 1)
        return o;
    // Connections and queue slots are split with the remainder going to the first shards, so
    // the totals are exactly the configured ones.
    auto split = [&](std::size_t total) {
        const std::size_t share = total / count + (index < total % count ? 1 : 0);
        return std::max<std::size_t>(1, share);
    };
    o.pool.max_connections = split(opts.pool.max_connections);
    o.queue_limit = split(opts.queue_limit);
    // Every scope's limits, the endpoint's and each model's, are split evenly; the share tells
    // each shard's limiter to scale the server's x-ratelimit-* figures, which count the whole
    // account, the same way.
    auto divide = [&](limit_options& l) {
        l.rpm /= count;
        l.tpm /= count;
        l.share /= count;
    };
    divide(o.limits);
    for (auto& [model, l] : o.model_limits)
        divide(l);
    for (endpoint_options& e : o.endpoints) // several endpoints: each one's too
        divide(e.limits);
    return o;
}

engine_shards::engine_shards(asio::io_context& main,
                             const dispatcher_options& opts,
                             unsigned threads) {
    const unsigned count = std::max(1u, threads);
    shards_.resize(count);
    for (unsigned i = 0; i < count; ++i) {
        shard& s = shards_[i];
        const dispatcher_options o = shard_options(opts, i, count);
        if (i == 0) {
            s.engine = std::make_unique<dispatcher>(main.get_executor(), o);
            continue;
        }
        // Its thread alone touches its sockets; the main loop only posts to it (see run_command).
        s.ioc = std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
        s.work.emplace(s.ioc->get_executor());
        s.engine = std::make_unique<dispatcher>(s.ioc->get_executor(), o);
    }
    for (shard& s : shards_)
        if (s.ioc)
            s.thread = std::thread([ioc = s.ioc.get()] { ioc->run(); });
}

engine_shards::~engine_shards() {
    stop();
    for (shard& s : shards_)
        if (s.thread.joinable())
            s.thread.join();
    // Dispatchers go before their loops: destroy them while the loops still exist.
    for (shard& s : shards_) {
        s.engine.reset();
        if (s.ioc) {
            s.ioc->restart();
            s.ioc->run(); // let the destroyed dispatcher's last handlers run out
        }
    }
}

dispatcher& engine_shards::next() {
    dispatcher& d = *shards_[next_].engine;
    next_ = (next_ + 1) % shards_.size();
    return d;
}

void engine_shards::stop(bool graceful) {
    for (shard& s : shards_) {
        if (s.engine)
            s.engine->stop(graceful);
        s.work.reset();
    }
}

stats_snapshot engine_shards::stats() const {
    stats_snapshot total;
    for (const shard& s : shards_)
        merge(total, s.engine->stats());
    return total;
}

} // namespace sluice
