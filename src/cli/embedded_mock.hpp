#pragma once

#include <sluice/dispatcher.hpp>
#include <sluice/mock/mock_server.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <thread>

namespace sluice::cli {

/// The mock server of `sluice run --mock`: HTTPS on an ephemeral loopback port, answering
/// after `latency_ms`, on its own thread and io_context so that the client's event loop
/// measures only the client. Started by the constructor, stopped and joined by the destructor.
///
/// Thread safety: construct and destroy on one thread; the accessors may be called any time
/// in between.
class embedded_mock {
public:
    explicit embedded_mock(std::uint64_t latency_ms);
    ~embedded_mock();
    embedded_mock(const embedded_mock&) = delete;
    embedded_mock& operator=(const embedded_mock&) = delete;

    /// The server's base URL, for dispatcher_options::base_url.
    std::string base_url() const { return server_->base_url(); }
    /// Its self-signed certificate, for tls_options::ca_pem (trusted for this run only).
    const std::string& certificate_pem() const { return server_->certificate_pem(); }

private:
    boost::asio::io_context ioc_;
    std::optional<mock_server> server_;
    std::thread thread_;
};

/// Points `engine` at the server: with `use_mock`, an embedded mock started into `mock` (its
/// certificate trusted, a dummy key); then checks that it may be sent to (a key where one is
/// needed) and warns of `--insecure`. False, having said why on stderr under `command`'s
/// name, when it may not.
bool point_engine(bool use_mock,
                  std::uint64_t mock_latency_ms,
                  const std::string& key_env,
                  dispatcher_options& engine,
                  std::optional<embedded_mock>& mock,
                  std::string_view command);

} // namespace sluice::cli
