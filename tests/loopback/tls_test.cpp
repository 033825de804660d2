// TLS verification is on by default: the mock's own certificate is trusted only when given,
// and a certificate for another name is refused.
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"

#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/tls_context.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/error.hpp>

#include <catch2/catch.hpp>

using namespace sluice;
namespace asio = boost::asio;

namespace {

http_response one_exchange(const std::string& base_url, const tls_options& t) {
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(base_url, ec);
    REQUIRE_FALSE(ec);
    auto ctx = make_client_tls_context(t);
    request_headers h;
    h.target = ep.target("/chat/completions");
    connection_pool pool(ioc.get_executor(), ep, h, {}, &ctx);
    const std::string body = test::chat_body(1);
    http_response out;
    pool.async_exchange(body, [&](http_response r) {
        out = std::move(r);
        pool.close();
    });
    ioc.run();
    return out;
}

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
    CHECK(std::string(error_kind(r.ec)) == "tls_error");
    CHECK(mock.server().stats().requests == 0);
}

TEST_CASE("a trusted certificate for another name fails the handshake") {
    test::temp_dir dir;
    const std::string cert = dir.file("cert.pem"), key = dir.file("key.pem");
    REQUIRE(test::run_shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                            "-nodes -days 1 -subj /CN=other.example "
                            "-addext subjectAltName=DNS:other.example -keyout " +
                            key + " -out " + cert + " 2>/dev/null") == 0);
    mock_options mo = test::mock_with_tls();
    mo.cert_file = cert;
    mo.key_file = key;
    test::loopback_mock mock(mo);
    tls_options t;
    t.ca_file = cert;
    const auto r = one_exchange(mock.server().base_url(), t);
    CHECK(r.ec);
    CHECK(std::string(r.failed_step) == "handshake");
    CHECK(mock.server().stats().requests == 0);
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
