#pragma once

#include <sluice/dispatcher.hpp>
#include <sluice/mock/mock_server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <optional>
#include <thread>

namespace sluice::test {

/// The mock server on 127.0.0.1 with an ephemeral port, on its own io_context thread, so the
/// client under test has its own loop. Stopped and joined at scope end.
class loopback_mock {
public:
    explicit loopback_mock(mock_options opts = {}) {
        server_.emplace(ioc_.get_executor(), std::move(opts));
        server_->start();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~loopback_mock() {
        boost::asio::post(ioc_, [this] { server_->stop(); });
        thread_.join();
    }
    loopback_mock(const loopback_mock&) = delete;
    loopback_mock& operator=(const loopback_mock&) = delete;

    mock_server& server() { return *server_; }

    /// Dispatcher options pointing at this mock, trusting its certificate when it serves TLS.
    dispatcher_options client_options() const {
        dispatcher_options o;
        o.base_url = server_->base_url();
        o.tls.ca_pem = server_->certificate_pem();
        o.api_key = "sk-test";
        return o;
    }

private:
    boost::asio::io_context ioc_;
    std::optional<mock_server> server_;
    std::thread thread_;
};

/// Mock options serving HTTPS (a generated self-signed certificate) when `tls`.
inline mock_options mock_with_tls(bool tls = true) {
    mock_options o;
    o.tls = tls;
    return o;
}

/// A chat body with a user message of `words` words and a max_tokens cap.
inline std::string chat_body(int i, int max_tokens = 64) {
    return R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Question number )" +
           std::to_string(i) + R"(: what is the answer?"}],"max_tokens":)" +
           std::to_string(max_tokens) + "}";
}

} // namespace sluice::test
