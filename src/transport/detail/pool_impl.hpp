#pragma once

#include <sluice/transport/connection_pool.hpp>

#include "detail/complete.hpp"
#include "detail/op_memory.hpp"
#include "transport/connection.hpp"
#include "transport/response_parser.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::detail {

// The state of one connection_pool and the steps that move it, shared by the files that each
// take one job of it:
//   pool_bookkeeping.cpp  lending: the idle list, the waiters, the slots, the idle sweep, close
//   pool_connect.cpp      a new connection: resolve, connect, handshake, each in its timeout
//   pool_exchange.cpp     one request on a connection: write, read, and how it completes
//   pool_reuse_checks.cpp whether a connection can be trusted again: the idle read, the quiet
//                         period after an answer on a reused connection
// Every step runs on the pool's executor; handlers hold the pool by shared_from_this, so it
// outlives the connection_pool that owns it until the last of them has run.
struct pool_impl : std::enable_shared_from_this<pool_impl> {
    using clock = std::chrono::steady_clock;
    using tcp = boost::asio::ip::tcp;

    pool_impl(boost::asio::any_io_executor e,
              endpoint endp,
              request_headers h,
              pool_options o,
              boost::asio::ssl::context* t,
              proxy_endpoint p);

    // --- bookkeeping (pool_bookkeeping.cpp) ------------------------------------------------
    void submit(exchange_ptr x);
    void lend(connection_ptr conn, exchange_ptr x);
    void start_on(connection_ptr conn, exchange_ptr x);
    void make_idle(connection_ptr conn, bool read_armed);
    void on_slot_freed();
    void release_broken(connection_ptr conn);
    connection_ptr make_connection();
    void discard(connection_ptr conn);
    void arm_idle_timer();
    void sweep_idle();
    void arm_watch_timer(clock::time_point due);
    void watch_idle();
    void close_all();

    // --- reuse checks (pool_reuse_checks.cpp) ----------------------------------------------
    void ack_at_once(connection& conn) const;
    void arm_idle_read(const connection_ptr& conn);
    void on_idle_read(const connection_ptr& conn, error_code ec, std::size_t n);
    void hold_for_quiet_period(connection_ptr conn, exchange_ptr x);
    void on_quiet_over(const connection_ptr& conn, error_code ec);

    // --- connecting (pool_connect.cpp) -----------------------------------------------------
    void open_connection(exchange_ptr x);
    void do_resolve();
    void on_resolve(std::uint64_t gen, error_code ec, tcp::resolver::results_type r);
    clock::duration step_budget(const exchange& x, std::chrono::milliseconds step_timeout) const;
    void do_connect(exchange_ptr x);
    void on_connect(exchange_ptr x, error_code ec);
    void do_tunnel(exchange_ptr x);
    void on_tunnel(exchange_ptr x, error_code ec, unsigned status, bool extra_bytes);
    void start_session(exchange_ptr x);
    void on_handshake(exchange_ptr x, error_code ec);
    void reject_certificate(exchange_ptr x, const char* reason);
    void reject_first_contact(exchange_ptr x, errc why, const char* step, const char* reason);

    // --- one exchange (pool_exchange.cpp) --------------------------------------------------
    void start_write(exchange_ptr x);
    void new_parser(exchange& x);
    void on_write(exchange_ptr x, error_code ec, bool from_loop);
    void await_answer(exchange_ptr x, stream_core::want way);
    void read_answer(exchange_ptr x);
    enum class parsed { more, done, failed };
    parsed parse_read(exchange& x, std::size_t n, error_code& ec, const char*& step);
    void read_ended(exchange_ptr x, error_code ec);
    void read_failed(exchange_ptr x, error_code ec);
    const char* next_after_informational(exchange& x);
    const char* stream_step(const exchange& x, error_code ec) const;
    void fail_stream(exchange_ptr x, error_code ec);
    static void forget_answer(exchange& x);
    void on_body(exchange_ptr x, error_code ec);
    void fail_or_replay(exchange_ptr x, error_code ec, const char* step);
    void fail(exchange_ptr x, error_code ec, const char* step);
    void complete(exchange_ptr x);
    void complete_later(exchange_ptr x, const char* step);

    boost::asio::any_io_executor ex;
    std::optional<boost::asio::io_context::executor_type> loop_ex; // see concrete_loop_executor
    endpoint ep;
    pool_options opts;
    boost::asio::ssl::context* tls;
    proxy_endpoint proxy;        // empty: direct connections
    std::string connect_request; // the CONNECT request of a new connection through `proxy`
    tcp::resolver resolver;
    boost::asio::steady_timer resolve_timer;
    boost::asio::steady_timer idle_timer;
    boost::asio::steady_timer watch_timer; // arms the idle read of those idle for idle_watch_delay
    bool host_is_ip;
    std::string head;   // request line and fixed headers, built once
    std::string fields; // the fixed headers alone, for async_request
    std::optional<tcp::resolver::results_type> resolved;
    std::uint64_t resolve_gen = 0;
    std::vector<exchange_ptr> resolving; // waiting for the resolution under way
    std::vector<connection_ptr> idle;    // most recently used last
    std::size_t unwatched = 0;           // of which with no read armed yet (the newest, mostly)
    std::deque<exchange_ptr> waiters;    // waiting for a connection, FIFO
    std::vector<connection*> live;       // every open connection; connection::slot indexes it
    std::size_t connecting = 0;          // of which being opened (pool_options::max_connecting)
    body_budget bodies;                  // body bytes of the responses being read
    // What every read of an answer reads into (read_scratch_bytes), parsed before the reader
    // returns to the loop: one buffer for all the pool's connections, none of which holds one.
    std::unique_ptr<char[]> scratch;
    // No handshake has verified the server yet: one connection is opened, and the exchanges
    // that would open others wait for its outcome (a rejected certificate would refuse them
    // all, and a job should stop on one refusal, not on one per connection). Never set when
    // the context verifies nothing.
    bool first_contact = false;
    bool may_open() const {
        return live.size() < opts.max_connections && !(first_contact && !live.empty()) &&
               (opts.max_connecting == 0 || connecting < opts.max_connecting);
    }
    void connected(connection& conn); // its connect (and handshake) is over: another may start
    bool idle_timer_armed = false;
    bool watch_timer_armed = false;
    bool closed = false;
    pool_stats stats;
};

} // namespace sluice::detail
