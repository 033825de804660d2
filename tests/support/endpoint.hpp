#pragma once

#include <sluice/transport/endpoint.hpp>

#include <catch2/catch.hpp>

#include <string_view>

namespace sluice::test {

/// `url` parsed as an endpoint; fails the test (naming the URL) when it is not one.
inline endpoint parse_endpoint(std::string_view url) {
    error_code ec;
    endpoint ep = endpoint::parse(url, ec);
    INFO(url);
    REQUIRE_FALSE(ec);
    return ep;
}

} // namespace sluice::test
