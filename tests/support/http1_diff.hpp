#pragma once

// Differential check of sluice's HTTP/1.1 response parser (src/transport/http1_parser.hpp)
// against Beast's basic_parser, the reference: both read the same bytes, response after
// response as a connection brings them, and what a user of either sees (verdict, status,
// fields in order, body bytes, keep-alive, bytes used per response) is recorded to compare.
// Shared by tests/unit/transport/http1_parser_test.cpp and tests/fuzz/http1_parser_fuzz.cpp.

#include "transport/http1_parser.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::test::http1_diff {

using boost::beast::error_code;
namespace http = boost::beast::http;

// What one response looked like to its reader.
struct message {
    int status = 0;
    int version = 0;
    std::vector<std::pair<std::string, std::string>> fields; // trailers too, in order
    std::string body;
    bool header_done = false;
    bool done = false;
    bool keep_alive = false;
    bool chunked = false;
    bool need_eof = false;
    bool has_length = false;
    std::uint64_t length = 0;
    std::size_t used = 0; // bytes of the input this response took

    bool operator==(const message&) const = default;
};

// The responses a connection's bytes held, and how the reading ended.
struct outcome {
    std::vector<message> messages;
    error_code ec;

    bool operator==(const outcome&) const = default;
};

struct limits {
    std::uint32_t header = 8192;
    std::uint64_t body = 8 * 1024 * 1024;
};

class ours final : public detail::http1_parser<ours> {
public:
    explicit ours(message& m)
        : m_(m) {}

private:
    friend class detail::http1_parser<ours>;
    void on_response(int status, int version, error_code&) {
        m_.status = status;
        m_.version = version;
    }
    void on_field(std::string_view name, std::string_view value, error_code&) {
        m_.fields.emplace_back(name, value);
    }
    void on_header(error_code&) {}
    void on_body_init(boost::optional<std::uint64_t>, error_code&) {}
    std::size_t on_body(std::string_view piece, error_code&) {
        m_.body.append(piece);
        return piece.size();
    }
    void on_finish(error_code&) {}

    message& m_;
};

class beasts final : public http::basic_parser<false> {
public:
    explicit beasts(message& m)
        : m_(m) {}

private:
    using sv = boost::beast::string_view;
    void on_request_impl(http::verb, sv, sv, int, error_code&) override {}
    void on_response_impl(int status, sv, int version, error_code&) override {
        m_.status = status;
        m_.version = version;
    }
    void on_field_impl(http::field, sv name, sv value, error_code&) override {
        m_.fields.emplace_back(std::string(name), std::string(value));
    }
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
    std::size_t on_body_impl(sv body, error_code&) override {
        m_.body.append(body.data(), body.size());
        return body.size();
    }
    void on_chunk_header_impl(std::uint64_t, sv, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, sv body, error_code&) override {
        m_.body.append(body.data(), body.size());
        return body.size();
    }
    void on_finish_impl(error_code&) override {}

    message& m_;
};

template <class Parser>
void note_head(const Parser& p, message& m) {
    m.header_done = p.is_header_done();
    if (!m.header_done)
        return;
    m.keep_alive = p.keep_alive();
    m.chunked = p.chunked();
    m.need_eof = p.need_eof();
    const auto length = p.content_length();
    m.has_length = length.has_value();
    m.length = length.value_or(0);
}

// Reads `pieces` (one after the other, as reads from a socket) with `Parser`, response after
// response. Beast's parser is read as Beast's own read does (`Gathers`): a buffer gathers the
// pieces and is offered to the parser until it wants more. Ours is given each piece as it
// comes and nothing else: it keeps what it needs of a split line itself.
template <class Parser, bool Gathers>
outcome read_with(const std::vector<std::string_view>& pieces, limits lim) {
    outcome out;
    out.messages.emplace_back();
    std::optional<Parser> p;
    const auto start = [&] {
        p.emplace(out.messages.back());
        p->eager(true);
        p->header_limit(lim.header);
        p->body_limit(lim.body);
    };
    const auto finish_one = [&] {
        note_head(*p, out.messages.back());
        out.messages.back().done = p->is_done();
    };
    start();
    std::string gathered;
    for (std::string_view piece : pieces) {
        std::string_view in = piece;
        if constexpr (Gathers) {
            gathered.append(piece);
            in = gathered;
        }
        while (!in.empty()) {
            const std::size_t n = p->put(boost::asio::buffer(in.data(), in.size()), out.ec);
            out.messages.back().used += n;
            in.remove_prefix(n);
            if (Gathers && out.ec == http::error::need_more) {
                out.ec = {};
                break;
            }
            if (out.ec) {
                finish_one();
                return out;
            }
            if (p->is_done()) {
                finish_one();
                out.messages.emplace_back();
                start();
            }
        }
        if constexpr (Gathers)
            gathered.erase(0, gathered.size() - in.size());
    }
    if (p->got_some() || (!Gathers && out.messages.size() == 1))
        p->put_eof(out.ec); // ours says end_of_stream itself when nothing came
    else if (out.messages.size() == 1)
        out.ec = http::error::end_of_stream; // as beast::http::read reports it
    finish_one();
    if (!p->got_some() && out.messages.size() > 1)
        out.messages.pop_back();
    return out;
}

inline outcome read_ours(const std::vector<std::string_view>& pieces, limits lim = {}) {
    return read_with<ours, false>(pieces, lim);
}

inline outcome read_beasts(const std::vector<std::string_view>& pieces, limits lim = {}) {
    return read_with<beasts, true>(pieces, lim);
}

// The pieces of `bytes` cut at `cuts` (ascending offsets).
inline std::vector<std::string_view> cut(std::string_view bytes,
                                         const std::vector<std::size_t>& cuts) {
    std::vector<std::string_view> pieces;
    std::size_t at = 0;
    for (std::size_t c : cuts) {
        pieces.push_back(bytes.substr(at, c - at));
        at = c;
    }
    pieces.push_back(bytes.substr(at));
    return pieces;
}

// The verdict a test holds our parser to: Beast's reading of the bytes in one piece, or its
// reading of the same pieces (`pieces`, read only when needed) where that differs: Beast checks
// a split head only once it has ended, and counts its header limit from where a read began.
// The same error, or on success the same responses. (Beast's reading of small pieces can stop
// on its own assertion, `n >= 5` in parse_chunk_header, in a build with assertions: hence
// only when needed.)
inline bool agrees(const outcome& ours_read,
                   const outcome& beast_whole,
                   const std::vector<std::string_view>& pieces,
                   limits lim) {
    const auto like = [&](const outcome& b) {
        return b.ec ? ours_read.ec == b.ec : ours_read == b;
    };
    return like(beast_whole) || like(read_beasts(pieces, lim));
}

inline std::string describe(const outcome& o) {
    std::string s =
        "ec '" + o.ec.message() + "', " + std::to_string(o.messages.size()) + " message(s)";
    for (const message& m : o.messages) {
        s += "\n  status " + std::to_string(m.status) + " v" + std::to_string(m.version) +
             " done " + std::to_string(m.done) + " keep " + std::to_string(m.keep_alive) +
             " chunked " + std::to_string(m.chunked) + " eof " + std::to_string(m.need_eof) +
             " used " + std::to_string(m.used) + " body " + std::to_string(m.body.size()) +
             " fields " + std::to_string(m.fields.size());
        for (const auto& [n, v] : m.fields)
            s += "\n    " + n + ": " + v;
    }
    return s;
}

} // namespace sluice::test::http1_diff
