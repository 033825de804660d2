#include "cli/embedded_mock.hpp"

#include "cli/run_options.hpp"

#include <sluice/transport/header_value.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>

namespace sluice::cli {

embedded_mock::embedded_mock(std::uint64_t latency_ms) {
    mock_options mo;
    mo.tls = true;
    mo.latency = std::chrono::milliseconds(latency_ms);
    server_.emplace(ioc_.get_executor(), mo);
    server_->start();
    thread_ = std::thread([this] { ioc_.run(); });
}

embedded_mock::~embedded_mock() {
    boost::asio::post(ioc_, [this] { server_->stop(); });
    thread_.join();
}

bool point_engine(bool use_mock,
                  std::uint64_t mock_latency_ms,
                  const std::string& key_env,
                  dispatcher_options& engine,
                  std::optional<embedded_mock>& mock,
                  std::string_view command) {
    if (use_mock) {
        mock.emplace(mock_latency_ms);
        engine.base_url = mock->base_url();
        engine.proxy = {}; // in this process: no proxy could reach it
        engine.tls.ca_pem = mock->certificate_pem();
        const bool own_auth =
            std::any_of(engine.headers.begin(), engine.headers.end(), [](const auto& h) {
                return same_header_name(h.first, "Authorization");
            });
        if (engine.api_key.empty() && !own_auth)
            engine.api_key = "sk-mock";
    }
    if (const std::string why = missing_key_error(engine, key_env); !why.empty()) {
        std::cerr << command << ": " << why << '\n';
        return false;
    }
    if (engine.tls.insecure)
        std::cerr << command << ": WARNING: --insecure: TLS certificates are NOT verified\n";
    return true;
}

} // namespace sluice::cli
