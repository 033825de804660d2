#include "mock/session_stream.hpp"

namespace sluice::detail {

void session_stream::read_some(boost::asio::mutable_buffer b, handler_type h) {
    if (tls_)
        tls_->async_read_some(b, std::move(h));
    else
        tcp_.async_read_some(b, std::move(h));
}

void session_stream::write_some(const gather& g, handler_type h) {
    if (tls_)
        tls_->async_write_some(g, std::move(h));
    else
        tcp_.async_write_some(g, std::move(h));
}

} // namespace sluice::detail
