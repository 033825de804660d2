#include "cli/run_command.hpp"

#include "cli/config_file.hpp"
#include "cli/engine_shards.hpp"
#include "cli/summary.hpp"

#include <sluice/dispatcher.hpp>
#include <sluice/mock/mock_server.hpp>
#include <sluice/sink/jsonl_writer.hpp>
#include <sluice/source/jsonl_reader.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>

namespace sluice::cli {

namespace asio = boost::asio;

namespace {

// Flags > environment > config file > defaults, in that order of strength.
dispatcher_options build_options(const run_options& o) {
    dispatcher_options opts;
    file_settings file;
    if (!o.config_file.empty())
        file = apply_config_file(o.config_file, opts);
    apply_environment(opts, o.api_key_env.value_or(file.api_key_env));

    const std::string tier_name = o.tier.value_or(file.tier);
    if (!tier_name.empty()) {
        const auto tiers = builtin_tiers();
        const tier& t = find_tier(tiers, tier_name);
        opts.limits.rpm = t.rpm;
        opts.limits.tpm = t.tpm;
    }
    if (o.base_url)
        opts.base_url = *o.base_url;
    if (o.ca_file)
        opts.tls.ca_file = *o.ca_file;
    if (o.insecure)
        opts.tls.insecure = true;
    if (o.concurrency)
        opts.pool.max_connections = *o.concurrency;
    if (o.rpm)
        opts.limits.rpm = *o.rpm;
    if (o.tpm)
        opts.limits.tpm = *o.tpm;
    if (o.max_attempts)
        opts.retry.max_attempts = *o.max_attempts;
    if (o.retry_budget)
        opts.retry.budget_ratio = *o.retry_budget;
    if (o.request_timeout_ms)
        opts.pool.request_timeout = std::chrono::milliseconds(*o.request_timeout_ms);
    return opts;
}

int open_input(const std::string& path) {
    if (path == "-")
        return STDIN_FILENO;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "cannot open input " + path);
    return fd;
}

int open_output(const std::string& path) {
    if (path == "-")
        return STDOUT_FILENO;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "cannot open output " + path);
    return fd;
}

// Keeps at most `window` requests inside the dispatcher: memory stays bounded by the window,
// not the input. Lines are read on the event loop between completions.
class batch_job {
public:
    batch_job(asio::io_context& loop,
              engine_shards& engines,
              jsonl_reader& in,
              jsonl_writer& out,
              std::size_t window)
        : loop_(loop)
        , engines_(engines)
        , reader_(in)
        , writer_(out)
        , window_(window) {}

    /// Starts reading; `on_done` runs once every line read has its record.
    void start(std::function<void()> on_done) {
        on_done_ = std::move(on_done);
        fill();
    }

    /// Stops reading more lines: the engines hand back what they hold (requests not yet sent
    /// become not_attempted records) and the job ends when the requests on the wire are in.
    /// With `at_once`, those are cancelled too.
    void interrupt(bool at_once) {
        interrupted_ = true;
        eof_ = true;
        engines_.stop(!at_once);
        if (in_flight_ == 0)
            finish();
    }

    bool interrupted() const noexcept { return interrupted_; }

    std::uint64_t bad_lines() const noexcept { return bad_lines_; }
    std::uint64_t lines() const noexcept { return lines_; }
    const std::exception_ptr& error() const noexcept { return error_; }

private:
    void fill() {
        try {
            input_record rec;
            while (!eof_ && in_flight_ < window_) {
                if (!reader_.next(rec)) {
                    eof_ = true;
                    break;
                }
                ++lines_;
                if (rec.ec) {
                    ++bad_lines_;
                    writer_.write(rec);
                    continue;
                }
                ++in_flight_;
                // Results come back to this loop, whichever shard's thread produced them: the
                // reader, the writer and this object are single-threaded.
                engines_.next().async_complete(
                    std::move(rec.request),
                    asio::bind_executor(loop_, [this](error_code, result r) { on_result(r); }));
            }
        } catch (...) {
            error_ = std::current_exception();
            eof_ = true;
        }
        if (eof_ && in_flight_ == 0)
            finish();
    }

    void on_result(const result& r) {
        --in_flight_;
        try {
            writer_.write(r);
        } catch (...) {
            if (!error_)
                error_ = std::current_exception();
            eof_ = true;
        }
        fill();
    }

    void finish() {
        if (finished_)
            return;
        finished_ = true;
        engines_.stop();
        if (on_done_)
            on_done_();
    }

    asio::io_context& loop_;
    engine_shards& engines_;
    jsonl_reader& reader_;
    jsonl_writer& writer_;
    std::size_t window_;
    std::size_t in_flight_ = 0;
    std::uint64_t lines_ = 0;
    std::uint64_t bad_lines_ = 0;
    bool eof_ = false;
    bool finished_ = false;
    bool interrupted_ = false;
    std::function<void()> on_done_;
    std::exception_ptr error_;
};

// The embedded mock server on its own thread and io_context, so the client's event loop
// measures only the client.
class embedded_mock {
public:
    explicit embedded_mock(std::uint64_t latency_ms) {
        mock_options mo;
        mo.tls = true;
        mo.latency = std::chrono::milliseconds(latency_ms);
        server_.emplace(ioc_.get_executor(), mo);
        server_->start();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~embedded_mock() {
        asio::post(ioc_, [this] { server_->stop(); });
        thread_.join();
    }
    std::string base_url() const { return server_->base_url(); }
    const std::string& certificate_pem() const { return server_->certificate_pem(); }

private:
    asio::io_context ioc_;
    std::optional<mock_server> server_;
    std::thread thread_;
};

} // namespace

int run(const run_options& o) {
    dispatcher_options opts;
    try {
        opts = build_options(o);
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_usage;
    }

    std::optional<embedded_mock> mock;
    if (o.mock) {
        mock.emplace(o.mock_latency_ms);
        opts.base_url = mock->base_url();
        opts.tls.ca_pem = mock->certificate_pem();
        if (opts.api_key.empty())
            opts.api_key = "sk-mock";
    }
    if (opts.tls.insecure)
        std::cerr << "sluice run: WARNING: --insecure: TLS certificates are NOT verified\n";

    int in_fd = -1;
    int out_fd = -1;
    try {
        in_fd = open_input(o.input);
        out_fd = open_output(o.output);
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        if (in_fd > STDIN_FILENO)
            ::close(in_fd);
        return exit_io;
    }

    asio::io_context ioc(1);
    std::optional<engine_shards> engines;
    try {
        engines.emplace(ioc, opts, o.threads);
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_usage;
    }

    jsonl_reader reader(in_fd);
    jsonl_writer writer(out_fd);
    const std::size_t window = std::max<std::size_t>(256, opts.pool.max_connections * 4);
    batch_job job(ioc, *engines, reader, writer, window);

    const auto started = std::chrono::steady_clock::now();
    // SIGINT/SIGTERM: stop reading, let the requests on the wire finish and write every
    // record; a second signal cancels those too. Nothing already answered is lost.
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    std::function<void()> watch = [&] {
        signals.async_wait([&](error_code ec, int) {
            if (ec)
                return;
            const bool again = job.interrupted();
            std::cerr << (again ? "sluice run: stopping now\n"
                                : "sluice run: stopping; waiting for requests in flight "
                                  "(signal again to stop at once)\n");
            job.interrupt(again);
            watch();
        });
    };
    watch();
    asio::post(ioc, [&] { job.start([&] { signals.cancel(); }); });
    ioc.run();
    const auto wall = std::chrono::steady_clock::now() - started;

    int status = exit_ok;
    try {
        writer.sync();
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        status = exit_io;
    }
    if (job.error()) {
        try {
            std::rethrow_exception(job.error());
        } catch (const std::exception& e) {
            std::cerr << "sluice run: " << e.what() << '\n';
        }
        status = exit_io;
    }
    if (in_fd > STDIN_FILENO)
        ::close(in_fd);
    if (out_fd > STDOUT_FILENO)
        ::close(out_fd);

    const stats_snapshot stats = engines->stats();
    if (!o.quiet)
        print_summary(std::cerr, stats, job.lines(), job.bad_lines(), wall);

    if (status == exit_ok) {
        if (job.interrupted())
            status = exit_interrupted;
        else if (stats.failures.count("quota_exhausted"))
            status = exit_quota;
        else if (stats.failed > 0 || job.bad_lines() > 0)
            status = exit_failures;
    }
    if (!o.summary_file.empty()) {
        std::ofstream out(o.summary_file, std::ios::binary | std::ios::trunc);
        write_summary_json(out, stats, job.lines(), job.bad_lines(), wall, status);
        if (!out) {
            std::cerr << "sluice run: cannot write " << o.summary_file << '\n';
            return exit_io;
        }
    }
    return status;
}

void add_run_command(CLI::App& app) {
    auto opts = std::make_shared<run_options>();
    CLI::App* cmd = app.add_subcommand(
        "run", "Send every request of a Batch API JSONL file and write one result line for each");
    cmd->add_option("input", opts->input, "Input JSONL (Batch API format), - for stdin")
        ->required();
    cmd->add_option(
           "-o,--output", opts->output, "Output JSONL (Batch API output format), - for stdout")
        ->required();
    cmd->add_option("--config", opts->config_file, "TOML config file (see configs/default.toml)");
    cmd->add_option("--base-url",
                    opts->base_url,
                    "API base URL (default $OPENAI_BASE_URL or https://api.openai.com/v1)");
    cmd->add_option("--api-key-env",
                    opts->api_key_env,
                    "Environment variable holding the API key (default OPENAI_API_KEY)");
    cmd->add_option(
        "--ca-file", opts->ca_file, "PEM file of an extra trusted CA (self-signed local servers)");
    cmd->add_flag(
        "--insecure", opts->insecure, "Do not verify TLS certificates (loud; local tests only)");
    cmd->add_option("--concurrency", opts->concurrency, "Maximum connections (default 64)");
    cmd->add_option("--rpm", opts->rpm, "Requests per minute limit");
    cmd->add_option("--tpm", opts->tpm, "Tokens per minute limit");
    cmd->add_option(
        "--tier", opts->tier, "Provider tier from configs/tiers.toml (free, payg-first-48h, payg)");
    cmd->add_option("--threads",
                    opts->threads,
                    "Event loops, each with its own share of connections and limits (default 1)")
        ->check(CLI::Range(1u, 64u));
    cmd->add_option(
        "--max-attempts", opts->max_attempts, "Attempts per request, first included (default 5)");
    cmd->add_option("--retry-budget",
                    opts->retry_budget,
                    "Retries allowed per request sent, over 10 s (default 0.2)");
    cmd->add_option(
        "--request-timeout-ms", opts->request_timeout_ms, "Whole-request timeout (default 600000)");
    cmd->add_flag("--mock", opts->mock, "Run against the embedded mock server on a loopback port");
    cmd->add_option(
        "--mock-latency-ms", opts->mock_latency_ms, "Latency of the embedded mock's answers");
    cmd->add_option("--summary", opts->summary_file, "Also write the summary as JSON to this file");
    cmd->add_flag("-q,--quiet", opts->quiet, "Print no summary");
    cmd->callback([opts] {
        const int code = run(*opts);
        if (code != exit_ok)
            throw command_exit{code};
    });
}

} // namespace sluice::cli
