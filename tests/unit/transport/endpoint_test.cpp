#include <sluice/transport/endpoint.hpp>

#include "support/endpoint.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using test::parse_endpoint;

TEST_CASE("base URLs split into scheme, host, port and path prefix") {
    auto ep = parse_endpoint("https://api.openai.com/v1");
    CHECK(ep.tls);
    CHECK(ep.host == "api.openai.com");
    CHECK(ep.port == 443);
    CHECK(ep.path_prefix == "/v1");
    CHECK(ep.target("/chat/completions") == "/v1/chat/completions");
    CHECK(ep.host_header() == "api.openai.com");
    CHECK_FALSE(ep.host_is_ip());

    ep = parse_endpoint("http://127.0.0.1:8000/v1/");
    CHECK_FALSE(ep.tls);
    CHECK(ep.port == 8000);
    CHECK(ep.path_prefix == "/v1");
    CHECK(ep.host_header() == "127.0.0.1:8000");
    CHECK(ep.host_is_ip());

    ep = parse_endpoint("HTTP://localhost");
    CHECK(ep.port == 80);
    CHECK(ep.path_prefix.empty());
    CHECK(ep.target("/chat/completions") == "/chat/completions");

    ep = parse_endpoint("https://[::1]:8443/openai/v1");
    CHECK(ep.host == "::1");
    CHECK(ep.port == 8443);
    CHECK(ep.path_prefix == "/openai/v1");
    CHECK(ep.host_header() == "[::1]:8443");
    CHECK(ep.host_is_ip());

    ep = parse_endpoint("https://example.com:443/v1");
    CHECK(ep.host_header() == "example.com"); // the default port is not repeated

    ep = parse_endpoint("https://[::1]");
    CHECK(ep.host == "::1");
    CHECK(ep.port == 443);
    CHECK(ep.path_prefix.empty());
    CHECK(ep.host_header() == "[::1]");

    ep = parse_endpoint("http://example.com:8080");
    CHECK(ep.host_header() == "example.com:8080");
    CHECK_FALSE(ep.host_is_ip());

    ep = parse_endpoint("https://example.com:80/v1//");
    CHECK(ep.host_header() == "example.com:80"); // 80 is not the default of https
    CHECK(ep.path_prefix == "/v1");

    ep = parse_endpoint("https://my-llm.internal_net.example/openai/deployments/x");
    CHECK(ep.host == "my-llm.internal_net.example");
    CHECK(ep.target("/chat/completions") == "/openai/deployments/x/chat/completions");
}

TEST_CASE("loopback hosts are told from the rest") {
    for (const char* url : {"http://127.0.0.1:8000/v1",
                            "https://127.9.9.9/v1",
                            "https://[::1]:8443/v1",
                            "https://localhost/v1",
                            "https://LocalHost./v1",
                            "https://api.localhost:9000/v1"}) {
        INFO(url);
        CHECK(parse_endpoint(url).host_is_loopback());
    }
    for (const char* url : {"https://api.openai.com/v1",
                            "https://10.0.0.1/v1",
                            "https://[::2]/v1",
                            "https://notlocalhost/v1",
                            "https://localhost.example.com/v1"}) {
        INFO(url);
        CHECK_FALSE(parse_endpoint(url).host_is_loopback());
    }
}

TEST_CASE("malformed or unsupported URLs are invalid_url") {
    for (const char* bad : {"",
                            "api.openai.com/v1",
                            "ftp://x/v1",
                            "https://",
                            "https:///v1",
                            "https://user:pw@host/v1",
                            "https://host:0/v1",
                            "https://host:99999/v1",
                            "https://host:abc/v1",
                            "https://host:/v1",
                            "https://[::1/v1",
                            "https://[nothex]/v1",
                            "https://host/v1#frag",
                            "https://host/v1?api-version=1#frag",
                            "https://host/v1?api-version=1 2",
                            "https://host/v1?a=1\r\nX-Injected: 1",
                            "https://host/v 1",
                            "https://host/v1\r\nX-Injected: 1",
                            "https://host:443:1/v1",
                            "https://[127.0.0.1]/v1",
                            "https://[fe80::1%eth0]/v1",
                            "https://[::1]x/v1",
                            "https://.host/v1",
                            "https://a..b/v1",
                            "ws://host/v1",
                            "https:/host/v1",
                            "https://ho st/v1"}) {
        INFO(bad);
        error_code ec;
        endpoint::parse(bad, ec);
        CHECK(ec == errc::invalid_url);
    }
}

TEST_CASE("a base URL's query is kept and sent with every request, as Azure's api-version") {
    error_code ec;
    auto ep = endpoint::parse(
        "https://res.openai.azure.com/openai/deployments/gpt-4o-mini?api-version=2024-10-21", ec);
    REQUIRE(!ec);
    CHECK(ep.host == "res.openai.azure.com");
    CHECK(ep.path_prefix == "/openai/deployments/gpt-4o-mini");
    CHECK(ep.query == "api-version=2024-10-21");
    CHECK(ep.target("/chat/completions") ==
          "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21");
    // A trailing slash before the query goes, as without one; a bare host keeps its query.
    ep = endpoint::parse("http://127.0.0.1:8000/v1/?a=1&b=2", ec);
    REQUIRE(!ec);
    CHECK(ep.target("/chat/completions") == "/v1/chat/completions?a=1&b=2");
    ep = endpoint::parse("https://host?x=1", ec);
    REQUIRE(!ec);
    CHECK(ep.target("/chat/completions") == "/chat/completions?x=1");
    ep = endpoint::parse("https://host/v1", ec);
    CHECK(ep.query.empty());
    CHECK(ep.target("/chat/completions") == "/v1/chat/completions");
}
