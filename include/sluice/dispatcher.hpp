#pragma once

#include <sluice/admission/circuit_breaker.hpp>
#include <sluice/admission/rate_limiter.hpp>
#include <sluice/admission/retry_policy.hpp>
#include <sluice/engine_clock.hpp>
#include <sluice/error.hpp>
#include <sluice/logger.hpp>
#include <sluice/metrics.hpp>
#include <sluice/parse/completion_parser.hpp>
#include <sluice/redis/shared_budget.hpp>
#include <sluice/request.hpp>
#include <sluice/result.hpp>
#include <sluice/source/token_estimate.hpp>
#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/tls_context.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// What happens when `async_complete` is called while `queue_limit` requests are in flight.
enum class overflow_policy {
    wait, ///< the submission waits until a request finishes (back-pressure on the caller)
    fail, ///< the submission completes at once with errc::queue_full
};

/// How an endpoint wants requests addressed and authenticated.
enum class api_style {
    /// `azure` when the base URL's path holds `/openai/deployments/`, else `openai`.
    automatic,
    /// OpenAI and the compatible servers: `Authorization: Bearer KEY`.
    openai,
    /// Azure OpenAI: the key in an `api-key` header, and an `api-version` query parameter on
    /// every request (from `api_version`, or the base URL's query); the deployment is in the
    /// base URL's path (`https://X.openai.azure.com/openai/deployments/NAME`).
    azure,
};

/// One more endpoint beside the dispatcher's default one (`dispatcher_options`' own
/// `base_url`, `api_key`, ...): another key of the same provider, another region, another
/// provider serving the same models. It has its own connection pool (with the options'
/// `pool`, `tls` and `proxy`), its own rate-limit buckets that learn from its own
/// `x-ratelimit-*` headers, its own retry budget and its own circuit breaker. Its key and
/// header values are secrets as the default endpoint's are.
struct endpoint_options {
    /// Its name in stats, the summary and messages: unique among the endpoints, not empty.
    std::string name;
    /// As `dispatcher_options::base_url`, `api_key`, `style`, `api_version`, `organization`,
    /// `project` and `headers`, for this endpoint.
    std::string base_url;
    std::string api_key;
    api_style style = api_style::automatic;
    std::string api_version;
    std::string organization;
    std::string project;
    std::vector<std::pair<std::string, std::string>> headers;
    /// Its limits (its own RPM/TPM buckets).
    limit_options limits;
    /// The models it serves (a request's `model`); empty: every model.
    std::vector<std::string> models;
    /// Its share of the requests when several endpoints can admit one at once; > 0.
    double weight = 1;
};

/// Everything the engine needs: endpoint and credentials, and one options struct per stage.
/// `configs/default.toml` mirrors this struct key for key.
struct dispatcher_options {
    /// Base URL, as the SDKs' OPENAI_BASE_URL; http:// for local servers.
    std::string base_url = "https://api.openai.com/v1";
    /// Sent as `Authorization: Bearer ...` (as `api-key: ...` for Azure, see `style`); empty
    /// sends neither. Never logged.
    std::string api_key;
    /// How requests are addressed and authenticated; `automatic` tells Azure by its URL.
    api_style style = api_style::automatic;
    /// Azure OpenAI's `api-version` (e.g. "2024-10-21"), set as a query parameter on every
    /// request, replacing one in `base_url`; empty keeps the base URL's. With the azure style
    /// one of the two is required (`validate()` refuses neither: Azure answers a request
    /// without it 404 "Resource not found"). Letters, digits, '-', '.' and '_' only. Sent with
    /// the openai style too when set (some gateways want it).
    std::string api_version;
    /// Optional OpenAI-Organization and OpenAI-Project headers.
    std::string organization;
    std::string project;
    /// More headers sent with every request, after sluice's own, as `{name, value}` in this
    /// order: a gateway's tenant or routing header, a custom authentication scheme. Refused by
    /// `validate()`: a name that is not an HTTP token or that appears twice (any case), a
    /// value holding a control character, a framing header the pool writes itself
    /// (`is_framing_header`: Host, Content-Length, Content-Type, Connection, ...), and a
    /// header that would replace one sluice sends from another option: `Authorization` while
    /// `api_key` is set (`api-key` with the azure style), `OpenAI-Organization` / `OpenAI-Project`
    /// while `organization` / `project` is. Without a key, an `Authorization` here is the request's
    /// authentication. A `User-Agent` here replaces sluice's. Values are treated as secrets: never
    /// logged nor put in an error message, and a value of 8 characters or more that a server echoes
    /// back is replaced by `[REDACTED]` in results, as the key is.
    std::vector<std::pair<std::string, std::string>> headers;

    /// An HTTP proxy the connections tunnel through (CONNECT), and the hosts that bypass it;
    /// by default none, and the environment is not read (`proxy_from_environment` reads it
    /// as curl does). The proxy's password is a secret as the key is.
    proxy_options proxy;

    pool_options pool;
    tls_options tls;
    /// Limits of the endpoint scope: every request without a scope of its own.
    limit_options limits;
    /// Limits per model, for providers that limit each model separately: a request whose
    /// `model` is a key here is admitted by that model's own buckets.
    std::map<std::string, limit_options> model_limits;
    /// Give every model not in `model_limits` its own buckets with `limits` (providers that
    /// limit per model), instead of sharing the endpoint's.
    bool per_model_limits = false;
    retry_options retry;
    /// Share the account's limits with other processes through Redis (off by default): the
    /// limits above are then the account's, for all members together. See
    /// docs/scale-out.md. Leases are timed on the steady clock: `clock` must be left null.
    shared_budget_options shared_budget;
    estimate_options estimate;
    /// The default endpoint's name in stats and messages, its models (empty: every model) and
    /// its weight, used when `endpoints` adds more (see `endpoint_options`).
    std::string endpoint_name = "default";
    std::vector<std::string> models;
    double weight = 1;
    /// More endpoints to send to beside the default one (the fields above). Empty (the
    /// default): one endpoint, as always. With more, each request goes to an endpoint that
    /// serves its model and can admit it soonest, weights breaking ties, in order within a
    /// model; an endpoint failing at the connection level or with 5xx in a row is taken out
    /// by its circuit breaker (`breaker`), and one whose quota is exhausted (429
    /// insufficient_quota) or whose key is refused (401) is retired for the run while another
    /// endpoint serves the model. `model_limits` and `per_model_limits` belong to the default
    /// endpoint only. See docs/endpoints.md, "Several endpoints and keys".
    std::vector<endpoint_options> endpoints;
    /// The endpoints' circuit breakers (used only with several endpoints).
    breaker_options breaker;

    /// What a result's `completion` holds: everything (`all`), or only usage and the error
    /// object (`usage`) for a caller that reads the body itself; see completion_fields.
    completion_fields fields = completion_fields::all;
    /// A streamed answer's `result::body`: the assembled `chat.completion` JSON (true, the
    /// default), or left empty (false) for a caller that reads only `completion`, as the load
    /// generator does: the answer is then not written out, one allocation and a copy of its
    /// text fewer per streamed request. `completion` is the same either way.
    bool streamed_body = true;

    /// Most requests accepted and not yet delivered (queued, waiting or in flight).
    std::size_t queue_limit = 100'000;
    overflow_policy on_full = overflow_policy::wait;

    /// The whole life of one request, from `async_complete` to its result: waiting for
    /// admission, every attempt, backoff and the server's retry hints. A request whose next
    /// attempt or wait would end past it fails at once with errc::deadline_exceeded (nothing
    /// is waited for in vain), and an attempt on the wire is cut when it is reached. Measured
    /// on `clock`; an attempt's I/O is cut on the steady clock at the time left when it
    /// starts. 0 (the default): no deadline. `request::deadline` overrides it per request.
    std::chrono::milliseconds deadline{0};

    /// Where the engine's messages go (limits learned from the server, the fatal stop of a
    /// run); by default nowhere.
    logger log;

    /// The clock of admission, retry delays and 429 holds; null (the default) is the steady
    /// clock. A `manual_clock` makes a test of the engine's timing exact. Connection and
    /// request timeouts always run on the steady clock.
    std::shared_ptr<engine_clock> clock;

    /// `style`, with `automatic` resolved from `base_url`.
    api_style effective_style() const;

    /// The options as endpoint `i` sees them: 0 is the default endpoint (these options, with
    /// no `endpoints`); `i` > 0 is `endpoints[i - 1]`'s base URL, key, style, api-version,
    /// organization, project, headers, limits, name, models and weight over the shared
    /// options (no `model_limits`, no `per_model_limits`).
    dispatcher_options endpoint_view(std::size_t i) const;

    /// Throws std::invalid_argument naming the field when a value is out of range.
    void validate() const;
};

/// The engine: each endpoint's connection pool, the admission stage (rate limiter and retry
/// scheduler) and the result path. Requests submitted with `async_complete` are admitted in
/// order when the RPM/TPM buckets can pay for them, sent over pooled keep-alive connections,
/// retried on 429/5xx/connection failures with backoff, parsed by the simdjson fast path, and
/// delivered exactly once as a `result`.
///
/// Thread safety: `async_complete`, `async_drain`, `stop` and `stats` may be called from any
/// thread: they post to the executor given at construction, on which all internal work runs.
/// That executor must not run the dispatcher's handlers concurrently: give it a
/// single-threaded io_context's executor, or a strand (`asio::make_strand(ioc)`) when the
/// io_context runs on several threads. A strand costs about 10% of throughput, so the `sluice`
/// tool runs one single-threaded loop per dispatcher instead.
///
/// Object lifetimes: the dispatcher must outlive every pending operation; destroy it only
/// after `async_complete` handlers have run (or after `stop()` and the executor has drained).
class dispatcher {
public:
    /// Throws std::invalid_argument on invalid options, boost::system::system_error when the
    /// TLS context cannot be set up.
    dispatcher(boost::asio::any_io_executor ex, dispatcher_options opts);
    ~dispatcher();
    dispatcher(const dispatcher&) = delete;
    dispatcher& operator=(const dispatcher&) = delete;

    /// Submits a request and completes with its result.
    ///
    /// Handler signature: `void(error_code ec, result r)`; `ec == r.ec`. Works with callbacks,
    /// `asio::use_future` and `asio::use_awaitable`. The handler runs on its associated
    /// executor (the dispatcher's executor when it has none). When `queue_limit` requests are
    /// pending, the submission waits or fails with errc::queue_full per `on_full`.
    /// Cancellation: not supported per request; `stop()` ends all.
    template <class CompletionToken>
    auto async_complete(request req, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, result)>(
            [this](auto handler, request&& r) {
                async_complete_erased(std::move(r), std::move(handler));
            },
            token,
            std::move(req));
    }

    /// Submits a request and completes with its result, failures included: handler signature
    /// `void(result r)`, so that `asio::use_future` and `asio::use_awaitable` hand back the
    /// provider's error object, the status and the message of a failed request instead of an
    /// exception that carries only the code. Otherwise as `async_complete`.
    template <class CompletionToken>
    auto async_submit(request req, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(result)>(
            [this](auto handler, request&& r) {
                auto hex = boost::asio::get_associated_executor(handler, get_executor());
                async_complete_erased(
                    std::move(r),
                    boost::asio::bind_executor(
                        hex, [h = std::move(handler)](error_code, result&& res) mutable {
                            std::move(h)(std::move(res));
                        }));
            },
            token,
            std::move(req));
    }

    /// Completes when every request submitted so far has been delivered.
    /// Handler signature: `void(error_code)`.
    template <class CompletionToken>
    auto async_drain(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code)>(
            [this](auto handler) { async_drain_erased(std::move(handler)); }, token);
    }

    /// Stops admitting: requests not yet sent complete with errc::not_attempted (or
    /// errc::stopped when submitted afterwards); requests on the wire are allowed to finish
    /// (`graceful`) or cancelled at once. Idempotent; safe from any thread.
    ///
    /// The dispatcher stops itself the same way when a fatal error arrives (quota exhausted);
    /// submissions after that complete with errc::not_attempted, since they were refused and a
    /// resumed run should send them.
    void stop(bool graceful = true);

    /// `stop(graceful)`, completing once every pending request has been delivered and the
    /// connections are closed: for an embedder that shares its io_context and must know when
    /// the dispatcher is done. Handler signature: `void(error_code)` (always success).
    template <class CompletionToken>
    auto async_stop(bool graceful, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code)>(
            [this, graceful](auto handler) { async_stop_erased(graceful, std::move(handler)); },
            token);
    }

    /// The executor the dispatcher runs on.
    boost::asio::any_io_executor get_executor() const noexcept;

    /// A snapshot of the counters; safe from any thread.
    stats_snapshot stats() const;

    const dispatcher_options& options() const noexcept;

private:
    // The result is passed on by reference: a by-value argument is moved at each of the
    // type-erased handler's two hops, and one is about 700 bytes.
    void async_complete_erased(request&& req,
                               boost::asio::any_completion_handler<void(error_code, result&&)> h);
    void async_drain_erased(boost::asio::any_completion_handler<void(error_code)> h);
    void async_stop_erased(bool graceful, boost::asio::any_completion_handler<void(error_code)> h);

    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace sluice
