#include "batch_api/api_call.hpp"

#include <sluice/admission/limit_headers.hpp>
#include <sluice/transport/proxy.hpp>
#include <sluice/transport/tls_context.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <simdjson.h>

#include <algorithm>
#include <stdexcept>

// GCC 12 takes the sized delete of the coroutine frame below (Asio's awaitable_frame_base) for a
// mismatch with the frame's allocation: a false positive of its inliner, not of this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace sluice::detail {

namespace asio = boost::asio;

namespace {

dispatcher_options validated(dispatcher_options o) {
    o.validate();
    return o;
}

endpoint endpoint_of(const dispatcher_options& o) {
    error_code ec;
    endpoint ep = endpoint::parse(o.base_url, ec);
    if (ec)
        throw std::invalid_argument("base_url: not an http:// or https:// URL: " + o.base_url);
    if (!o.api_version.empty())
        ep.set_query_param("api-version", o.api_version);
    if (o.effective_style() == api_style::azure) {
        // The deployment's URL names one model; files and batches belong to the resource.
        const std::size_t d = ep.path_prefix.find("/deployments/");
        if (d != std::string::npos)
            ep.path_prefix.resize(d);
    }
    return ep;
}

request_headers headers_of(const dispatcher_options& o, const endpoint& ep) {
    request_headers h;
    h.target = ep.target("/batches");
    if (o.effective_style() == api_style::azure)
        h.api_key = o.api_key;
    else if (!o.api_key.empty())
        h.authorization = "Bearer " + o.api_key;
    h.organization = o.organization;
    h.project = o.project;
    h.user_agent = "sluice/0.1";
    h.extra = o.headers;
    return h;
}

std::vector<std::string> secrets_of(const dispatcher_options& o) {
    std::vector<std::string> s{o.api_key};
    for (const auto& header : o.headers)
        s.push_back(header.second);
    error_code ec;
    s.push_back(proxy_endpoint::parse(o.proxy.url, ec).password);
    return s;
}

proxy_endpoint proxy_of(const dispatcher_options& o, const endpoint& ep) {
    if (o.proxy.url.empty() || no_proxy_matches(o.proxy.no_proxy, ep.host, ep.port))
        return {};
    error_code ec;
    return proxy_endpoint::parse(o.proxy.url, ec); // validate() checked it
}

// The provider's error.code (or type) and message from an error body, when it has them.
void read_error(std::string_view body, std::string& code, std::string& message) {
    simdjson::dom::parser p;
    simdjson::dom::object error;
    if (p.parse(simdjson::padded_string(body))["error"].get_object().get(error))
        return;
    std::string_view v;
    if (!error["code"].get_string().get(v) || !error["type"].get_string().get(v))
        code.assign(v.data(), v.size());
    if (!error["message"].get_string().get(v))
        message.assign(v.data(), v.size());
}

} // namespace

api_caller::api_caller(asio::any_io_executor e, dispatcher_options o)
    : ex(std::move(e))
    , opts(validated(std::move(o)))
    , ep(endpoint_of(opts))
    , tls(ep.tls ? std::optional<asio::ssl::context>(make_client_tls_context(opts.tls))
                 : std::nullopt)
    , pool(ex, ep, headers_of(opts, ep), opts.pool, tls ? &*tls : nullptr, proxy_of(opts, ep))
    , retries(opts.retry)
    , secrets(secrets_of(opts)) {}

std::string api_caller::target(std::string_view path, std::string_view query) const {
    std::string t = ep.path_prefix;
    t += path;
    if (!query.empty() || !ep.query.empty())
        t += '?';
    t += query;
    if (!query.empty() && !ep.query.empty())
        t += '&';
    t += ep.query;
    return t;
}

asio::awaitable<api_answer> api_caller::call(const request_spec& spec,
                                             body_observer* observer,
                                             std::function<void()> before_attempt) {
    api_answer a;
    asio::steady_timer timer(ex);
    for (unsigned attempts = 1;; ++attempts) {
        if (before_attempt)
            before_attempt();
        a.resp = co_await asio::async_initiate<decltype(asio::use_awaitable), void(http_response)>(
            [&](auto h) { pool.async_request(spec, observer, std::move(h)); }, asio::use_awaitable);
        std::string code, message;
        const bool ok = !a.resp.ec && a.resp.status >= 200 && a.resp.status < 300;
        if (!a.resp.ec && !ok)
            read_error(a.resp.body, code, message);
        attempt_outcome outcome;
        outcome.transport_error = a.resp.ec;
        outcome.status = a.resp.ec ? 0 : a.resp.status;
        outcome.provider_code = code;
        outcome.provider_message = message;
        outcome.retry_after = parse_retry_after(a.resp.meta(), std::chrono::system_clock::now());
        if (a.resp.should_retry == std::string_view("true"))
            outcome.should_retry = true;
        else if (a.resp.should_retry == std::string_view("false"))
            outcome.should_retry = false;
        const retry_decision d = retries.decide(outcome, attempts);
        if (d.what == retry_decision::action::done) {
            a.ec = {};
            a.message.clear();
            co_return a;
        }
        a.ec = d.ec;
        a.message = !message.empty() ? message
                    : a.resp.ec      ? std::string(a.resp.failed_step) + ": " + a.resp.ec.message()
                                     : "HTTP " + std::to_string(a.resp.status);
        secrets.scrub(a.message);
        secrets.scrub(a.resp.body);
        if (d.what == retry_decision::action::give_up || closed ||
            a.resp.ec == asio::error::operation_aborted)
            co_return a;
        timer.expires_after(d.delay);
        waiting.push_back(&timer);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        std::erase(waiting, &timer);
        if (ec || closed) {
            a.ec = asio::error::operation_aborted;
            co_return a;
        }
    }
}

void api_caller::close() {
    closed = true;
    pool.close();
    for (auto* t : waiting)
        t->cancel();
}

} // namespace sluice::detail
