#pragma once

#include <sluice/transport/connection_pool.hpp>

#include "detail/recycled.hpp"
#include "transport/plain_stream.hpp"
#include "transport/response_parser.hpp"
#include "transport/tls_stream.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>

#include <openssl/ssl.h>

#include <sys/socket.h>

#include <cerrno>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

namespace sluice::detail {

struct exchange;

// The room every read of an answer has: the plaintext of one full TLS record. The pool reads
// into one buffer of this size for all its connections (pool_impl::scratch) and parses what it
// read before it returns to the loop, so no connection holds a read buffer while it waits.
inline constexpr std::size_t read_scratch_bytes = 16 * 1024;

// One keep-alive connection of the pool: a TLS stream or a plain one, the parser of the
// response in progress, and whether it has already served an exchange (which
// makes a failure before the first response byte a sign that the server closed it while it
// was idle, not that the request is bad).
//
// Shared ownership: whoever has an operation pending on it holds it (the exchange running on
// it, or the read armed while it is idle), so a connection closed from outside (idle sweep,
// close()) stays alive until that operation's handler has run.
struct connection {
    // Between exchanges: what the read armed on an idle connection is for. Any byte or EOF
    // while `quiet` or `idle` means the server sent what no request asked for, or closed.
    enum class phase {
        busy,    // an exchange owns it
        quiet,   // an answer on it waits out the quiet period (`held`)
        idle,    // in the pool's idle list, ready to lend
        lending, // being lent to `next`: the idle read is being cancelled
        closing, // discarded while its idle read was armed
    };

    connection(const boost::asio::any_io_executor& ex, boost::asio::ssl::context* tls_ctx)
        : quiet_timer(ex) {
        if (tls_ctx)
            tls.emplace(ex, *tls_ctx);
        else
            plain.emplace(ex);
    }
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    std::optional<tls_stream> tls;
    std::optional<plain_stream> plain;
    // Bytes read after the end of an answer: the connection is out of step with our requests.
    // Empty, with no memory, almost always.
    boost::beast::flat_buffer unparsed;
    std::optional<response_parser> parser; // in place: no allocation per exchange
    bool reused = false;
    bool open = true;        // not yet discarded
    bool read_armed = false; // an async_read_some into `probe` is pending
    bool connecting = false; // counted in the pool's connections being opened
    // One of the first `tls_buffered_connections` opened: it keeps OpenSSL's record buffers
    // between reads; the others give them back.
    bool busy_class = false;
    phase state = phase::busy;
    std::chrono::steady_clock::time_point idle_since;
    std::size_t slot = 0;         // index in the pool's list of open connections
    std::array<char, 64> probe{}; // what the idle read reads into: any byte is one too many
    boost::asio::steady_timer quiet_timer;
    std::unique_ptr<exchange> held; // phase::quiet: its answer, not yet delivered
    std::unique_ptr<exchange> next; // phase::lending: the exchange it goes to

    // What both kinds of stream share: the TCP connection and the exchange's deadline.
    stream_core& stream() { return tls ? static_cast<stream_core&>(*tls) : *plain; }
    boost::beast::tcp_stream& tcp() { return stream().next_layer(); }

    // The deadline of the HTTP exchange's reads and writes (after connecting, which has its
    // own, on tcp()).
    void expires_at(std::chrono::steady_clock::time_point t) { stream().expires_at(t); }
    void expires_never() { stream().expires_never(); }

    // Calls `fn` with the stream HTTP goes over (TLS or plain).
    template <class Fn>
    decltype(auto) with_stream(Fn&& fn) {
        if (tls)
            return std::forward<Fn>(fn)(*tls);
        return std::forward<Fn>(fn)(*plain);
    }

    // Bytes or an end of stream that arrived and are not read yet: in the socket, or
    // decrypted inside TLS. Checked when a connection is lent, since either can land after
    // the idle read was cancelled. A peek sees the FIN too, which `available()` does not: a
    // server that answered and closed at once is not sent another request.
    bool has_unread_bytes() {
        if (unparsed.size() > 0 || (tls && (tls->has_unread_data() || tls->read_ended())))
            return true;
        char byte;
        const ssize_t n = ::recv(tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }

    // Closes the socket at once, cancelling any operation in progress (it completes with
    // operation_aborted). No TLS close_notify is sent or awaited: the server learns of the
    // close from the TCP FIN, and waiting for its close_notify would hold a slot for nothing.
    // So the stream_truncated that a TLS shutdown reports when the peer closes
    // without close_notify (benign for HTTP, whose messages carry their own framing) never
    // reaches us. While reading a body delimited by the end of the stream, though, it stays
    // an error: there a cut connection cannot be told from the end of the body.
    void close() {
        namespace asio = boost::asio;
        error_code ignored;
        tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        tcp().socket().close(ignored);
        quiet_timer.cancel();
    }
};

using connection_ptr = std::shared_ptr<connection>;

// One request/response exchange: its operation state (one allocation per exchange), owning
// the connection while it runs on it. Moved from step to step as a unique_ptr.
struct exchange : recycled<exchange> {
    // Constructed with its handler: Asio 1.26's any_completion_handler move assignment wraps
    // the handler in itself without end, so it is never assigned.
    exchange(std::string_view b,
             body_observer* o,
             boost::asio::any_completion_handler<void(http_response&&)> h)
        : body(b)
        , observer(o)
        , handler(std::move(h)) {}

    std::string_view body;
    body_observer* observer; // takes an event-stream body; null: every body is collected
    // An async_request: its own request line and headers (empty: the pool's `head`), the
    // body's further pieces, and whether any 2xx body goes to the observer.
    std::string own_head;
    std::array<std::string_view, 2> more_body{};
    bool observe_any = false;
    boost::asio::any_completion_handler<void(http_response&&)> handler;
    http_response resp;
    connection_ptr conn;
    bool replayed = false;
    bool body_over_budget = false; // a body_too_large came from the pool-wide budget
    unsigned informational = 0;    // 1xx responses skipped so far
    std::size_t body_charge = 0;   // its share of the pool's body_budget
    // The end of request_timeout, set when the exchange gets its connection, but never past
    // `not_after` (what is left of the request's own deadline).
    std::chrono::steady_clock::time_point deadline;
    std::chrono::steady_clock::time_point not_after = std::chrono::steady_clock::time_point::max();
    // "Content-Length: N\r\n\r\n", written between the fixed head and the body.
    std::array<char, 48> length_line{};
    std::size_t length_line_size = 0;
};

using exchange_ptr = std::unique_ptr<exchange>;

inline connection::~connection() = default;

} // namespace sluice::detail
