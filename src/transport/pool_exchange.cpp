#include "detail/complete.hpp"
#include "transport/detail/pool_impl.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

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
// Reads of one answer in a row before the loop runs the others (a 64 KiB share).
constexpr unsigned reads_per_turn = 4;

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
    std::array<asio::const_buffer, 5> buffers{
        asio::buffer(request_head),
        asio::buffer(x->length_line.data(), x->length_line_size),
        asio::buffer(x->body.data(), x->body.size()),
        asio::buffer(x->more_body[0].data(), x->more_body[0].size()),
        asio::buffer(x->more_body[1].data(), x->more_body[1].size())};
    connection& c = *x->conn;
    // One deadline for connecting, writing the request and reading the whole response.
    c.expires_at(x->deadline);
    new_parser(*x);
    // Taken before the write, not after: the server may read the request and start its
    // clock before a loaded client gets back from the write, and a latency must never come
    // out shorter than the server's own.
    x->resp.sent = clock::now();
    // Written at once: a request almost always goes out whole in one write, and the answer
    // is awaited straight after. asio::async_write would post its completion to the loop.
    const stream_core::outcome o = c.with_stream(
        [&](auto& s) { return stream_core::write_now(s, buffers.data(), buffers.size()); });
    if (o.wait == stream_core::want::nothing && !o.ec && o.n == asio::buffer_size(buffers))
        return on_write(std::move(x), {}, false);
    if (o.ec) {
        // Reported from the loop: this may be the caller's async_exchange.
        post_on_loop(
            ex,
            loop_ex,
            with_op_memory([self = shared_from_this(), x = std::move(x), ec = o.ec]() mutable {
                self->on_write(std::move(x), ec, true);
            }));
        return;
    }
    // The rest when the socket takes it: what the write left, or all of it again after a TLS
    // write that must be retried with the same bytes (o.n is 0 then).
    std::size_t done = o.n;
    for (asio::const_buffer& b : buffers) {
        const std::size_t skip = std::min(done, b.size());
        b += skip;
        done -= skip;
    }
    auto on_written = [self = shared_from_this(), x = std::move(x)](error_code ec,
                                                                    std::size_t) mutable {
        self->on_write(std::move(x), ec, true);
    };
    c.with_stream(
        [&](auto& s) { asio::async_write(s, buffers, with_op_memory(std::move(on_written))); });
}

void pool_impl::new_parser(exchange& x) {
    x.conn->parser.emplace(
        x.resp, bodies, x.body_charge, opts.max_body_size, x.observer, x.observe_any);
}

// `from_loop`: run by the loop, not inside the write's initiating call (which may be the
// caller's async_exchange, where no answer may complete).
void pool_impl::on_write(exchange_ptr x, error_code ec, bool from_loop) {
    if (ec)
        return fail_or_replay(std::move(x), ec, "write");
    connection& c = *x->conn;
    ack_at_once(c);
    // A plain socket written through the loop is tried at once: the answer is often there by
    // now. A TLS stream waits for the socket first: OpenSSL would take its record buffer for
    // a try that finds nothing.
    if (c.plain && from_loop)
        return read_answer(std::move(x));
    await_answer(std::move(x), stream_core::want::read);
}

// Waits until the connection has something to read, under the exchange's deadline, or under
// `stream_idle_timeout` too once an event stream has begun (a stream that stalls between
// events is cut). With `want::write`, until it can be written instead: a TLS read that must
// write first (OpenSSL's answer to the peer's key update, say). Then the answer is read on.
void pool_impl::await_answer(exchange_ptr x, stream_core::want way) {
    connection& c = *x->conn;
    if (way == stream_core::want::read && c.parser->streaming())
        c.expires_at(std::min(x->deadline, clock::now() + opts.stream_idle_timeout));
    auto on_ready =
        with_op_memory([self = shared_from_this(), x = std::move(x)](error_code ec) mutable {
            if (ec)
                return self->read_failed(std::move(x), ec);
            self->read_answer(std::move(x));
        });
    c.with_stream([&](auto& s) {
        if (way == stream_core::want::write)
            stream_core::async_wait_writable(s, std::move(on_ready));
        else
            stream_core::async_wait_readable(s, std::move(on_ready));
    });
}

// Reads what the connection has into the pool's scratch buffer and parses it before anything
// else runs, read after read, until the answer is whole or the stream has nothing more for
// now. Beast's composed reads did this through a read buffer of each connection's own (4 to
// 16 KiB held while it waited, ten thousand connections' worth) and a trip through the
// stream's type-erased executor at each step.
void pool_impl::read_answer(exchange_ptr x) {
    connection& c = *x->conn;
    for (unsigned reads = 0;; ++reads) {
        // A long body that keeps coming is read a few buffers at a time, then the others'
        // turn: Beast's reads went through the loop after each one.
        if (reads == reads_per_turn) {
            post_on_loop(ex,
                         loop_ex,
                         with_op_memory([self = shared_from_this(), x = std::move(x)]() mutable {
                             self->read_answer(std::move(x));
                         }));
            return;
        }
        const stream_core::outcome o = c.with_stream([&](auto& s) {
            return stream_core::read_now(s, asio::buffer(scratch.get(), read_scratch_bytes));
        });
        if (o.wait != stream_core::want::nothing)
            return await_answer(std::move(x), o.wait);
        if (o.ec)
            return read_ended(std::move(x), o.ec);
        if (x->resp.first_byte == clock::time_point{})
            x->resp.first_byte = clock::now();
        error_code ec;
        const char* step = "read";
        switch (parse_read(*x, o.n, ec, step)) {
        case parsed::done:
            return on_body(std::move(x), {});
        case parsed::failed:
            return step == nullptr ? read_failed(std::move(x), ec) : fail(std::move(x), ec, step);
        case parsed::more:
            break;
        }
        // A TLS read that left nothing inside OpenSSL and took less than the socket could give
        // waits for the socket: another try would be a recv that finds nothing, and OpenSSL's
        // record buffer taken for it. A plain socket is tried again (as Beast's reads did):
        // on a body that keeps coming, the bytes are often there, and the reactor's wait
        // costs more than a recv.
        if (c.tls && o.n < read_scratch_bytes && !c.tls->input_ready())
            return await_answer(std::move(x), stream_core::want::read);
    }
}

// Parses the `n` bytes a read left in the scratch buffer. The parser keeps what it needs of a
// head or a chunk's size line that the read cut, so nothing is left over but bytes after the
// answer, which are kept for on_body to find. On failure `step` is what to report, or null for
// a failure of the read as read_failed reports it.
pool_impl::parsed
pool_impl::parse_read(exchange& x, std::size_t n, error_code& ec, const char*& step) {
    connection& c = *x.conn;
    const char* data = scratch.get();
    std::size_t used = 0;
    for (;;) {
        response_parser& p = *c.parser;
        used += p.put(asio::const_buffer(data + used, n - used), ec);
        if (ec) {
            step = nullptr;
            return parsed::failed;
        }
        if (!p.is_done())
            return parsed::more; // all of it used
        if (x.resp.status >= 200 || x.resp.status < 100)
            break;
        // A 1xx response is not the answer: the rest of the bytes start the next response.
        if (const char* refused = next_after_informational(x)) {
            ec = http::error::bad_status;
            step = refused;
            return parsed::failed;
        }
        if (used == n)
            return parsed::more;
    }
    if (used < n)
        c.unparsed.commit(
            asio::buffer_copy(c.unparsed.prepare(n - used), asio::buffer(data + used, n - used)));
    return parsed::done;
}

// The end of the stream, or a read's error. The end of the stream ends a body that runs to it;
// anywhere else it cuts the answer (Beast's reads report the same errors).
void pool_impl::read_ended(exchange_ptr x, error_code ec) {
    response_parser& p = *x->conn->parser;
    if (ec == asio::error::eof) {
        if (!p.got_some() && x->conn->unparsed.size() == 0) {
            ec = http::error::end_of_stream;
        } else {
            ec = {};
            p.put_eof(ec);
            if (!ec)
                return on_body(std::move(x), {});
        }
    }
    read_failed(std::move(x), ec);
}

void pool_impl::read_failed(exchange_ptr x, error_code ec) {
    if (x->conn->parser->streaming())
        return fail_stream(std::move(x), ec);
    fail_or_replay(std::move(x), ec, "read");
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
// request of ours asks for; and a server that sends 1xx without end is cut off. Returns the
// step to fail with, or null when a new parser awaits the next response.
const char* pool_impl::next_after_informational(exchange& x) {
    if (x.resp.status == 101)
        return "read (101 Switching Protocols, which no request asked for)";
    if (++x.informational > max_informational)
        return "read (endless 1xx responses)";
    forget_answer(x);
    new_parser(x);
    return nullptr;
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
    const bool extra = conn->unparsed.size() > 0 || (conn->tls && conn->tls->has_unread_data());
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
        !c.parser->got_some() && c.unparsed.size() == 0 && x->informational == 0;
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
