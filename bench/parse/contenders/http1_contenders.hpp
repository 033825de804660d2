#pragma once

// The two HTTP/1.1 response parsers of bench/parse/http1_bench.cpp, doing the same work per
// response as the pool's response_parser does: the status, each field (here only counted and
// summed, so that neither pays for storage the other skips), the body appended to a string
// reserved once. One `parse` is one response read from one buffer, as most answers arrive.

#include "transport/http1_parser.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace http1_bench {

using boost::beast::error_code;

// What a contender made of one response: compared between contenders before timing.
struct answer {
    int status = 0;
    std::size_t fields = 0;
    std::size_t field_bytes = 0;
    std::string body;
    bool keep_alive = false;
    std::size_t used = 0;
    bool operator==(const answer&) const = default;
};

struct sink {
    answer a;
    void response(int status) { a.status = status; }
    void field(std::string_view name, std::string_view value) {
        ++a.fields;
        a.field_bytes += name.size() + value.size();
    }
    void body(std::string_view piece) { a.body.append(piece); }
};

class ours_parser final : public sluice::detail::http1_parser<ours_parser> {
public:
    explicit ours_parser(sink& s)
        : s_(s) {}

private:
    friend class sluice::detail::http1_parser<ours_parser>;
    void on_response(int status, int, error_code&) { s_.response(status); }
    void on_field(std::string_view n, std::string_view v, error_code&) { s_.field(n, v); }
    void on_header(error_code&) {}
    void on_body_init(const boost::optional<std::uint64_t>&, error_code&) {}
    std::size_t on_body(std::string_view b, error_code&) {
        s_.body(b);
        return b.size();
    }
    void on_finish(error_code&) {}
    sink& s_;
};

class beast_parser final : public boost::beast::http::basic_parser<false> {
public:
    explicit beast_parser(sink& s)
        : s_(s) {}

private:
    using sv = boost::beast::string_view;
    void on_request_impl(boost::beast::http::verb, sv, sv, int, error_code&) override {}
    void on_response_impl(int status, sv, int, error_code&) override { s_.response(status); }
    void on_field_impl(boost::beast::http::field, sv n, sv v, error_code&) override {
        s_.field({n.data(), n.size()}, {v.data(), v.size()});
    }
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
    std::size_t on_body_impl(sv b, error_code&) override {
        s_.body({b.data(), b.size()});
        return b.size();
    }
    void on_chunk_header_impl(std::uint64_t, sv, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, sv b, error_code&) override {
        s_.body({b.data(), b.size()});
        return b.size();
    }
    void on_finish_impl(error_code&) override {}
    sink& s_;
};

// One contender: a parser made per response (as the pool makes one per exchange, in place),
// given the whole response; Beast's eager, offered the rest until it is done.
template <class Parser>
struct contender {
    sink s;
    std::optional<Parser> p;

    bool parse(std::string_view bytes) {
        s.a.status = 0;
        s.a.fields = s.a.field_bytes = 0;
        s.a.body.clear();
        p.emplace(s);
        p->eager(true);
        std::size_t used = 0;
        error_code ec;
        while (used < bytes.size() && !p->is_done()) {
            const std::size_t n =
                p->put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
            used += n;
            if (ec || n == 0)
                return false;
        }
        s.a.keep_alive = p->keep_alive();
        s.a.used = used;
        return p->is_done();
    }
};

struct beast {
    static constexpr const char* name = "Beast basic_parser";
    contender<beast_parser> c;
};

struct sluice {
    static constexpr const char* name = "sluice http1_parser";
    contender<ours_parser> c;
};

} // namespace http1_bench
