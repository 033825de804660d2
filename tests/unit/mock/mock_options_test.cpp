// mock_options::validate names the field out of range, and the server refuses such options.

#include <sluice/mock/mock_server.hpp>

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <limits>
#include <stdexcept>
#include <string>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

// The message validate() throws, or "" when it accepts.
std::string complaint(const mock_options& o) {
    try {
        o.validate();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("mock_options::validate accepts the defaults and names a field out of range") {
    mock_options o;
    CHECK(complaint(o).empty());
    o.faults.stream_error = 1;
    o.faults.stream_cut = 0;
    o.first_token = 0us;
    CHECK(complaint(o).empty());

    SECTION("a probability above 1") {
        o.faults.stream_cut = 1.5;
        CHECK(complaint(o).find("faults.stream_cut") != std::string::npos);
    }
    SECTION("a negative probability") {
        o.faults.http_500 = -0.1;
        CHECK(complaint(o).find("faults.http_500") != std::string::npos);
    }
    SECTION("a NaN probability") {
        o.faults.stream_error = std::numeric_limits<double>::quiet_NaN();
        CHECK(complaint(o).find("faults.stream_error") != std::string::npos);
    }
    SECTION("a negative duration") {
        o.chunk_interval = -1us;
        CHECK(complaint(o).find("chunk_interval") != std::string::npos);
        o.chunk_interval = 0us;
        o.first_token = -1ms;
        CHECK(complaint(o).find("first_token") != std::string::npos);
    }
    SECTION("no words per chunk") {
        o.tokens_per_chunk = 0;
        CHECK(complaint(o).find("tokens_per_chunk") != std::string::npos);
    }
}

TEST_CASE("the mock server refuses options out of range before it binds") {
    boost::asio::io_context ioc;
    mock_options o;
    o.tokens_per_chunk = 0;
    CHECK_THROWS_AS(mock_server(ioc.get_executor(), o), std::invalid_argument);
}
