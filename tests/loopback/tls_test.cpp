// TLS verification is on by default: the mock's own certificate is trusted only when given,
// and a certificate for another name is refused.
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"

#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/tls_context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include <mutex>
#include <thread>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace tls_test {

using namespace sluice;
namespace asio = boost::asio;

namespace {

// `n` exchanges submitted at once on one pool; their responses and the pool's counters when
// the last one completed.
std::pair<std::vector<http_response>, pool_stats> exchanges_at_once(const std::string& base_url,
                                                                    const tls_options& t,
                                                                    int n,
                                                                    const pool_options& o = {}) {
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(base_url, ec);
    REQUIRE_FALSE(ec);
    auto ctx = make_client_tls_context(t);
    request_headers h;
    h.target = ep.target("/chat/completions");
    connection_pool pool(ioc.get_executor(), ep, h, o, &ctx);
    const std::string body = test::chat_body(1);
    std::vector<http_response> out;
    pool_stats stats;
    for (int i = 0; i < n; ++i)
        pool.async_exchange(body, [&](http_response r) {
            out.push_back(std::move(r));
            stats = pool.stats();
            if (static_cast<int>(out.size()) == n)
                pool.close();
        });
    ioc.run();
    return {std::move(out), stats};
}

http_response
one_exchange(const std::string& base_url, const tls_options& t, const pool_options& o = {}) {
    return std::move(exchanges_at_once(base_url, t, 1, o).first.at(0));
}

// A self-signed certificate (its own CA) with subject CN `cn` and subjectAltName `san` (none
// when empty), written as cert.pem and key.pem in `dir`.
void make_cert(const test::temp_dir& dir, const std::string& cn, const std::string& san) {
    REQUIRE(test::run_shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                            "-nodes -days 1 -subj /CN=" +
                            cn + (san.empty() ? "" : " -addext subjectAltName=" + san) +
                            " -keyout " + dir.file("key.pem") + " -out " + dir.file("cert.pem") +
                            " 2>/dev/null") == 0);
}

std::string port_url(const std::string& host, std::uint16_t port) {
    return "https://" + host + ":" + std::to_string(port) + "/v1";
}

// A TLS server on 127.0.0.1 that records the SNI name each client sent ("" for none) and
// answers each connection's request with a small 200 and Connection: close. Runs on its own
// thread for at most 20 s; stopped and joined at scope end.
class sni_recording_server {
public:
    sni_recording_server(const std::string& cert, const std::string& key)
        : ctx_(asio::ssl::context::tls_server)
        , acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
        ctx_.use_certificate_chain_file(cert);
        ctx_.use_private_key_file(key, asio::ssl::context::pem);
        asio::co_spawn(ioc_, serve(this), asio::detached);
        thread_ = std::thread([this] { ioc_.run_for(std::chrono::seconds(20)); });
    }
    ~sni_recording_server() {
        ioc_.stop();
        thread_.join();
    }
    sni_recording_server(const sni_recording_server&) = delete;
    sni_recording_server& operator=(const sni_recording_server&) = delete;

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::vector<std::string> names() {
        std::lock_guard lock(mutex_);
        return names_;
    }

private:
    static asio::awaitable<void> serve(sni_recording_server* self) {
        using asio::use_awaitable;
        for (;;) {
            asio::ssl::stream<asio::ip::tcp::socket> s(
                co_await self->acceptor_.async_accept(use_awaitable), self->ctx_);
            try {
                co_await s.async_handshake(asio::ssl::stream_base::server, use_awaitable);
                const char* name = SSL_get_servername(s.native_handle(), TLSEXT_NAMETYPE_host_name);
                {
                    std::lock_guard lock(self->mutex_);
                    self->names_.push_back(name ? name : "");
                }
                std::string in;
                co_await asio::async_read_until(
                    s, asio::dynamic_buffer(in), "\r\n\r\n", use_awaitable);
                static constexpr std::string_view answer =
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}";
                co_await asio::async_write(s, asio::buffer(answer), use_awaitable);
            } catch (const std::exception&) {
                // A client that gave up: next connection.
            }
        }
    }

    asio::io_context ioc_;
    asio::ssl::context ctx_;
    asio::ip::tcp::acceptor acceptor_;
    std::mutex mutex_;
    std::vector<std::string> names_;
    std::thread thread_;
};

} // namespace

TEST_CASE("the mock's certificate passes verification when it is trusted") {
    test::loopback_mock mock(test::mock_with_tls());
    tls_options t;
    t.ca_pem = mock.server().certificate_pem();
    const auto r = one_exchange(mock.server().base_url(), t);
    CHECK_FALSE(r.ec);
    CHECK(r.status == 200);
}

TEST_CASE("the name localhost is checked against the certificate's DNS names") {
    test::loopback_mock mock(test::mock_with_tls());
    tls_options t;
    t.ca_pem = mock.server().certificate_pem();
    const std::string url = "https://localhost:" + std::to_string(mock.server().port()) + "/v1";
    const auto r = one_exchange(url, t);
    CHECK_FALSE(r.ec);
    CHECK(r.status == 200);
}

TEST_CASE("an untrusted certificate fails the handshake") {
    test::loopback_mock mock(test::mock_with_tls());
    const auto r = one_exchange(mock.server().base_url(), {});
    CHECK(r.ec);
    CHECK(std::string(r.failed_step) == "handshake");
    CHECK(r.ec == errc::certificate_rejected);
    // OpenSSL's own reason, for the message a user reads.
    CHECK(std::string(r.failed_reason).find("self-signed") != std::string::npos);
    CHECK(mock.server().stats().requests == 0);
}

TEST_CASE("the first handshake is made alone and a refusal fails the exchanges it held back") {
    test::loopback_mock mock(test::mock_with_tls());
    const auto [refused, refused_stats] = exchanges_at_once(mock.server().base_url(), {}, 4);
    REQUIRE(refused.size() == 4);
    for (const auto& r : refused) {
        CHECK(r.ec == errc::certificate_rejected);
        CHECK(std::string(r.failed_step) == "handshake");
        CHECK(std::string(r.failed_reason).find("self-signed") != std::string::npos);
    }
    CHECK(refused_stats.connects == 1); // one refusal for all, not one per exchange

    // Once the certificate has verified, the others open their connections at once.
    tls_options t;
    t.ca_pem = mock.server().certificate_pem();
    const auto [answered, answered_stats] = exchanges_at_once(mock.server().base_url(), t, 4);
    REQUIRE(answered.size() == 4);
    for (const auto& r : answered)
        CHECK(r.status == 200);
    CHECK(answered_stats.connects == 4);
    CHECK(mock.server().stats().requests == 4);
}

TEST_CASE("a trusted certificate for another name fails the handshake") {
    test::temp_dir dir;
    make_cert(dir, "other.example", "DNS:other.example,IP:127.0.0.2");
    mock_options mo = test::mock_with_tls();
    mo.cert_file = dir.file("cert.pem");
    mo.key_file = dir.file("key.pem");
    test::loopback_mock mock(mo);
    tls_options t;
    t.ca_file = dir.file("cert.pem");
    // By address (the certificate names another one) and by name (it names another host).
    for (const std::string host : {"127.0.0.1", "localhost"}) {
        INFO(host);
        const auto r = one_exchange(port_url(host, mock.server().port()), t);
        CHECK(r.ec);
        CHECK(std::string(r.failed_step) == "handshake");
        CHECK(r.ec == errc::certificate_rejected);
        CHECK(std::string(r.failed_reason).find("mismatch") != std::string::npos);
    }
    CHECK(mock.server().stats().requests == 0);
}

TEST_CASE("a certificate naming the host in its subject CN only is refused") {
    // As browsers and the SDKs (Python's ssl) do: host names come from subjectAltName.
    test::temp_dir dir;
    make_cert(dir, "localhost", "");
    mock_options mo = test::mock_with_tls();
    mo.cert_file = dir.file("cert.pem");
    mo.key_file = dir.file("key.pem");
    test::loopback_mock mock(mo);
    tls_options t;
    t.ca_file = dir.file("cert.pem");
    const auto r = one_exchange(port_url("localhost", mock.server().port()), t);
    CHECK(r.ec);
    CHECK(std::string(r.failed_step) == "handshake");
}

TEST_CASE("an IPv6 literal is checked against the certificate's addresses") {
    {
        error_code ec;
        asio::io_context probe;
        asio::ip::tcp::acceptor a(probe);
        a.open(asio::ip::tcp::v6(), ec);
        if (!ec)
            a.bind({asio::ip::make_address("::1"), 0}, ec);
        if (ec) {
            WARN("no IPv6 loopback here: skipped");
            return;
        }
    }
    mock_options mo = test::mock_with_tls();
    mo.address = "::1";
    test::loopback_mock mock(mo);
    REQUIRE(mock.server().base_url().rfind("https://[::1]:", 0) == 0);
    tls_options t;
    t.ca_pem = mock.server().certificate_pem();
    const auto r = one_exchange(mock.server().base_url(), t);
    CHECK_FALSE(r.ec);
    CHECK(r.status == 200);
}

TEST_CASE("SNI names the host, and is left out for an IP address") {
    test::temp_dir dir;
    make_cert(dir, "localhost", "DNS:localhost,IP:127.0.0.1");
    sni_recording_server server(dir.file("cert.pem"), dir.file("key.pem"));
    tls_options t;
    t.ca_file = dir.file("cert.pem");
    auto r = one_exchange(port_url("localhost", server.port()), t);
    CHECK_FALSE(r.ec);
    CHECK(r.status == 200);
    r = one_exchange(port_url("127.0.0.1", server.port()), t);
    CHECK_FALSE(r.ec);
    CHECK(r.status == 200);
    CHECK(server.names() == std::vector<std::string>{"localhost", ""});
}

TEST_CASE("insecure skips verification") {
    test::loopback_mock mock(test::mock_with_tls());
    tls_options t;
    t.insecure = true;
    const auto r = one_exchange(mock.server().base_url(), t);
    CHECK_FALSE(r.ec);
    CHECK(r.status == 200);
}

TEST_CASE("a missing CA file is a setup error") {
    tls_options t;
    t.ca_file = "/nonexistent/ca.pem";
    CHECK_THROWS(make_client_tls_context(t));
}

TEST_CASE("a server that never answers the handshake times out at the handshake step") {
    // A listening socket nobody accepts on: the kernel completes the TCP connection, and the
    // ClientHello is never answered.
    asio::io_context server_ioc;
    asio::ip::tcp::acceptor silent(server_ioc, {asio::ip::make_address("127.0.0.1"), 0});
    pool_options o;
    o.handshake_timeout = std::chrono::milliseconds(100);
    const auto start = std::chrono::steady_clock::now();
    const auto r = one_exchange(port_url("127.0.0.1", silent.local_endpoint().port()), {}, o);
    CHECK(std::string(error_kind(r.ec)) == "timeout");
    CHECK(std::string(r.failed_step) == "handshake");
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

} // namespace tls_test
