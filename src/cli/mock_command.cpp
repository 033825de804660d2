#include "cli/mock_command.hpp"

#include "cli/open_files.hpp"
#include "cli/run_command.hpp"

#include <sluice/error.hpp>
#include <sluice/mock/mock_server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <fstream>
#include <iostream>

namespace sluice::cli {

namespace asio = boost::asio;

namespace {

struct mock_command_options {
    mock_options server;
    double latency_ms = 0;
    double first_token_ms = 0;
    double chunk_ms = 0;
    std::uint64_t slow_delay_ms = 2000;
    std::string write_cert;
    double duration_s = 0;
    double batch_time_s = 2;
    std::uint64_t batch_delay_ms = 0;
    double download_piece_ms = 0;
};

int run_mock(const mock_command_options& o) {
    mock_options opts = o.server;
    opts.latency = std::chrono::microseconds(static_cast<long long>(o.latency_ms * 1000));
    opts.first_token = std::chrono::microseconds(static_cast<long long>(o.first_token_ms * 1000));
    opts.chunk_interval = std::chrono::microseconds(static_cast<long long>(o.chunk_ms * 1000));
    opts.faults.slow_delay = std::chrono::milliseconds(o.slow_delay_ms);
    opts.batch.processing_time =
        std::chrono::milliseconds(static_cast<long long>(o.batch_time_s * 1000));
    opts.batch.api_delay = std::chrono::milliseconds(o.batch_delay_ms);
    opts.batch.download_piece_interval =
        std::chrono::microseconds(static_cast<long long>(o.download_piece_ms * 1000));

    raise_open_files_to_hard_limit(); // as many clients as come, like nginx's worker_rlimit_nofile
    asio::io_context ioc;
    std::optional<mock_server> server;
    try {
        server.emplace(ioc.get_executor(), opts);
    } catch (const std::exception& e) {
        std::cerr << "sluice mock: " << e.what() << '\n';
        return exit_usage;
    }
    if (!o.write_cert.empty()) {
        std::ofstream out(o.write_cert, std::ios::binary);
        out << server->certificate_pem();
        if (!out) {
            std::cerr << "sluice mock: cannot write " << o.write_cert << '\n';
            return exit_io;
        }
    }
    server->start();
    std::cout << "sluice mock listening on " << server->base_url() << std::endl;

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    asio::steady_timer deadline(ioc);
    auto stop = [&] {
        signals.cancel();
        deadline.cancel();
        server->stop();
    };
    signals.async_wait([&](error_code ec, int) {
        if (!ec)
            stop();
    });
    if (o.duration_s > 0) {
        deadline.expires_after(
            std::chrono::milliseconds(static_cast<long long>(o.duration_s * 1000)));
        deadline.async_wait([&](error_code ec) {
            if (!ec)
                stop();
        });
    }
    ioc.run();

    const mock_stats s = server->stats();
    std::cerr << "sluice mock: " << s.requests << " requests, " << s.ok << " ok, " << s.rate_limited
              << " rate limited, " << s.quota << " quota, " << s.server_errors << " server errors, "
              << s.client_errors << " client errors, " << s.resets << " resets, " << s.truncated
              << " truncated, " << s.malformed << " malformed, " << s.slow << " slow, "
              << s.streamed << " streamed, " << s.stream_errors << " stream errors, "
              << s.stream_cuts << " stream cuts, " << s.connections << " connections\n";
    return exit_ok;
}

} // namespace

void add_mock_command(CLI::App& app) {
    auto o = std::make_shared<mock_command_options>();
    mock_options& m = o->server;
    CLI::App* cmd = app.add_subcommand("mock", "Run the OpenAI-compatible mock server");
    cmd->add_option("--host", m.address, "Listen address")->capture_default_str();
    cmd->add_option("--port", m.port, "Listen port (0: ephemeral, printed)")->capture_default_str();
    cmd->add_flag("--tls", m.tls, "Serve HTTPS (self-signed certificate unless --cert/--key)");
    cmd->add_option("--cert", m.cert_file, "Certificate chain (PEM)");
    cmd->add_option("--key", m.key_file, "Private key (PEM)");
    cmd->add_option("--write-cert", o->write_cert, "Write the serving certificate (PEM) here");
    cmd->add_option("--latency-ms", o->latency_ms, "Added latency per answer");
    cmd->add_flag("--exponential-latency",
                  m.exponential_latency,
                  "Exponential latency with mean --latency-ms");
    cmd->add_option("--answer-tokens", m.answer_tokens, "Completion tokens per answer")
        ->capture_default_str();
    cmd->add_option("--first-token-ms",
                    o->first_token_ms,
                    "Streams: from the head to the first content chunk (after --latency-ms)");
    cmd->add_option("--chunk-ms", o->chunk_ms, "Streams: gap between content chunks");
    cmd->add_flag("--chunk-exponential",
                  m.exponential_chunks,
                  "Streams: exponential gaps with mean --chunk-ms (seeded by --seed)");
    cmd->add_option("--chunk-tokens", m.tokens_per_chunk, "Streams: words per content chunk")
        ->capture_default_str();
    cmd->add_option("--rpm", m.rpm, "Enforced requests per minute (0: none)");
    cmd->add_option("--tpm", m.tpm, "Enforced tokens per minute (0: none)");
    cmd->add_option("--bucket-seconds", m.bucket_seconds, "Bucket capacity in seconds of refill")
        ->capture_default_str();
    cmd->add_flag("--hide-limits",
                  m.hide_limits,
                  "Enforce --rpm/--tpm without x-ratelimit-* headers or retry hints");
    cmd->add_option(
        "--close-every", m.close_every, "Close the connection after every Nth response");
    cmd->add_option("--fault-500", m.faults.http_500, "Probability of a 500");
    cmd->add_option("--fault-503", m.faults.http_503, "Probability of a 503 with retry-after");
    cmd->add_option("--fault-reset", m.faults.reset, "Probability of a connection reset");
    cmd->add_option("--fault-truncated", m.faults.truncated, "Probability of a truncated body");
    cmd->add_option("--fault-malformed", m.faults.malformed, "Probability of a non-JSON 200 body");
    cmd->add_option(
        "--fault-quota", m.faults.insufficient_quota, "Probability of a 429 insufficient_quota");
    cmd->add_option("--quota-after",
                    m.quota_after,
                    "Answer 429 insufficient_quota to every request after the first N");
    cmd->add_option("--fault-slow", m.faults.slow, "Probability of a slow answer");
    cmd->add_option("--slow-delay-ms", o->slow_delay_ms, "Delay of a slow answer")
        ->capture_default_str();
    cmd->add_option("--fault-stream-error",
                    m.faults.stream_error,
                    "Probability of an error event halfway through a stream");
    cmd->add_option("--fault-stream-cut",
                    m.faults.stream_cut,
                    "Probability of a connection closed halfway through a stream");
    cmd->add_option("--seed", m.seed, "Seed of the fault, latency and chunk-gap draws")
        ->capture_default_str();
    cmd->add_option("--batch-time",
                    o->batch_time_s,
                    "Batch API: seconds from a batch's creation to its end (validating, "
                    "in_progress, finalizing, completed)")
        ->capture_default_str();
    cmd->add_option("--batch-fail-every",
                    m.batch.fail_every,
                    "Batch API: every Nth request of a batch fails with a 500 (0: none)");
    cmd->add_option("--batch-expire-every",
                    m.batch.expire_every,
                    "Batch API: every Nth batch expires with half its requests done (0: none)");
    cmd->add_option("--batch-delay-ms",
                    o->batch_delay_ms,
                    "Batch API: delay before every /v1/files and /v1/batches answer, after its "
                    "effect");
    cmd->add_option("--download-piece-ms",
                    o->download_piece_ms,
                    "Batch API: gap between the 64 KiB pieces of a file download (0: at once)");
    cmd->add_option(
        "--duration", o->duration_s, "Stop after this many seconds (0: on SIGINT/SIGTERM)");
    cmd->callback([o] {
        const int code = run_mock(*o);
        if (code != exit_ok)
            throw command_exit{code};
    });
}

} // namespace sluice::cli
