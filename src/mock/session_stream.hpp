#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace sluice::detail {

/// A read's or a write's completion handler with its type erased and no executor of its own:
/// Beast's stream then completes it through the stream's executor, the connection's strand,
/// where the session's coroutine runs. (Boost 1.81's `any_completion_handler` keeps the
/// handler's executor, which Beast's `basic_stream` cannot post to.)
class erased_handler {
public:
    template <class Handler>
    explicit erased_handler(Handler&& h)
        : impl_(std::make_unique<model<std::decay_t<Handler>>>(std::forward<Handler>(h))) {}

    void operator()(boost::beast::error_code ec, std::size_t n) {
        // Called where it lies, so its memory is freed after the call (Asio's own operations
        // free it before): the next read or write the call starts allocates anew.
        const std::unique_ptr<base> impl = std::move(impl_);
        impl->call(ec, n);
    }

private:
    struct base {
        virtual ~base() = default;
        virtual void call(boost::beast::error_code ec, std::size_t n) = 0;
    };
    template <class Handler>
    struct model final : base {
        explicit model(Handler&& h)
            : handler(std::move(h)) {}
        void call(boost::beast::error_code ec, std::size_t n) override {
            std::move(handler)(ec, n);
        }
        Handler handler;
    };
    std::unique_ptr<base> impl_;
};

/// A mock connection, plain or TLS, as one stream type. The mock's session coroutines and
/// Beast's reads and writes are compiled once, for this type, instead of once for each stream:
/// the TLS copy of them was two thirds of the mock's compile time under the sanitizers. Reads
/// and writes go through one type-erased call each (`erased_handler`, one allocation), which the
/// mock, a test and benchmark server, can afford.
class session_stream {
public:
    using executor_type = boost::asio::any_io_executor;

    explicit session_stream(boost::beast::tcp_stream& plain) noexcept
        : tcp_(plain) {}
    explicit session_stream(boost::beast::ssl_stream<boost::beast::tcp_stream>& tls) noexcept
        : tcp_(boost::beast::get_lowest_layer(tls))
        , tls_(&tls) {}

    executor_type get_executor() noexcept { return tcp_.get_executor(); }

    /// The TCP layer under the stream: its timeouts, its shutdown and its close.
    boost::beast::tcp_stream& tcp() noexcept { return tcp_; }

    /// Reads into the first non-empty buffer of the sequence (a read may read less).
    template <class MutableBufferSequence, class ReadHandler>
    auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
        boost::asio::mutable_buffer first;
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers);
             ++it) {
            first = *it;
            if (first.size() > 0)
                break;
        }
        return boost::asio::async_initiate<ReadHandler, void(error_code, std::size_t)>(
            [this](auto h, boost::asio::mutable_buffer b) {
                read_some(b, handler_type(std::move(h)));
            },
            handler,
            first);
    }

    /// Writes the first `gather::capacity` buffers of the sequence at most (a write may write
    /// less): Beast's serializer gives fewer.
    template <class ConstBufferSequence, class WriteHandler>
    auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
        gather g;
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers) && g.n < gather::capacity;
             ++it) {
            g.at[g.n++] = *it;
        }
        return boost::asio::async_initiate<WriteHandler, void(error_code, std::size_t)>(
            [this](auto h, const gather& g) { write_some(g, handler_type(std::move(h))); },
            handler,
            g);
    }

private:
    using error_code = boost::beast::error_code;
    using handler_type = erased_handler;

    // A const buffer sequence of a fixed capacity, copied into the operation that writes it.
    struct gather {
        using value_type = boost::asio::const_buffer;
        using const_iterator = const boost::asio::const_buffer*;
        static constexpr std::size_t capacity = 16;
        std::array<boost::asio::const_buffer, capacity> at;
        std::size_t n = 0;
        const boost::asio::const_buffer* begin() const noexcept { return at.data(); }
        const boost::asio::const_buffer* end() const noexcept { return at.data() + n; }
    };

    void read_some(boost::asio::mutable_buffer b, handler_type h);
    void write_some(const gather& g, handler_type h);

    boost::beast::tcp_stream& tcp_;
    boost::beast::ssl_stream<boost::beast::tcp_stream>* tls_ = nullptr;
};

} // namespace sluice::detail
