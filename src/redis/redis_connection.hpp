#pragma once

// One connection to a Redis server on the engine's event loop: TCP or TLS, AUTH, SELECT,
// then one command at a time. Every step has the connection's timeout; nothing blocks.

#include <sluice/error.hpp>
#include <sluice/redis/shared_budget.hpp>

#include "redis/resp.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::detail {

class redis_connection {
public:
    redis_connection(boost::asio::any_io_executor ex,
                     redis_url url,
                     std::chrono::milliseconds timeout,
                     boost::asio::ssl::context* tls);
    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    /// Resolves, connects, handshakes (rediss://), AUTH and SELECT. On failure `why` says
    /// which step failed and why (never the password).
    boost::asio::awaitable<error_code> connect(std::string& why);

    /// Sends one command and reads its reply. An error reply is a reply, not an error.
    boost::asio::awaitable<error_code> exec(const std::vector<std::string>& args,
                                            resp_value& reply);

    /// Closes the socket; a pending operation completes with an error.
    void close();

private:
    struct streams;
    boost::asio::awaitable<error_code> write(const std::string& bytes);
    boost::asio::awaitable<error_code> read(resp_value& reply);

    boost::asio::any_io_executor ex_;
    redis_url url_;
    std::chrono::milliseconds timeout_;
    boost::asio::ssl::context* tls_;
    std::unique_ptr<streams> s_;
    std::string in_;
    std::string out_;
};

} // namespace sluice::detail
