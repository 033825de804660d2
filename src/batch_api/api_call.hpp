#pragma once

#include <sluice/admission/retry_policy.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/http_response.hpp>
#include <sluice/transport/connection_pool.hpp>
#include <sluice/transport/endpoint.hpp>

#include "detail/redact.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::detail {

// The outcome of one Batch API call after its retries: the last response, and the failure
// (empty for a 2xx) with the provider's message or the transport's reason.
struct api_answer {
    error_code ec;
    http_response resp;
    std::string message;
};

// What the Batch API client shares between its operations: the endpoint, the pool and its
// TLS context, and the retry policy. All on `ex`.
struct api_caller {
    api_caller(boost::asio::any_io_executor ex, dispatcher_options opts);

    // The target of API path `path` ("/files", "/batches/ID"): under the base URL's prefix,
    // or for Azure OpenAI under the resource's /openai; `query` and the base URL's query
    // (api-version) after it.
    std::string target(std::string_view path, std::string_view query = {}) const;

    // Sends `spec` until it succeeds or the retry policy gives up; `before_attempt` runs
    // before each attempt (a download empties its file).
    boost::asio::awaitable<api_answer> call(const request_spec& spec,
                                            body_observer* observer = nullptr,
                                            std::function<void()> before_attempt = {});

    // Marks the caller closed, cancels the pool's exchanges and the retry waits.
    void close();

    boost::asio::any_io_executor ex;
    dispatcher_options opts;
    endpoint ep;
    std::optional<boost::asio::ssl::context> tls;
    connection_pool pool;
    retry_policy retries;
    // The key, the custom headers' values and the proxy's password: cut out of the provider's
    // messages before they reach a caller, as the dispatcher cuts them out of results.
    secret_scrubber secrets;
    std::vector<boost::asio::steady_timer*> waiting; // retry waits under way, for close()
    bool closed = false;
};

} // namespace sluice::detail
