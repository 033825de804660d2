// The one rule for values sent in a header or the request line, as the pool and the front
// ends apply it.
#include <sluice/transport/endpoint.hpp>
#include <sluice/transport/header_value.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace sluice;

TEST_CASE("a header value may hold no CR, LF, NUL or other control character") {
    CHECK(is_valid_header_value(""));
    CHECK(is_valid_header_value("Bearer sk-proj-AbC_123-xyz"));
    CHECK(is_valid_header_value("org with spaces\tand a tab")); // HTTP allows both
    CHECK(is_valid_header_value("caf\xc3\xa9"));                // bytes above 0x7f pass
    for (const std::string& bad : {std::string("sk-key\n"),
                                   std::string("sk-key\r"),
                                   std::string("sk-key\r\nX-Injected: 1"),
                                   std::string("sk\0key", 6),
                                   std::string("sk\x1bkey"),
                                   std::string("sk\x7fkey")}) {
        INFO(bad);
        CHECK_FALSE(is_valid_header_value(bad));
    }
}

TEST_CASE("a base URL with CR, LF or NUL is not a URL") {
    for (const std::string& bad : {std::string("http://127.0.0.1:8000/v1\n"),
                                   std::string("http://127.0.0.1:8000/v1\rX"),
                                   std::string("http://127.0.0.1:8000/v\0"
                                               "1",
                                               25),
                                   std::string("http://127.0.0.1\n:8000/v1")}) {
        INFO(bad);
        error_code ec;
        endpoint::parse(bad, ec);
        CHECK(ec == errc::invalid_url);
    }
}
