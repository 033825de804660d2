// Custom headers in the pool's fixed request head: rendered once after sluice's own, checked
// when the pool is made, and never echoed in an error.
#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/header_value.hpp>

#include "support/endpoint.hpp"
#include "transport/request_head.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

using namespace sluice;
using test::parse_endpoint;

namespace {

request_headers base_headers() {
    request_headers h;
    h.target = "/v1/chat/completions";
    h.authorization = "Bearer sk-key";
    h.user_agent = "sluice/0.1";
    return h;
}

// What request_head says of `h`; empty when it accepts them.
std::string refusal(const request_headers& h) {
    try {
        detail::request_head(parse_endpoint("http://127.0.0.1:8000/v1"), h);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("a header name is an HTTP token, compared without case") {
    CHECK(is_valid_header_name("X-Tenant"));
    CHECK(is_valid_header_name("api-key"));
    CHECK(is_valid_header_name("x_custom.v2~!#$%&'*+^`|"));
    for (const char* bad : {"", "X Tenant", "X-Tenant:", "X\r\nY", "Caf\xc3\xa9", "(x)", "a/b"}) {
        INFO(bad);
        CHECK_FALSE(is_valid_header_name(bad));
    }
    CHECK(same_header_name("authorization", "Authorization"));
    CHECK(same_header_name("API-KEY", "api-key"));
    CHECK_FALSE(same_header_name("api-key", "api-keys"));
    for (const char* framing : {"Host",
                                "content-length",
                                "Content-Type",
                                "TRANSFER-ENCODING",
                                "Connection",
                                "Accept",
                                "Expect",
                                "Proxy-Authorization"})
        CHECK(is_framing_header(framing));
    for (const char* free : {"Authorization", "User-Agent", "X-Tenant", "api-key"})
        CHECK_FALSE(is_framing_header(free));
}

TEST_CASE("custom headers follow sluice's own in order, and a User-Agent replaces sluice's") {
    request_headers h = base_headers();
    h.extra = {{"X-Tenant", "blue"}, {"X-Route", "eu-1"}};
    std::string head = detail::request_head(parse_endpoint("http://127.0.0.1:8000/v1"), h);
    CHECK(head.rfind("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n", 0) == 0);
    CHECK(head.find("Authorization: Bearer sk-key\r\n") != std::string::npos);
    const auto tenant = head.find("X-Tenant: blue\r\n");
    const auto route = head.find("X-Route: eu-1\r\n");
    REQUIRE(tenant != std::string::npos);
    REQUIRE(route != std::string::npos);
    CHECK(head.find("User-Agent: sluice/0.1\r\n") < tenant);
    CHECK(tenant < route);
    // Content-Length is added per request after the head: the head ends with a whole line.
    CHECK(head.substr(head.size() - 2) == "\r\n");

    h.extra = {{"user-agent", "my-batch/2.0"}};
    head = detail::request_head(parse_endpoint("http://127.0.0.1:8000/v1"), h);
    CHECK(head.find("sluice/0.1") == std::string::npos);
    CHECK(head.find("user-agent: my-batch/2.0\r\n") != std::string::npos);
}

TEST_CASE("a custom header with a bad name, a line end or a framing name is refused unshown") {
    request_headers h = base_headers();
    h.extra = {{"X-Secret", "tok-SECRET-VALUE\r\nX-Injected: 1"}};
    std::string why = refusal(h);
    CHECK(why.find("X-Secret") != std::string::npos);
    CHECK(why.find("SECRET-VALUE") == std::string::npos);
    CHECK(why.find("Injected") == std::string::npos);

    h.extra = {{"X Secret", "v"}};
    CHECK(refusal(h).find("not a header name") != std::string::npos);
    h.extra = {{"X\r\nEvil", "v"}};
    why = refusal(h);
    CHECK(why.find("not a header name") != std::string::npos);
    CHECK(why.find('\n') == std::string::npos);

    for (const char* framing : {"Content-Length", "host", "Transfer-Encoding", "Connection"}) {
        INFO(framing);
        h.extra = {{framing, "1"}};
        CHECK(refusal(h).find("frame every request") != std::string::npos);
    }
    h.extra = {{"X-Fine", ""}}; // an empty value is a value
    CHECK(refusal(h).empty());
}
