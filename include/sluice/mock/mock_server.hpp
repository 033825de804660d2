#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace sluice {

/// Probabilities (0..1) of the faults the mock injects, each drawn per request (0: never).
/// The streaming faults are drawn per streamed request only (`"stream": true`), the
/// body faults (`truncated`, `malformed`) per non-streamed request only.
struct mock_faults {
    double http_500 = 0;           ///< 500 with an OpenAI-shaped server_error body
    double http_503 = 0;           ///< 503 server_is_overloaded with retry-after
    double reset = 0;              ///< connection reset before any response byte
    double truncated = 0;          ///< headers and half the body, then close
    double malformed = 0;          ///< 200 with a body that is not JSON
    double insufficient_quota = 0; ///< 429 insufficient_quota
    double slow = 0;               ///< answer only after `slow_delay`
    std::chrono::milliseconds slow_delay{2000};
    /// A stream that, after about half its content chunks, sends an error event
    /// `data: {"error":{"message":...,"type":"server_error","param":null,"code":null}}` and
    /// ends (the last chunk of the chunked body, no finish_reason, no usage, no [DONE]).
    double stream_error = 0;
    /// A stream whose connection is closed (FIN, not RST) after about half its content
    /// chunks, without the chunked body's terminating zero-size chunk.
    double stream_cut = 0;
};

/// The mock's Batch API (`/v1/files`, `/v1/batches`): how long a batch takes and what goes
/// wrong with it, so that a deferred job can be rehearsed offline. A batch is `validating` for
/// the first tenth of `processing_time`, `in_progress` (its request counts growing with the
/// time) until nine tenths, then `finalizing`, then `completed` (or `expired`).
struct mock_batch_options {
    /// From a batch's creation to its end (0: it is complete at once, at its first retrieval).
    std::chrono::milliseconds processing_time{2000};
    /// Every Nth request line of a batch (the Nth, 2Nth, ... counted from 1) is answered with a
    /// 500 server_error, which goes to the batch's error file (0: none fails).
    std::uint32_t fail_every = 0;
    /// Every Nth batch created (counted from 1) expires at the end of its processing time with
    /// only the first half of its requests done: the output file holds those, the error file
    /// the others as `batch_expired` (0: none expires).
    std::uint32_t expire_every = 0;
    /// Added before the answer to every request to `/v1/files` and `/v1/batches`, after its
    /// effect (an upload is stored, a batch created, when the wait starts): a client killed
    /// during the wait has done the step without knowing it (0: none).
    std::chrono::milliseconds api_delay{0};
    /// A file's content is sent in pieces of 64 KiB this far apart (0: at once), so that a
    /// download can be interrupted in the middle.
    std::chrono::microseconds download_piece_interval{0};
    /// The first N requests to `/v1/files` and `/v1/batches` are answered 503
    /// `server_is_overloaded` with `retry-after-ms: 20`, before any effect (0: none), so that
    /// a client's retries can be seen.
    std::uint32_t fail_first_calls = 0;
    /// Largest upload accepted (413 above); the request body limit of `/v1/files`.
    std::size_t max_file_bytes = std::size_t{256} << 20;
};

/// Settings of the embedded OpenAI-compatible mock server.
struct mock_options {
    /// Listen address; loopback unless told otherwise.
    std::string address = "127.0.0.1";
    /// Listen port; 0 picks an ephemeral port (see `mock_server::port()`).
    std::uint16_t port = 0;
    /// Serve HTTPS. With no cert_file/key_file, a self-signed certificate for 127.0.0.1,
    /// ::1 and localhost is generated at start (see `certificate_pem()`).
    bool tls = false;
    std::string cert_file;
    std::string key_file;
    /// Added latency per answer, before the response head (0: none); exponential draws a
    /// mean of `latency`.
    std::chrono::microseconds latency{0};
    bool exponential_latency = false;
    /// Completion tokens per answer (the answer text has this many words).
    std::uint32_t answer_tokens = 16;
    /// Streaming (`"stream": true`) timing, as offsets from the request. The response head
    /// and the role chunks go after `latency` (or a slow fault's delay); the first content
    /// chunk `first_token` after them (so the time to first token is latency + first_token);
    /// then one content chunk every `chunk_interval`; the finish chunks, the usage chunk and
    /// `[DONE]` go with the last content chunk. Default 0: no wait (the whole stream at once).
    std::chrono::microseconds first_token{0};
    /// Gap between content chunks (0: none); the mean gap when `exponential_chunks`.
    std::chrono::microseconds chunk_interval{0};
    /// Draw each gap from an exponential distribution with mean `chunk_interval`, from an
    /// engine seeded by `seed` (its own, so the fault draws of a seed stay the same).
    bool exponential_chunks = false;
    /// Words (completion tokens) per content chunk, the last one possibly fewer. Default 1;
    /// at least 1.
    std::uint32_t tokens_per_chunk = 1;
    /// Enforced limits (0 = none), with buckets of `bucket_seconds` of refill; over the limit
    /// the answer is 429 rate_limit_exceeded with x-ratelimit-*, retry-after(-ms) headers and
    /// the wait in its message ("Please try again in 1.5s.").
    double rpm = 0;
    double tpm = 0;
    double bucket_seconds = 1;
    /// Enforce the limits without saying them, as many OpenAI-compatible servers and gateways
    /// do: no `x-ratelimit-*` headers on any answer, and no retry hint on a 429 or a 503 (no
    /// `retry-after`, `retry-after-ms`, nor a "try again in" wait in the message).
    bool hide_limits = false;
    /// Answer with `Connection: close` and close after every Nth response (0 = never).
    std::uint32_t close_every = 0;
    mock_faults faults;
    /// After this many chat-completion requests every answer is 429 insufficient_quota, as
    /// when an account runs out of credit mid-job (0 = never).
    std::uint64_t quota_after = 0;
    /// Seed of the fault and latency draws.
    std::uint64_t seed = 1;
    /// Largest request body accepted (413 above), except uploads (`batch.max_file_bytes`).
    std::size_t max_body_size = 16 * 1024 * 1024;
    /// The Batch API: processing time and faults of batches.
    mock_batch_options batch;

    /// Throws std::invalid_argument naming the first field out of range: a fault probability
    /// outside 0..1, a negative duration, `tokens_per_chunk` 0. The server's constructor
    /// calls it.
    void validate() const;
};

/// Counters the mock keeps, also served as JSON at `GET /mock/stats`.
struct mock_stats {
    std::uint64_t requests = 0;          ///< chat-completion requests received
    std::uint64_t ok = 0;                ///< answered 200 with a completion
    std::uint64_t rate_limited = 0;      ///< answered 429 rate_limit_exceeded
    std::uint64_t quota = 0;             ///< answered 429 insufficient_quota
    std::uint64_t server_errors = 0;     ///< answered 500/503
    std::uint64_t client_errors = 0;     ///< answered 4xx for a bad request
    std::uint64_t resets = 0;            ///< connections reset on purpose
    std::uint64_t truncated = 0;         ///< bodies cut short on purpose
    std::uint64_t malformed = 0;         ///< non-JSON bodies sent on purpose
    std::uint64_t slow = 0;              ///< slow answers
    std::uint64_t streamed = 0;          ///< answered as SSE (also counted in ok when complete)
    std::uint64_t stream_errors = 0;     ///< streams ended by an error event on purpose
    std::uint64_t stream_cuts = 0;       ///< streams cut by a close on purpose
    std::uint64_t connections = 0;       ///< connections accepted
    std::uint64_t files_uploaded = 0;    ///< files stored by `POST /v1/files`
    std::uint64_t batches_created = 0;   ///< batches created by `POST /v1/batches`
    std::uint64_t batches_cancelled = 0; ///< batches cancelled by `POST .../cancel`
    std::uint64_t file_downloads = 0;    ///< `GET /v1/files/{id}/content` answered
    std::uint64_t batch_requests = 0;    ///< request lines of batches answered (output or error)
    std::uint64_t batch_api_calls = 0;   ///< requests to /v1/files and /v1/batches, all answers
};

/// An OpenAI-compatible server for tests, demos and benchmarks: `POST /v1/chat/completions`
/// over HTTP or HTTPS with keep-alive, realistic `chat.completion` bodies whose `usage` is
/// computed from the request, SSE for `stream: true`, enforced RPM/TPM with OpenAI-shaped 429s,
/// fault injection by probability, and the Batch API (`/v1/files`, `/v1/batches`: see
/// mock_batch_options).
///
/// Thread safety: construct, start and stop from any one thread; `stats()` from any thread.
/// Object lifetimes: the server must outlive the io_context's run of its operations; `stop()`
/// closes the acceptor and all connections.
class mock_server {
public:
    /// Binds and listens at once (throws boost::system::system_error when it cannot, and
    /// std::invalid_argument when `opts.validate()` does).
    mock_server(boost::asio::any_io_executor ex, mock_options opts);
    ~mock_server();
    mock_server(const mock_server&) = delete;
    mock_server& operator=(const mock_server&) = delete;

    /// Starts accepting on the executor.
    void start();
    /// Stops accepting and closes every connection.
    void stop();

    std::uint16_t port() const noexcept;
    /// "http://127.0.0.1:PORT/v1" or "https://...", ready for OPENAI_BASE_URL.
    std::string base_url() const;
    /// The serving certificate in PEM (for clients to trust); empty without TLS.
    const std::string& certificate_pem() const noexcept;

    mock_stats stats() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace sluice
