#pragma once

#include <sluice/parse/completion_parser.hpp>
#include <sluice/transport/connection_pool.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>

#include <algorithm>
#include <string>

namespace sluice::detail {

// An HTTP/1.1 response parser that writes straight into an `http_response`: the headers the
// engine reads are copied into their members and the others are dropped (no per-field
// allocation, unlike a full beast::http::fields), and the body goes into a string that always
// keeps `parse_padding` spare bytes so the simdjson fast path can read it in place.
class response_parser final : public boost::beast::http::basic_parser<false> {
public:
    explicit response_parser(http_response& out)
        : out_(out) {
        out_.body.clear();
    }

private:
    using string_view = boost::beast::string_view;

    void
    on_request_impl(boost::beast::http::verb, string_view, string_view, int, error_code&) override {
    }

    void on_response_impl(int code, string_view, int, error_code&) override {
        out_.status = static_cast<unsigned>(code);
    }

    void on_field_impl(boost::beast::http::field,
                       string_view name,
                       string_view value,
                       error_code&) override {
        if (std::string* target = header_target(name))
            target->assign(value.data(), value.size());
    }

    void on_header_impl(error_code&) override {}

    void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
        // The base class has already refused a Content-Length above the body limit.
        if (length)
            out_.body.reserve(static_cast<std::size_t>(*length) + parse_padding);
    }

    std::size_t on_body_impl(string_view body, error_code&) override {
        append(body);
        return body.size();
    }

    void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}

    std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override {
        append(body);
        return body.size();
    }

    void on_finish_impl(error_code&) override {
        if (out_.body.capacity() < out_.body.size() + parse_padding)
            out_.body.reserve(out_.body.size() + parse_padding);
    }

    void append(string_view piece) {
        std::string& b = out_.body;
        if (b.capacity() < b.size() + piece.size() + parse_padding)
            b.reserve(std::max(b.capacity() * 2, b.size() + piece.size() + parse_padding));
        b.append(piece.data(), piece.size());
    }

    std::string* header_target(string_view name) {
        using boost::beast::iequals;
        // Only x-request-id, retry-after*, x-should-retry and x-ratelimit-* are read.
        if (name.size() < 11)
            return nullptr;
        if (iequals(name, "x-request-id"))
            return &out_.request_id;
        if (iequals(name, "retry-after"))
            return &out_.retry_after;
        if (iequals(name, "retry-after-ms"))
            return &out_.retry_after_ms;
        if (iequals(name, "x-should-retry"))
            return &out_.should_retry;
        if (name.size() < 24 || !iequals(name.substr(0, 12), "x-ratelimit-"))
            return nullptr;
        const string_view rest = name.substr(12);
        if (iequals(rest, "limit-requests"))
            return &out_.limit_requests;
        if (iequals(rest, "limit-tokens"))
            return &out_.limit_tokens;
        if (iequals(rest, "remaining-requests"))
            return &out_.remaining_requests;
        if (iequals(rest, "remaining-tokens"))
            return &out_.remaining_tokens;
        if (iequals(rest, "reset-requests"))
            return &out_.reset_requests;
        if (iequals(rest, "reset-tokens"))
            return &out_.reset_tokens;
        return nullptr;
    }

    http_response& out_;
};

} // namespace sluice::detail
