// Setup checks of the connection pool: bad options and unsafe header values are refused when
// the pool is made, before any socket is opened.
#include <sluice/transport/connection_pool.hpp>

#include "support/endpoint.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>

using namespace sluice;
using test::parse_endpoint;

namespace {

std::string validate_message(const pool_options& o) {
    try {
        o.validate();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("pool options out of range are refused, naming the field") {
    CHECK(validate_message(pool_options{}).empty());
    pool_options o;
    o.max_connections = 0;
    CHECK(validate_message(o).find("max_connections") != std::string::npos);
    o = {};
    o.connect_timeout = std::chrono::milliseconds(0);
    CHECK(validate_message(o).find("connect_timeout") != std::string::npos);
    o = {};
    o.handshake_timeout = std::chrono::milliseconds(-1);
    CHECK(validate_message(o).find("handshake_timeout") != std::string::npos);
    o = {};
    o.request_timeout = std::chrono::milliseconds(0);
    CHECK(validate_message(o).find("request_timeout") != std::string::npos);
    o = {};
    o.idle_timeout = std::chrono::milliseconds(0);
    CHECK(validate_message(o).find("idle_timeout") != std::string::npos);
    o = {};
    o.max_body_size = 0;
    CHECK(validate_message(o).find("max_body_size") != std::string::npos);
}

TEST_CASE("an https endpoint without a TLS context is a setup error") {
    boost::asio::io_context ioc;
    CHECK_THROWS_AS(
        connection_pool(
            ioc.get_executor(), parse_endpoint("https://127.0.0.1/v1"), {}, {}, nullptr),
        std::invalid_argument);
    // Plain HTTP needs none.
    CHECK_NOTHROW(connection_pool(
        ioc.get_executor(), parse_endpoint("http://127.0.0.1/v1"), {}, {}, nullptr));
}

TEST_CASE("a header value with a line break is refused without echoing it") {
    // A key read from a file with its trailing newline would otherwise end the header early
    // and turn the rest of the request into garbage (or into headers of an attacker's choice).
    boost::asio::io_context ioc;
    request_headers h;
    h.target = "/v1/chat/completions";
    h.authorization = "Bearer sk-secret\n";
    try {
        connection_pool pool(
            ioc.get_executor(), parse_endpoint("http://127.0.0.1/v1"), h, {}, nullptr);
        FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        CHECK(what.find("authorization") != std::string::npos);
        CHECK(what.find("sk-secret") == std::string::npos);
    }
    h.authorization = "Bearer sk-secret";
    h.organization = "org\r\nX-Evil: 1";
    CHECK_THROWS_AS(
        connection_pool(ioc.get_executor(), parse_endpoint("http://127.0.0.1/v1"), h, {}, nullptr),
        std::invalid_argument);
}
