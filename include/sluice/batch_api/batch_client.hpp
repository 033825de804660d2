#pragma once

#include <sluice/batch_api/batch_objects.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace sluice {

/// A completion the provider stored (`GET /v1/chat/completions/{id}` of a request sent with
/// `"store": true`): its body as received.
struct stored_completion : api_reply {
    std::string body;
};

/// The provider's asynchronous way of calling `/v1/chat/completions`: the steps of the Batch
/// API as async operations, for services that run their own deferred jobs (`sluice batch` is
/// built on them). Requests go to the same base URL, with the same key, headers, TLS, proxy and
/// Azure rules as a `dispatcher` built from the same `dispatcher_options`, over a connection
/// pool of its own (`pool.max_connections` applies); each is retried on 408, 409, 429, 5xx and
/// a dropped connection with `retry` (the server's hint honoured, else exponential backoff),
/// never on 400, 401, 403 or 404. Azure OpenAI: `/openai/files` and `/openai/batches` of the
/// resource, with the `api-version` of the options or the base URL.
///
/// Each operation completes with `void(error_code, T)`: an empty code and the provider's
/// object, or the failure (errc::client_error, server_error, unauthorized, rate_limited when
/// the retries are spent, malformed_response for an answer that is not the object expected,
/// a transport error) with `T::http_status` and `T::error_message` saying more. Callbacks,
/// `use_awaitable` and `use_future` all work.
///
/// A `POST /v1/batches` retried after a dropped connection may have created the batch the
/// first time: a caller that must create a batch once gives it metadata and looks for it with
/// `async_list_batches` before creating it again (as `sluice batch submit` does).
///
/// Thread safety: calls and completions on the executor given (a strand when the io_context
/// runs on several threads). Object lifetimes: the client must outlive its operations;
/// `close()` cancels them (they complete with operation_aborted).
class batch_client {
public:
    /// Throws std::invalid_argument when `opts.validate()` does, or the base URL is not one.
    batch_client(boost::asio::any_io_executor ex, dispatcher_options opts);
    ~batch_client();
    batch_client(const batch_client&) = delete;
    batch_client& operator=(const batch_client&) = delete;

    /// Uploads the file at `path` with `POST /v1/files` (multipart, `purpose=batch`), named
    /// `filename` at the provider. The file is mapped, not read into memory, and must not
    /// change until completion. Completes with `void(error_code, file_object)`.
    template <class CompletionToken>
    auto async_upload(std::string path, std::string filename, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, file_object)>(
            [this](auto h, std::string p, std::string f) {
                upload_erased(std::move(p), std::move(f), std::move(h));
            },
            token,
            std::move(path),
            std::move(filename));
    }

    /// Creates a batch with `POST /v1/batches`. Completes with `void(error_code,
    /// batch_object)`.
    template <class CompletionToken>
    auto async_create_batch(batch_create_request request, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, batch_object)>(
            [this](auto h, batch_create_request r) { create_erased(std::move(r), std::move(h)); },
            token,
            std::move(request));
    }

    /// Retrieves a batch (`GET /v1/batches/{id}`): its status, counts and files. Completes
    /// with `void(error_code, batch_object)`.
    template <class CompletionToken>
    auto async_poll(std::string batch_id, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, batch_object)>(
            [this](auto h, std::string id) { poll_erased(std::move(id), false, std::move(h)); },
            token,
            std::move(batch_id));
    }

    /// Cancels a batch (`POST /v1/batches/{id}/cancel`); it goes `cancelling`, then
    /// `cancelled` with what was done. Completes with `void(error_code, batch_object)`.
    template <class CompletionToken>
    auto async_cancel(std::string batch_id, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, batch_object)>(
            [this](auto h, std::string id) { poll_erased(std::move(id), true, std::move(h)); },
            token,
            std::move(batch_id));
    }

    /// One page of `GET /v1/batches?limit=100[&after=ID]`, newest first. Completes with
    /// `void(error_code, batch_list)`.
    template <class CompletionToken>
    auto async_list_batches(std::string after, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, batch_list)>(
            [this](auto h, std::string a) { list_batches_erased(std::move(a), std::move(h)); },
            token,
            std::move(after));
    }

    /// The files of purpose `batch` (`GET /v1/files?purpose=batch`). Completes with
    /// `void(error_code, file_list)`.
    template <class CompletionToken>
    auto async_list_files(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, file_list)>(
            [this](auto h) { list_files_erased(std::move(h)); }, token);
    }

    /// Downloads a file's content (`GET /v1/files/{id}/content`) to `path`, streamed: written
    /// as it arrives under `path` + ".part", synced, then renamed to `path`, so memory stays
    /// bounded whatever the size and `path` is whole or absent, even across a crash. A retry
    /// starts the file again. Completes with `void(error_code, std::uint64_t bytes)`.
    template <class CompletionToken>
    auto async_download(std::string file_id, std::string path, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, std::uint64_t)>(
            [this](auto h, std::string id, std::string p) {
                download_erased(std::move(id), std::move(p), std::move(h));
            },
            token,
            std::move(file_id),
            std::move(path));
    }

    /// Retrieves a stored completion (`GET /v1/chat/completions/{id}`, for requests sent with
    /// `"store": true`). Completes with `void(error_code, stored_completion)`.
    template <class CompletionToken>
    auto async_retrieve(std::string completion_id, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(error_code, stored_completion)>(
            [this](auto h, std::string id) { retrieve_erased(std::move(id), std::move(h)); },
            token,
            std::move(completion_id));
    }

    /// Cancels every operation and closes the connections.
    void close();

private:
    template <class T>
    using handler = boost::asio::any_completion_handler<void(error_code, T)>;

    void upload_erased(std::string path, std::string filename, handler<file_object> h);
    void create_erased(batch_create_request r, handler<batch_object> h);
    void poll_erased(std::string id, bool cancel, handler<batch_object> h);
    void list_batches_erased(std::string after, handler<batch_list> h);
    void list_files_erased(handler<file_list> h);
    void download_erased(std::string id, std::string path, handler<std::uint64_t> h);
    void retrieve_erased(std::string id, handler<stored_completion> h);

    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace sluice
