#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

// `sluice run --metrics-listen ADDRESS:PORT`: Prometheus scrapes the run's counters over HTTP.

namespace sluice::cli {

/// A small HTTP/1.1 server on the run's own event loop that answers `GET /metrics` with the
/// text `render` makes (Prometheus text exposition 0.0.4), 405 for another method on that
/// path and 404 for any other path. One coroutine per connection, keep-alive, a timeout on
/// each read and write, requests without a body only (8 KiB of head at most): it is meant for
/// a scraper on a trusted network, by default loopback.
///
/// Thread safety: none; all calls on the thread running the io_context.
///
/// Object lifetimes: `stop()` closes the listening socket and every connection; the
/// io_context may then finish. The listener must outlive the io_context's run.
class metrics_listener {
public:
    /// Listens on `address` ("127.0.0.1:9464", "[::1]:9464"; an IP address, not a name; port 0
    /// takes an ephemeral one). Throws std::invalid_argument for an address that is not
    /// IP:PORT, boost::system::system_error when it cannot be bound.
    metrics_listener(boost::asio::io_context& ioc,
                     std::string_view address,
                     std::function<std::string()> render);
    ~metrics_listener();
    metrics_listener(const metrics_listener&) = delete;
    metrics_listener& operator=(const metrics_listener&) = delete;

    /// Starts accepting.
    void start();
    /// Stops accepting and closes the connections open.
    void stop();

    /// The address bound (the port chosen, with port 0).
    boost::asio::ip::tcp::endpoint local_endpoint() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

/// Reads "IP:PORT" (IPv6 in brackets). Throws std::invalid_argument.
boost::asio::ip::tcp::endpoint parse_listen_address(std::string_view address);

} // namespace sluice::cli
