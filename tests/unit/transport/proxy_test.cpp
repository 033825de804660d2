// Proxy URLs and curl's NO_PROXY rules, as the pool and the `sluice` tool apply them.
#include <sluice/transport/proxy.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>

using namespace sluice;

namespace {

proxy_endpoint parse_proxy(const std::string& url) {
    error_code ec;
    proxy_endpoint p = proxy_endpoint::parse(url, ec);
    INFO(url);
    REQUIRE(!ec);
    return p;
}

} // namespace

TEST_CASE("a proxy URL gives host, port and Basic credentials, curl's defaults filling the rest") {
    proxy_endpoint p = parse_proxy("http://proxy.example:3128");
    CHECK(p.host == "proxy.example");
    CHECK(p.port == 3128);
    CHECK(p.authorization.empty());
    CHECK(p.display() == "proxy.example:3128");

    p = parse_proxy("proxy.example"); // no scheme: http; no port: 1080, as curl
    CHECK(p.host == "proxy.example");
    CHECK(p.port == 1080);
    p = parse_proxy("HTTP://10.0.0.1:8080/");
    CHECK(p.host == "10.0.0.1");
    CHECK(p.port == 8080);
    p = parse_proxy("http://[::1]:3128");
    CHECK(p.host == "::1");
    CHECK(p.display() == "[::1]:3128");

    // RFC 7617: base64("Aladdin:open sesame"); the password percent-decoded first.
    p = parse_proxy("http://Aladdin:open%20sesame@127.0.0.1:3128");
    CHECK(p.authorization == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    CHECK(p.password == "open sesame");
    CHECK(p.display() == "127.0.0.1:3128"); // never the credentials
    p = parse_proxy("http://user@proxy:1"); // a user with no password
    CHECK(p.authorization == "Basic dXNlcjo=");
    p = parse_proxy("http://u:p%40ss%3Aword@proxy:2"); // '@' and ':' escaped in the password
    CHECK(p.password == "p@ss:word");
    CHECK(p.host == "proxy");
}

TEST_CASE("proxy URLs that are not an http:// proxy are invalid_url") {
    for (const char* bad : {"",
                            "https://proxy:3128",
                            "socks5://proxy:1080",
                            "http://",
                            "http://proxy:0",
                            "http://proxy:99999",
                            "http://proxy:",
                            "http://proxy:31x",
                            "http://proxy:3128/path",
                            "http://proxy:3128?x=1",
                            "http://:pw@proxy:3128",
                            "http://u:%zz@proxy:3128",
                            "http://u:%4@proxy:3128",
                            "http://pro xy:3128",
                            "http://[::1:3128",
                            "http://proxy:3128\r\nX-Injected: 1"}) {
        INFO(bad);
        error_code ec;
        proxy_endpoint::parse(bad, ec);
        CHECK(ec == errc::invalid_url);
    }
}

TEST_CASE("NO_PROXY: names match themselves and what is under them, with curl's spelling") {
    CHECK(no_proxy_matches("example.com", "example.com", 443));
    CHECK(no_proxy_matches("example.com", "api.example.com", 443));
    CHECK(no_proxy_matches(".example.com", "api.example.com", 443));
    CHECK(no_proxy_matches(".example.com", "example.com", 443));
    CHECK(no_proxy_matches("EXAMPLE.com.", "Api.Example.COM.", 443));
    CHECK_FALSE(no_proxy_matches("example.com", "badexample.com", 443));
    CHECK_FALSE(no_proxy_matches("api.example.com", "example.com", 443));
    CHECK_FALSE(no_proxy_matches("", "example.com", 443));
    CHECK_FALSE(no_proxy_matches(" , ,", "example.com", 443));
    // A list, blanks around entries ignored; * anywhere matches everything.
    CHECK(no_proxy_matches("a.test, example.com ,b.test", "x.example.com", 443));
    CHECK(no_proxy_matches("a.test,*", "anything.at.all", 80));
    CHECK_FALSE(no_proxy_matches("*.example.com", "api.example.com", 443)); // curl: no globs
}

TEST_CASE("NO_PROXY: ports, IP addresses, CIDR ranges, and loopback only when listed") {
    CHECK(no_proxy_matches("example.com:8443", "api.example.com", 8443));
    CHECK_FALSE(no_proxy_matches("example.com:8443", "api.example.com", 443));
    CHECK(no_proxy_matches("127.0.0.1", "127.0.0.1", 8443));
    CHECK(no_proxy_matches("127.0.0.1:8443", "127.0.0.1", 8443));
    CHECK_FALSE(no_proxy_matches("127.0.0.1:8443", "127.0.0.1", 9443));
    CHECK_FALSE(no_proxy_matches("127.0.0.2", "127.0.0.1", 443));
    CHECK(no_proxy_matches("10.0.0.0/8", "10.20.30.40", 443));
    CHECK_FALSE(no_proxy_matches("10.0.0.0/8", "11.0.0.1", 443));
    CHECK_FALSE(no_proxy_matches("10.0.0.0/8", "ten.example", 443));
    CHECK(no_proxy_matches("::1", "::1", 443));
    CHECK(no_proxy_matches("[::1]", "::1", 443));
    CHECK(no_proxy_matches("[::1]:8443", "::1", 8443));
    CHECK_FALSE(no_proxy_matches("[::1]:8443", "::1", 443));
    CHECK(no_proxy_matches("fd00::/8", "fd12:3456::1", 443));
    CHECK_FALSE(no_proxy_matches("fd00::/8", "fe80::1", 443));
    // An IP entry matches the address, not a name that resolves to it; loopback is no
    // exception to the rule that only the list bypasses the proxy.
    CHECK_FALSE(no_proxy_matches("127.0.0.1", "localhost", 443));
    CHECK_FALSE(no_proxy_matches("example.com", "127.0.0.1", 443));
    CHECK(no_proxy_matches("localhost", "localhost", 443));
}

TEST_CASE("the environment: the scheme's variable, lowercase first, empty as unset") {
    std::map<std::string, std::string> env;
    auto getenv = [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    std::string from;
    CHECK(proxy_from_environment(true, getenv, &from).url.empty());
    CHECK(from.empty());
    env["HTTPS_PROXY"] = "http://upper:1";
    env["HTTP_PROXY"] = "http://plain:2";
    env["NO_PROXY"] = "internal.test";
    proxy_options p = proxy_from_environment(true, getenv, &from);
    CHECK(p.url == "http://upper:1");
    CHECK(from == "HTTPS_PROXY");
    CHECK(p.no_proxy == "internal.test");
    env["https_proxy"] = "http://lower:3";
    env["no_proxy"] = "";
    p = proxy_from_environment(true, getenv, &from);
    CHECK(p.url == "http://lower:3");
    CHECK(from == "https_proxy");
    CHECK(p.no_proxy == "internal.test"); // the empty lowercase one counts as unset
    p = proxy_from_environment(false, getenv, &from);
    CHECK(p.url == "http://plain:2");
    CHECK(from == "HTTP_PROXY");
}
