#include "transport/tls_stream.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/system/system_error.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>

namespace sluice::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

// One TLS record's plaintext at most per SSL_write: the pieces of a request are gathered into
// it, so that a request head, its length line and its body go out as one record and one send.
constexpr std::size_t max_record = 16 * 1024;

} // namespace

// The socket BIO: OpenSSL's transport, on the stream's socket.
struct socket_bio {
    static tls_stream& stream(BIO* bio) { return *static_cast<tls_stream*>(::BIO_get_data(bio)); }
    static int fd(BIO* bio) { return stream(bio).socket_fd(); }

    static int write(BIO* bio, const char* data, int size) {
        ::BIO_clear_retry_flags(bio);
        const ssize_t n = ::send(fd(bio), data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
        return done(bio, n, false);
    }

    static int read(BIO* bio, char* data, int size) {
        ::BIO_clear_retry_flags(bio);
        const ssize_t n = ::recv(fd(bio), data, static_cast<std::size_t>(size), 0);
        // A recv that filled what OpenSSL asked for may have left more in the socket, whose
        // readiness the reactor will not report again (it waits for new bytes).
        stream(bio).socket_full_ = n == size;
        return done(bio, n, true);
    }

    static int done(BIO* bio, ssize_t n, bool reading) {
        const int e = n < 0 ? errno : 0;
        stream(bio).last_errno_ = e;
        if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) {
            if (reading)
                ::BIO_set_retry_read(bio);
            else
                ::BIO_set_retry_write(bio);
        }
        return static_cast<int>(n);
    }
};

namespace {

long bio_ctrl(BIO*, int cmd, long, void*) {
    // Flushing is a no-op (every write goes straight to the socket); OpenSSL asks nothing
    // else of a transport BIO that matters to it.
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* bio) {
    ::BIO_set_init(bio, 1);
    return 1;
}

// The method table of the socket BIO: made once, immutable, shared by every stream (OpenSSL
// wants a BIO_METHOD to outlive the BIOs made from it).
const BIO_METHOD* socket_method() {
    static BIO_METHOD* const method = [] {
        BIO_METHOD* m = ::BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice socket");
        if (!m || !::BIO_meth_set_write(m, socket_bio::write) ||
            !::BIO_meth_set_read(m, socket_bio::read) || !::BIO_meth_set_ctrl(m, bio_ctrl) ||
            !::BIO_meth_set_create(m, bio_create))
            throw std::bad_alloc();
        return m;
    }();
    return method;
}

} // namespace

tls_stream::tls_stream(const executor_type& ex, asio::ssl::context& ctx)
    : stream_core(ex)
    , ssl_(::SSL_new(ctx.native_handle())) {
    if (!ssl_)
        throw boost::system::system_error(
            error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()),
            "SSL_new");
    // Records are gathered into a buffer on the stack, so a retried write passes the same
    // bytes from another address. OpenSSL's record buffers are freed whenever a read leaves
    // nothing pending (the pool keeps them for its busiest connections); reading ahead takes
    // whatever the socket holds in one recv instead of a record header and its body apart.
    ::SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    ::SSL_set_read_ahead(ssl_, 1);
    ::SSL_set_connect_state(ssl_);
}

tls_stream::~tls_stream() {
    ::SSL_free(ssl_);
}

void tls_stream::attach(error_code& ec) {
    ec = {};
    tcp_.socket().non_blocking(true, ec);
    if (ec)
        return;
    BIO* bio = ::BIO_new(socket_method());
    if (!bio) {
        ec = error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
        ::ERR_clear_error();
        return;
    }
    ::BIO_set_data(bio, this);
    ::SSL_set_bio(ssl_, bio, bio); // one reference, for both directions
}

// The error queue is emptied after every failure, so no call needs ERR_clear_error first.
tls_stream::outcome tls_stream::failure(int ret) {
    const int err = ::SSL_get_error(ssl_, ret);
    switch (err) {
    case SSL_ERROR_WANT_READ:
        return {want::read, {}, 0};
    case SSL_ERROR_WANT_WRITE:
        return {want::write, {}, 0};
    case SSL_ERROR_ZERO_RETURN: // the peer's close_notify: a clean end of stream
        ::ERR_clear_error();
        return {want::nothing, asio::error::eof, 0};
    case SSL_ERROR_SYSCALL: {
        const int e = last_errno_;
        ::ERR_clear_error();
        if (e == 0)
            return {want::nothing, asio::ssl::error::stream_truncated, 0};
        return {want::nothing, error_code(e, boost::system::system_category()), 0};
    }
    default: {
        const unsigned long code = ::ERR_get_error();
        ::ERR_clear_error();
        // An end of stream without close_notify, as Asio's stream reports it.
        if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
            ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return {want::nothing, asio::ssl::error::stream_truncated, 0};
        if (code == 0)
            return {want::nothing, asio::ssl::error::stream_truncated, 0};
        return {
            want::nothing, error_code(static_cast<int>(code), asio::error::get_ssl_category()), 0};
    }
    }
}

tls_stream::outcome tls_stream::try_handshake() {
    const int ret = ::SSL_do_handshake(ssl_);
    if (ret == 1)
        return {};
    return failure(ret);
}

// Fills as much of `b` as the bytes already received allow: one socket read may bring several
// records, and each completion costs a trip through the loop.
tls_stream::outcome tls_stream::try_read(asio::mutable_buffer b) {
    if (b.size() == 0)
        return {};
    auto* out = static_cast<char*>(b.data());
    std::size_t total = 0;
    for (;;) {
        std::size_t n = 0;
        const int ret = ::SSL_read_ex(ssl_, out + total, b.size() - total, &n);
        if (ret != 1) {
            if (total > 0) {
                // What was read is delivered; the error (or the wait) comes at the next read.
                const int err = ::SSL_get_error(ssl_, ret);
                if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
                    pending_error_ = failure(ret).ec;
                break;
            }
            if (pending_error_) {
                const error_code ec = std::exchange(pending_error_, {});
                return {want::nothing, ec, 0};
            }
            return failure(ret);
        }
        total += n;
        if (total == b.size() || !has_pending())
            break;
    }
    return {want::nothing, {}, total};
}

bool tls_stream::has_unread_data() {
    if (::SSL_pending(ssl_) > 0)
        return true;
    if (!has_pending() || read_ended())
        return false;
    char byte;
    std::size_t n = 0;
    const int ret = ::SSL_peek_ex(ssl_, &byte, 1, &n);
    if (ret == 1)
        return n > 0;
    const outcome o = failure(ret); // empties the error queue
    if (o.wait == want::nothing) {
        if (o.ec != asio::error::eof)
            pending_error_ = o.ec; // what the next read reports
        return false;
    }
    return has_pending(); // part of a record: more of an answer nobody asked for
}

tls_stream::outcome tls_stream::try_write(const asio::const_buffer* pieces, std::size_t count) {
    const void* data = nullptr;
    std::size_t size = 0;
    char gathered[max_record];
    std::size_t nonempty = 0;
    for (std::size_t i = 0; i < count; ++i)
        if (pieces[i].size() > 0) {
            ++nonempty;
            if (nonempty == 1) {
                data = pieces[i].data();
                size = pieces[i].size();
            }
        }
    if (nonempty == 0)
        return {};
    if (nonempty > 1 && size < max_record) {
        size = 0;
        for (std::size_t i = 0; i < count && size < max_record; ++i) {
            const std::size_t take = std::min(pieces[i].size(), max_record - size);
            if (take == 0)
                continue; // an empty piece may have no address, which memcpy may not be given
            std::memcpy(gathered + size, pieces[i].data(), take);
            size += take;
        }
        data = gathered;
    }
    std::size_t n = 0;
    const int ret = ::SSL_write_ex(ssl_, data, std::min(size, max_record), &n);
    if (ret == 1)
        return {want::nothing, {}, n};
    return failure(ret);
}

void tls_stream::before_read_wait() {
    if ((::SSL_get_mode(ssl_) & SSL_MODE_RELEASE_BUFFERS) != 0)
        ::SSL_free_buffers(ssl_); // refuses (and changes nothing) while bytes are pending
}

} // namespace sluice::detail
