#include "detail/complete.hpp"
#include "transport/detail/pool_impl.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include <array>
#include <charconv>
#include <cstring>
#include <string_view>

namespace sluice::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// More 1xx responses before one answer than any server sends for a reason.
constexpr unsigned max_informational = 8;

} // namespace

// The fixed head, the Content-Length line and the caller's body go out as one gather
// write: no serializer, no copy of the body.
void pool_impl::start_write(exchange_ptr x) {
    const std::size_t length = x->body.size() + x->more_body[0].size() + x->more_body[1].size();
    // to_chars, not snprintf: 50 instructions instead of 840, on every request.
    constexpr std::string_view name = "Content-Length: ";
    constexpr std::string_view end = "\r\n\r\n";
    char* const first = x->length_line.data();
    char* const last = first + x->length_line.size();
    std::memcpy(first, name.data(), name.size());
    char* p = std::to_chars(first + name.size(), last - end.size(), length).ptr;
    std::memcpy(p, end.data(), end.size());
    x->length_line_size = static_cast<std::size_t>(p + end.size() - first);
    const std::string& request_head = x->own_head.empty() ? head : x->own_head;
    const std::array<asio::const_buffer, 5> buffers{
        asio::buffer(request_head),
        asio::buffer(x->length_line.data(), x->length_line_size),
        asio::buffer(x->body.data(), x->body.size()),
        asio::buffer(x->more_body[0].data(), x->more_body[0].size()),
        asio::buffer(x->more_body[1].data(), x->more_body[1].size())};
    connection& c = *x->conn;
    // One deadline for connecting, writing the request and reading the whole response.
    c.expires_at(x->deadline);
    new_parser(*x);
    auto on_written = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                    std::size_t) mutable {
        self->on_write(std::move(x), ec);
    };
    c.with_stream(
        [&](auto& s) { asio::async_write(s, buffers, with_op_memory(std::move(on_written))); });
}

void pool_impl::new_parser(exchange& x) {
    x.conn->parser.emplace(
        x.resp, bodies, x.body_charge, opts.max_body_size, x.observer, x.observe_any);
}

void pool_impl::on_write(exchange_ptr x, error_code ec) {
    if (ec)
        return fail_or_replay(std::move(x), ec, "write");
    x->resp.sent = clock::now();
    read_head(std::move(x));
}

// A connection beyond `tls_buffered_connections` waits for the head with the buffer of its
// last answer (4 KiB after a stream), not with none and a wait for the socket as between a
// stream's events: when held answers come back together, each would take its 4 KiB at once and
// keep it until its read's completion ran. Measured with 10,000 connections, whole answers
// held 6 s took 266 -> 299 MiB that way (and the 512 bytes of a fresh head read instead cost
// OpenSSL a record buffer per read).
void pool_impl::read_head(exchange_ptr x) {
    connection& c = *x->conn;
    ack_at_once(c);
    auto on_head = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                 std::size_t) mutable {
        self->on_header(std::move(x), ec);
    };
    c.with_stream([&](auto& s) {
        http::async_read_header(s, c.buffer, *c.parser, with_op_memory(std::move(on_head)));
    });
}

// A connection beyond `tls_buffered_connections` holds no read buffer while it waits between
// the events of a stream: ten thousand streams waiting would hold 4 KiB each. The buffer is
// given back and taken again (from a per-thread list, connection::read_buffer) once there is
// something to read. True when `x` waits so; `then` runs with the wait's outcome.
bool pool_impl::wait_unbuffered(exchange_ptr& x,
                                void (pool_impl::*then)(exchange_ptr, error_code)) {
    connection& c = *x->conn;
    if (c.busy_class || c.buffer.size() > 0)
        return false;
    c.buffer.shrink_to_fit();
    auto on_ready = [self = shared_from_this(), x = std::move(x), then](error_code ec) mutable {
        ((*self).*then)(std::move(x), ec);
    };
    c.with_stream(
        [&](auto& s) { stream_core::async_wait_readable(s, with_op_memory(std::move(on_ready))); });
    return true;
}

void pool_impl::on_header(exchange_ptr x, error_code ec) {
    if (ec)
        return fail_or_replay(std::move(x), ec, "read");
    if (x->resp.first_byte == clock::time_point{})
        x->resp.first_byte = clock::now();
    const unsigned status = x->resp.status;
    if (status >= 100 && status < 200)
        return on_informational(std::move(x));
    connection& c = *x->conn;
    widen_reads(c);
    if (c.parser->streaming())
        return read_stream(std::move(x));
    if (error_code pec; parse_buffered(c, pec) || pec)
        return on_body(std::move(x), pec);
    auto on_rest = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                 std::size_t) mutable {
        self->on_body(std::move(x), ec);
    };
    c.with_stream([&](auto& s) {
        http::async_read(s, c.buffer, *c.parser, with_op_memory(std::move(on_rest)));
    });
}

// Most answers arrive whole in the read that brought their head: the body is parsed from the
// buffer here, as Beast's read would parse it (eagerly, as much as the buffer holds), but
// without the trip through the scheduler that a read completing at once must take (and the
// handler wrappers allocated for it). True when the body is done; false, with `ec` clear, when
// it needs bytes from the socket; `ec` is the parser's error otherwise.
bool pool_impl::parse_buffered(connection& c, error_code& ec) {
    response_parser& p = *c.parser;
    p.eager(true);
    while (!p.is_done() && c.buffer.size() > 0) {
        const std::size_t used = p.put(c.buffer.data(), ec);
        c.buffer.consume(used);
        if (ec == http::error::need_more) {
            ec = {};
            return false;
        }
        if (ec || used == 0)
            return false;
    }
    return p.is_done();
}

// Beast reads into what the buffer has room for, at least 512 bytes: left at the size the
// head needed, a 32 KB event stream takes some 64 reads, each a trip through the TLS engine
// and a handler. A body longer than the buffer is read a TLS record (16 KiB) at a time
// instead; `make_idle` gives the room back, so idle connections stay small. Connections
// beyond `tls_buffered_connections` read 4 KiB at a time: ten thousand slow streams would
// otherwise hold 16 KiB each between their events.
void pool_impl::widen_reads(connection& c) {
    const std::size_t wide = c.buffer.size() + (c.busy_class ? wide_read_bytes : narrow_read_bytes);
    const auto length = c.parser->content_length(); // none when chunked
    if (c.parser->streaming() || !length)
        c.buffer.reserve(wide);
    else if (*length > c.buffer.capacity()) // the buffered bytes are the body's first ones
        c.buffer.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*length, wide)));
}

// An event stream is read piece by piece, each read within `stream_idle_timeout` (a stream
// that stalls between events is cut) and all of it within the request's deadline.
void pool_impl::read_stream(exchange_ptr x) {
    connection& c = *x->conn;
    // What the buffer holds is parsed here, as Beast's read_some would parse it, but without
    // the post through the stream's type-erased executor (a wrapper allocated each time) that
    // a read completing at once must take: a read often brings several events.
    if (!c.parser->is_done() && c.buffer.size() > 0) {
        error_code ec;
        parse_buffered(c, ec);
        if (ec)
            return fail_stream(std::move(x), ec);
    }
    if (c.parser->is_done())
        return on_body(std::move(x), {});
    const auto now = clock::now();
    c.expires_at(std::min(x->deadline, now + opts.stream_idle_timeout));
    if (wait_unbuffered(x, &pool_impl::on_stream_readable))
        return;
    read_stream_piece(std::move(x));
}

void pool_impl::on_stream_readable(exchange_ptr x, error_code ec) {
    if (ec)
        return fail_stream(std::move(x), ec);
    x->conn->buffer.reserve(narrow_read_bytes);
    read_stream_piece(std::move(x));
}

// One read of an event stream, into the room the buffer has.
void pool_impl::read_stream_piece(exchange_ptr x) {
    connection& c = *x->conn;
    auto on_piece = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                  std::size_t) mutable {
        if (ec)
            return self->fail_stream(std::move(x), ec);
        self->read_stream(std::move(x));
    };
    c.with_stream([&](auto& s) {
        http::async_read_some(s, c.buffer, *c.parser, with_op_memory(std::move(on_piece)));
    });
}

// Which limit cut a stream that timed out: the pause between events or the whole request.
const char* pool_impl::stream_step(const exchange& x, error_code ec) const {
    if (ec == beast::error::timeout && clock::now() < x.deadline)
        return "read (no event within pool.stream_idle_timeout_ms)";
    return "read";
}

void pool_impl::fail_stream(exchange_ptr x, error_code ec) {
    const char* step = stream_step(*x, ec);
    fail(std::move(x), ec, step);
}

// A 1xx response (100 Continue, 103 Early Hints) is not the answer (RFC 9110 section
// 15.2): the final response follows on the same stream. 101 switches protocols, which no
// request of ours asks for; and a server that sends 1xx without end is cut off.
void pool_impl::on_informational(exchange_ptr x) {
    if (x->resp.status == 101)
        return fail(std::move(x),
                    http::error::bad_status,
                    "read (101 Switching Protocols, which no request asked for)");
    if (++x->informational > max_informational)
        return fail(std::move(x), http::error::bad_status, "read (endless 1xx responses)");
    forget_answer(*x);
    new_parser(*x);
    read_head(std::move(x));
}

// Drops what was read of a response but its timings: its headers must not be taken for
// those of the answer that replaces it.
void pool_impl::forget_answer(exchange& x) {
    const auto sent = x.resp.sent;
    const auto first_byte = x.resp.first_byte;
    x.resp = http_response{};
    x.resp.sent = sent;
    x.resp.first_byte = first_byte;
}

void pool_impl::on_body(exchange_ptr x, error_code ec) {
    if (ec)
        return fail(std::move(x), ec, "read");
    connection_ptr conn = std::move(x->conn);
    // keep_alive() is false for `Connection: close`, HTTP/1.0 without keep-alive, and a
    // body that ended with the stream. Bytes past the response mean the stream is out of
    // step with our requests (we never pipeline): on a connection that carried an earlier
    // request, the answer just read may be a stray response and these bytes the real one.
    // Over TLS only application data counts: a session ticket or a close_notify right
    // behind the answer is not a byte nobody asked for (a close_notify ends the connection).
    const bool extra = conn->buffer.size() > 0 || (conn->tls && conn->tls->has_unread_data());
    const bool keep =
        conn->parser->keep_alive() && !extra && !(conn->tls && conn->tls->read_ended());
    conn->parser.reset();
    if (extra)
        ++stats.untrusted; // never reused, whoever the answer is credited to
    if (extra && conn->reused) {
        release_broken(std::move(conn));
        forget_answer(*x);
        return fail(std::move(x), errc::unexpected_bytes, "read (bytes after the answer)");
    }
    if (!keep) {
        release_broken(std::move(conn));
        return complete(std::move(x));
    }
    if (conn->reused && opts.reuse_quiet_period.count() > 0)
        return hold_for_quiet_period(std::move(conn), std::move(x));
    // The first answer on a connection is the answer to the only request written on it.
    conn->reused = true;
    make_idle(std::move(conn), false);
    complete(std::move(x));
}

// A reused connection that fails before any response byte was most likely closed by the
// server while idle (the keep-alive race): the request never reached the application, so
// it is replayed once on a fresh connection. A timeout is not that race, and a fresh
// connection failing so is an answer of the server: both are reported.
void pool_impl::fail_or_replay(exchange_ptr x, error_code ec, const char* step) {
    connection& c = *x->conn;
    const bool nothing_received =
        !c.parser->got_some() && c.buffer.size() == 0 && x->informational == 0;
    if (c.reused && nothing_received && !x->replayed && !closed &&
        ec != asio::error::operation_aborted && ec != beast::error::timeout) {
        x->replayed = true;
        ++stats.replayed;
        c.parser.reset();
        discard(std::move(x->conn));
        forget_answer(*x);
        open_connection(std::move(x));
        return;
    }
    fail(std::move(x), ec, step);
}

void pool_impl::fail(exchange_ptr x, error_code ec, const char* step) {
    // While the first contact lasts, a failure can only be its own (or one of those it held
    // back): whatever it was, the others now try their own connections, as they would have.
    first_contact = false;
    if (x->conn && x->conn->parser && x->conn->parser->over_budget())
        x->body_over_budget = true;
    if (x->conn) {
        x->conn->parser.reset();
        release_broken(std::move(x->conn));
    }
    if (closed)
        ec = asio::error::operation_aborted; // whatever the cut socket reported
    // A Content-Length over the limit is refused while reading the header, a chunked
    // body while reading it: either way it is the same failure for the caller.
    if (ec == http::error::body_limit || ec == errc::body_too_large) {
        step = x->body_over_budget ? "read (responses in flight reached "
                                     "pool.max_body_bytes_in_flight)"
                                   : "read (body over pool.max_body_size)";
        ec = errc::body_too_large;
    }
    x->resp.ec = ec;
    x->resp.failed_step = step;
    complete(std::move(x));
}

void pool_impl::complete(exchange_ptr x) {
    bodies.give(x->body_charge);
    x->body_charge = 0;
    const auto& handler = x->handler;
    dispatch_to_handler(ex, loop_ex, handler, [x = std::move(x)]() mutable {
        auto h = std::move(x->handler);
        std::move(h)(std::move(x->resp));
    });
}

// For completions started by a call of the user (async_exchange, close): never run the
// handler inside that call.
void pool_impl::complete_later(exchange_ptr x, const char* step) {
    x->resp.ec = asio::error::operation_aborted;
    x->resp.failed_step = step;
    asio::post(ex, [self = shared_from_this(), x = std::move(x)]() mutable {
        self->complete(std::move(x));
    });
}

} // namespace sluice::detail
