#pragma once

#include <sluice/error.hpp>
#include <sluice/parse/completion_parser.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>

#include <algorithm>
#include <cstdint>
#include <string>

namespace sluice::detail {

// A Beast body type that reads into a std::string whose capacity always keeps
// `parse_padding` spare bytes past the end, so the simdjson fast path can parse the body in
// place without copying it.
struct padded_body {
    using value_type = std::string;

    static std::uint64_t size(const value_type& body) { return body.size(); }

    class reader {
    public:
        template <bool isRequest, class Fields>
        reader(boost::beast::http::header<isRequest, Fields>&, value_type& body) : body_(body) {}

        void init(const boost::optional<std::uint64_t>& length, error_code& ec) {
            body_.clear();
            // The parser has already refused a Content-Length above its body limit.
            if (length)
                body_.reserve(static_cast<std::size_t>(*length) + parse_padding);
            ec = {};
        }

        template <class ConstBufferSequence>
        std::size_t put(const ConstBufferSequence& buffers, error_code& ec) {
            const std::size_t n = boost::asio::buffer_size(buffers);
            const std::size_t size = body_.size();
            if (body_.capacity() < size + n + parse_padding)
                body_.reserve(std::max(body_.capacity() * 2, size + n + parse_padding));
            body_.resize(size + n);
            boost::asio::buffer_copy(boost::asio::buffer(body_.data() + size, n), buffers);
            ec = {};
            return n;
        }

        void finish(error_code& ec) { ec = {}; }

    private:
        value_type& body_;
    };
};

} // namespace sluice::detail
