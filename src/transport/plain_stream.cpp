#include "transport/plain_stream.hpp"

#include <boost/asio/error.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

namespace sluice::detail {

namespace asio = boost::asio;

template <class Call>
plain_stream::outcome plain_stream::transfer(want w, Call call) {
    for (;;) {
        const ssize_t n = call();
        if (n >= 0)
            return {want::nothing, {}, static_cast<std::size_t>(n)};
        const int e = errno;
        if (e == EAGAIN || e == EWOULDBLOCK)
            return {w, {}, 0};
        if (e != EINTR)
            return {want::nothing, socket_error(e), 0};
    }
}

// MSG_DONTWAIT: the socket stays in whatever mode Asio keeps it in, and no call here blocks.
plain_stream::outcome plain_stream::try_read(asio::mutable_buffer b) {
    if (b.size() == 0)
        return {}; // a read into no room completes at once, as a socket's does
    outcome o =
        transfer(want::read, [&] { return ::recv(socket_fd(), b.data(), b.size(), MSG_DONTWAIT); });
    if (o.wait == want::nothing && !o.ec && o.n == 0)
        o.ec = asio::error::eof;
    return o;
}

plain_stream::outcome plain_stream::try_write(const asio::const_buffer* pieces, std::size_t count) {
    iovec iov[16];
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) {
        iov[i].iov_base = const_cast<void*>(pieces[i].data());
        iov[i].iov_len = pieces[i].size();
        total += pieces[i].size();
    }
    if (total == 0)
        return {};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    return transfer(want::write,
                    [&] { return ::sendmsg(socket_fd(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT); });
}

} // namespace sluice::detail
