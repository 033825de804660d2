// The error model as one table: for every sluice errc and the transport's own codes, whether a
// failure is retried, whether it stops the run, and the kind written in records.
#include <sluice/admission/retry_policy.hpp>
#include <sluice/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace sluice;

namespace {

struct row {
    error_code ec;
    bool retryable;
    bool fatal;
    const char* kind;
};

} // namespace

TEST_CASE("every failure has one meaning for retrying and stopping") {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    const row table[] = {
        {errc::bad_input_line, false, false, "bad_input_line"},
        {errc::duplicate_custom_id, false, false, "duplicate_custom_id"},
        {errc::malformed_response, true, false, "malformed_response"},
        {errc::body_too_large, false, false, "body_too_large"},
        {errc::rate_limited, true, false, "rate_limited"},
        {errc::quota_exhausted, false, true, "quota_exhausted"},
        {errc::server_error, true, false, "server_error"},
        {errc::client_error, false, false, "client_error"},
        {errc::retry_budget_exhausted, false, false, "retry_budget_exhausted"},
        {errc::request_too_large, false, false, "request_too_large"},
        {errc::queue_full, false, false, "queue_full"},
        {errc::stopped, false, false, "stopped"},
        {errc::not_attempted, false, false, "not_attempted"},
        {errc::invalid_url, false, false, "invalid_url"},
        {errc::unauthorized, false, true, "unauthorized"},
        {errc::unexpected_bytes, true, false, "unexpected_bytes"},
        {errc::certificate_rejected, false, true, "certificate_rejected"},
        {errc::unexpected_content_type, false, false, "unexpected_content_type"},
        // A stream with an event past the size cap would be sent the same again; a stream
        // cut inside an event is a cut connection.
        {errc::event_too_large, false, false, "event_too_large"},
        {errc::event_stream_truncated, true, false, "event_stream_truncated"},
        // The request's own bound: no attempt may go past it.
        {errc::deadline_exceeded, false, false, "deadline_exceeded"},
        // A proxy's 4xx to CONNECT refuses every connection alike; its 5xx is one failure.
        {errc::proxy_refused, false, true, "proxy_refused"},
        {errc::proxy_error, true, false, "proxy_error"},
        // The transport's own: a fresh attempt may succeed, except when we cancelled it or the
        // body or the head was over the cap.
        {asio::error::connection_reset, true, false, "connection_reset"},
        {asio::error::connection_refused, true, false, "connection_refused"},
        {asio::error::eof, true, false, "connection_closed"},
        {boost::beast::error::timeout, true, false, "timeout"},
        {http::error::partial_message, true, false, "connection_closed"},
        {asio::ssl::error::stream_truncated, true, false, "connection_closed"},
        {http::error::body_limit, false, false, "body_too_large"},
        // A 1 MiB header would come again: not retried either.
        {http::error::header_limit, false, false, "bad_http_response"},
        {asio::error::operation_aborted, false, false, "cancelled"},
    };
    for (const row& r : table) {
        INFO(r.ec.message() << " (" << r.kind << ")");
        CHECK(is_retryable(r.ec) == r.retryable);
        CHECK(is_fatal(r.ec) == r.fatal);
        CHECK(std::string(error_kind(r.ec)) == r.kind);
    }
    CHECK_FALSE(is_retryable(error_code{}));
    CHECK_FALSE(is_fatal(error_code{}));
}

TEST_CASE("a malformed answer or a garbled HTTP response is retried once, not max_attempts times") {
    retry_policy policy({}, 1);
    attempt_outcome o;
    o.transport_error = errc::malformed_response;
    CHECK(policy.decide(o, 1).what == retry_decision::action::retry);
    const retry_decision second = policy.decide(o, 2);
    CHECK(second.what == retry_decision::action::give_up);
    CHECK(second.ec == errc::malformed_response);
    // So is a response that is not HTTP, or whose framing is broken.
    for (const auto e : {boost::beast::http::error::bad_chunk,
                         boost::beast::http::error::bad_status,
                         boost::beast::http::error::bad_version}) {
        o.transport_error = e;
        CHECK(policy.decide(o, 1).what == retry_decision::action::retry);
        CHECK(policy.decide(o, 2).what == retry_decision::action::give_up);
    }
    // A cut connection and a server error keep the whole allowance.
    o.transport_error = boost::beast::http::error::partial_message;
    CHECK(policy.decide(o, 4).what == retry_decision::action::retry);
    o.transport_error = errc::server_error;
    CHECK(policy.decide(o, 4).what == retry_decision::action::retry);
}

TEST_CASE("an answer of the wrong content type is not retried") {
    retry_policy policy({}, 1);
    attempt_outcome o;
    o.transport_error = errc::unexpected_content_type;
    o.status = 200;
    CHECK(policy.decide(o, 1).what == retry_decision::action::give_up);
}
