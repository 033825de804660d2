#include "cli/embedded_mock.hpp"

#include <boost/asio/post.hpp>

#include <chrono>

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

} // namespace sluice::cli
