#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::test {

/// One request as a test server received it: the head (request line and headers, up to and
/// including the blank line) and the body its Content-Length announced.
struct received_request {
    std::string head;
    std::string body;
};

/// The value of header `name` (lowercase) in `head`, trimmed; empty when absent.
inline std::string header_value(std::string_view head, std::string_view name) {
    for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
        const std::size_t start = pos + 2;
        const std::size_t end = head.find("\r\n", start);
        const std::string_view line =
            head.substr(start, (end == std::string_view::npos ? head.size() : end) - start);
        pos = end;
        const std::size_t colon = line.find(':');
        if (colon != name.size())
            continue;
        bool same = true;
        for (std::size_t k = 0; k < colon && same; ++k)
            same = std::tolower(static_cast<unsigned char>(line[k])) == name[k];
        if (!same)
            continue;
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
            value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
            value.remove_suffix(1);
        return std::string(value);
    }
    return {};
}

/// Reads the next request from `socket` (a TCP socket or a TLS stream over one). `in` carries
/// bytes read past one request to the next call (a client that pipelines); throws on a read
/// error, as `use_awaitable` does.
template <class AsyncStream>
boost::asio::awaitable<received_request> read_request(AsyncStream& socket, std::string& in) {
    using boost::asio::use_awaitable;
    const std::size_t head_end = co_await boost::asio::async_read_until(
        socket, boost::asio::dynamic_buffer(in), "\r\n\r\n", use_awaitable);
    received_request r;
    r.head = in.substr(0, head_end);
    const std::string length_text = header_value(r.head, "content-length");
    const std::size_t length = length_text.empty() ? 0 : std::stoul(length_text);
    if (in.size() < head_end + length)
        co_await boost::asio::async_read(
            socket,
            boost::asio::dynamic_buffer(in),
            boost::asio::transfer_exactly(head_end + length - in.size()),
            use_awaitable);
    r.body = in.substr(head_end, length);
    in.erase(0, head_end + length);
    co_return r;
}

} // namespace sluice::test
