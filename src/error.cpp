#include <sluice/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <string>

namespace sluice {
namespace {

const char* errc_name(errc e) noexcept {
    switch (e) {
    case errc::bad_input_line:
        return "bad_input_line";
    case errc::duplicate_custom_id:
        return "duplicate_custom_id";
    case errc::malformed_response:
        return "malformed_response";
    case errc::body_too_large:
        return "body_too_large";
    case errc::rate_limited:
        return "rate_limited";
    case errc::quota_exhausted:
        return "quota_exhausted";
    case errc::server_error:
        return "server_error";
    case errc::client_error:
        return "client_error";
    case errc::retry_budget_exhausted:
        return "retry_budget_exhausted";
    case errc::request_too_large:
        return "request_too_large";
    case errc::queue_full:
        return "queue_full";
    case errc::stopped:
        return "stopped";
    case errc::not_attempted:
        return "not_attempted";
    case errc::invalid_url:
        return "invalid_url";
    case errc::unauthorized:
        return "unauthorized";
    case errc::unexpected_bytes:
        return "unexpected_bytes";
    case errc::certificate_rejected:
        return "certificate_rejected";
    case errc::unexpected_content_type:
        return "unexpected_content_type";
    case errc::event_too_large:
        return "event_too_large";
    case errc::event_stream_truncated:
        return "event_stream_truncated";
    case errc::deadline_exceeded:
        return "deadline_exceeded";
    case errc::proxy_refused:
        return "proxy_refused";
    case errc::proxy_error:
        return "proxy_error";
    }
    return "unknown";
}

class sluice_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sluice"; }

    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::bad_input_line:
            return "input line is not a valid request";
        case errc::duplicate_custom_id:
            return "custom_id repeats an earlier line";
        case errc::malformed_response:
            return "response body is not a valid chat completion";
        case errc::body_too_large:
            return "response body exceeds the maximum size";
        case errc::rate_limited:
            return "rate limited by the server (429)";
        case errc::quota_exhausted:
            return "quota exhausted: retrying cannot help";
        case errc::server_error:
            return "server error";
        case errc::client_error:
            return "request rejected by the server";
        case errc::retry_budget_exhausted:
            return "retry budget for the endpoint is spent";
        case errc::request_too_large:
            return "request cost exceeds the token limit";
        case errc::queue_full:
            return "dispatcher queue is full";
        case errc::stopped:
            return "dispatcher stopped";
        case errc::not_attempted:
            return "not attempted: the job stopped before sending it";
        case errc::invalid_url:
            return "invalid base URL";
        case errc::unauthorized:
            return "the server refused the API key (401)";
        case errc::unexpected_bytes:
            return "the server sent bytes no request asked for on a reused connection";
        case errc::certificate_rejected:
            return "the server's TLS certificate was rejected";
        case errc::unexpected_content_type:
            return "the answer is not JSON (its Content-Type says so); not retried";
        case errc::event_too_large:
            return "a server-sent event exceeds the maximum size";
        case errc::event_stream_truncated:
            return "the event stream was cut in the middle of an event";
        case errc::deadline_exceeded:
            return "the request's deadline passed";
        case errc::proxy_refused:
            return "the proxy refused to open a tunnel to the server";
        case errc::proxy_error:
            return "the proxy could not open a tunnel to the server";
        }
        return "unknown sluice error";
    }
};

} // namespace

const boost::system::error_category& category() noexcept {
    static const sluice_category instance;
    return instance;
}

bool is_retryable(const error_code& ec) noexcept {
    if (!ec)
        return false;
    if (ec.category() == category()) {
        switch (static_cast<errc>(ec.value())) {
        case errc::rate_limited:
        case errc::server_error:
        case errc::malformed_response: // a truncated or garbled body is worth one more try
        case errc::unexpected_bytes:   // the answer could not be told apart: ask again
        // A stream cut mid-event is a cut connection, as a truncated body is.
        case errc::event_stream_truncated:
        // The proxy could not reach the server this time: a connection failure.
        case errc::proxy_error:
            return true;
        default:
            return false;
        }
    }
    // A body over the cap, or a head over Beast's 8 KiB: the same server would send the same
    // again, and each attempt may be paid for.
    if (ec == boost::beast::http::error::body_limit ||
        ec == boost::beast::http::error::header_limit)
        return false;
    // Everything else comes from the transport: resolve, connect, TLS, read and write
    // failures, timeouts, resets and truncated messages. A fresh attempt may succeed.
    if (ec == boost::asio::error::operation_aborted)
        return false;
    return true;
}

bool is_fatal(const error_code& ec) noexcept {
    return ec == errc::quota_exhausted || ec == errc::unauthorized ||
           ec == errc::certificate_rejected || ec == errc::proxy_refused;
}

const char* error_kind(const error_code& ec) noexcept {
    namespace asio = boost::asio;
    if (!ec)
        return "ok";
    if (ec.category() == category())
        return errc_name(static_cast<errc>(ec.value()));
    if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
        return "connection_reset";
    if (ec == asio::error::connection_refused)
        return "connection_refused";
    if (ec == asio::error::eof || ec == boost::beast::http::error::end_of_stream ||
        ec == boost::beast::http::error::partial_message ||
        ec == asio::ssl::error::stream_truncated)
        return "connection_closed";
    if (ec == boost::beast::error::timeout || ec == asio::error::timed_out)
        return "timeout";
    if (ec == boost::beast::http::error::body_limit)
        return "body_too_large";
    if (ec.category() == asio::error::get_ssl_category() ||
        ec.category() == asio::ssl::error::get_stream_category())
        return "tls_error";
    if (ec.category() == asio::error::get_netdb_category() ||
        ec.category() == asio::error::get_addrinfo_category())
        return "resolve_error";
    if (ec.category() ==
        boost::beast::http::make_error_code(boost::beast::http::error::bad_version).category())
        return "bad_http_response";
    if (ec == asio::error::operation_aborted)
        return "cancelled";
    return "transport_error";
}

} // namespace sluice
