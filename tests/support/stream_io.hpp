#pragma once

#include <sluice/error.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace sluice::test {

// One operation of one of the pool's own streams (tls_stream, plain_stream), run to its end on
// `ioc`. Not ioc.run(): the deadline's timer may stay armed after the operation (it is re-armed
// lazily, not cancelled), and run() would wait for it to fire.

// One read of at most `room` bytes: its error and what it read.
template <class Stream>
std::pair<error_code, std::string>
read_some(boost::asio::io_context& ioc, Stream& stream, std::size_t room = 64 * 1024) {
    std::string buf(room, '\0');
    std::optional<std::pair<error_code, std::size_t>> done;
    stream.async_read_some(boost::asio::buffer(buf),
                           [&](error_code ec, std::size_t n) { done.emplace(ec, n); });
    while (!done && ioc.run_one() > 0) {
    }
    ioc.restart();
    REQUIRE(done.has_value());
    buf.resize(done->second);
    return {done->first, buf};
}

// asio::async_write of `buffers`: its error and how much it wrote.
template <class Stream, class ConstBuffers>
std::pair<error_code, std::size_t>
write_all(boost::asio::io_context& ioc, Stream& stream, const ConstBuffers& buffers) {
    std::optional<std::pair<error_code, std::size_t>> done;
    boost::asio::async_write(
        stream, buffers, [&](error_code ec, std::size_t n) { done.emplace(ec, n); });
    while (!done && ioc.run_one() > 0) {
    }
    ioc.restart();
    REQUIRE(done.has_value());
    return *done;
}

// Reads until `n` bytes came (or a read fails, which fails the test).
template <class Stream>
std::string read_exactly(boost::asio::io_context& ioc, Stream& stream, std::size_t n) {
    std::string got;
    while (got.size() < n) {
        auto [ec, piece] = read_some(ioc, stream);
        REQUIRE_FALSE(ec);
        got += piece;
    }
    return got;
}

// The request of the tests' gathered writes, in three pieces as the pool writes a head, a
// length line and a body: "POST /v1 x\n" (11 bytes).
inline std::array<boost::asio::const_buffer, 3> gathered_request() {
    return {boost::asio::buffer("POST ", 5),
            boost::asio::buffer("/v1", 3),
            boost::asio::buffer(" x\n", 3)};
}

// Bytes of a recognisable pattern, for answers checked whole.
inline std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
    return s;
}

} // namespace sluice::test
