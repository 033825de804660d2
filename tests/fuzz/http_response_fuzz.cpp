// The transport's HTTP/1.1 response parser (src/transport/response_parser.hpp) on arbitrary
// bytes, as a socket would deliver them: the same response (status, the headers the engine
// reads, the body or the streamed events, the error) whether the bytes come at once or in
// pieces of a size taken from the data, and the body caps hold: the body never grows past the
// limit and the pool-wide budget is charged exactly what the body holds.
#include "fuzz_support.hpp"
#include "transport/response_parser.hpp"

#include <sluice/parse/stream_reader.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <vector>

using namespace sluice;
using detail::body_budget;
using detail::response_parser;

namespace {

struct parsed {
    error_code ec;
    bool done = false;
    bool over_budget = false;
    http_response out;
    std::string stream_body; // what the observer made of an event stream
    error_code stream_ec;
    std::uint64_t events = 0;
    std::size_t charged = 0;
};

bool same(const parsed& a, const parsed& b) {
    const http_response& x = a.out;
    const http_response& y = b.out;
    return a.ec == b.ec && a.done == b.done && a.over_budget == b.over_budget &&
           x.status == y.status && x.body == y.body && x.streamed == y.streamed &&
           x.request_id == y.request_id && x.content_type == y.content_type &&
           x.retry_after == y.retry_after && x.retry_after_ms == y.retry_after_ms &&
           x.should_retry == y.should_retry && x.limit_requests == y.limit_requests &&
           x.limit_tokens == y.limit_tokens && x.remaining_requests == y.remaining_requests &&
           x.remaining_tokens == y.remaining_tokens && x.reset_requests == y.reset_requests &&
           x.reset_tokens == y.reset_tokens && a.stream_body == b.stream_body &&
           a.stream_ec == b.stream_ec && a.events == b.events;
}

void print(const char* name, const parsed& r) {
    std::fprintf(stderr,
                 "%s: ec '%s', done %d, status %u, streamed %d, body %zu bytes, stream '%s' "
                 "(%s), %llu events\n",
                 name,
                 r.ec.message().c_str(),
                 r.done,
                 r.out.status,
                 r.out.streamed,
                 r.out.body.size(),
                 r.stream_body.substr(0, 80).c_str(),
                 r.stream_ec.message().c_str(),
                 static_cast<unsigned long long>(r.events));
}

// Feeds `bytes` in reads of at most `piece` bytes, as pool_exchange does with its buffer: the
// head only whole, the body in parts; then the end of the connection.
parsed
parse(std::string_view bytes, std::size_t piece, std::size_t max_body, std::size_t budget_limit) {
    parsed r;
    body_budget budget;
    budget.limit = budget_limit;
    stream_reader reader;
    {
        response_parser p(r.out, budget, r.charged, max_body, &reader);
        std::string pending;
        for (std::size_t at = 0; at < bytes.size() && !p.is_done() && !r.ec; at += piece) {
            pending.append(bytes.substr(at, piece));
            while (!pending.empty() && !p.is_done()) {
                error_code ec;
                const std::size_t used = p.put(boost::asio::buffer(pending), ec);
                pending.erase(0, used);
                if (ec == boost::beast::http::error::need_more)
                    break;
                if (ec) {
                    r.ec = ec;
                    break;
                }
                if (used == 0)
                    break;
            }
        }
        if (!r.ec && !p.is_done() && p.got_some()) {
            error_code ec;
            p.put_eof(ec);
            r.ec = ec;
        }
        r.done = p.is_done();
        r.over_budget = p.over_budget();
    }
    SLUICE_FUZZ_CHECK(r.charged == budget.used);
    SLUICE_FUZZ_CHECK(r.out.body.size() <= max_body);
    if (r.done && !r.out.streamed)
        SLUICE_FUZZ_CHECK(r.out.body.capacity() >= r.out.body.size() + parse_padding);
    // A body at the cap costs the cap (and the padding), never more.
    SLUICE_FUZZ_CHECK(r.charged <= max_body + parse_padding);
    if (r.out.streamed) {
        SLUICE_FUZZ_CHECK(r.out.body.empty());
        if (r.done && !r.ec)
            r.stream_ec = reader.finish(r.stream_body);
        r.events = reader.events();
    }
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);
    // Limits from the data: a small cap sometimes, and a pool budget sometimes.
    const std::size_t h = fuzz::split_point(in, 3);
    const std::size_t max_body = (h & 1) ? 1 + h % 512 : 1 << 20;
    const std::size_t budget = (h & 2) ? max_body + parse_padding + h % 1024 : 0;

    const parsed whole = parse(in, in.size() + 1, max_body, budget);
    const std::size_t piece = 1 + fuzz::split_point(in, 4) % 64;
    const parsed pieces = parse(in, piece, max_body, budget);
    // Only a success must be identical: which error a failure gives is the parser's own
    // matter, held to Beast's by the http1_parser target.
    const bool whole_ok = whole.done && !whole.ec;
    const bool pieces_ok = pieces.done && !pieces.ec;
    if (whole_ok != pieces_ok || (whole_ok && !same(whole, pieces))) {
        print("whole", whole);
        std::fprintf(stderr, "reads of %zu bytes:\n", piece);
        print("pieces", pieces);
    }
    SLUICE_FUZZ_CHECK(whole_ok == pieces_ok);
    SLUICE_FUZZ_CHECK(!whole_ok || same(whole, pieces));
    return 0;
}
