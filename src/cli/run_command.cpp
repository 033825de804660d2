#include "cli/run_command.hpp"

#include "cli/config_file.hpp"
#include "cli/dry_run.hpp"
#include "cli/progress.hpp"
#include "cli/summary.hpp"
#include <sluice/batch/batch_job.hpp>
#include <sluice/batch/engine_shards.hpp>
#include <sluice/batch/input_files.hpp>

#include <sluice/dispatcher.hpp>
#include <sluice/mock/mock_server.hpp>
#include <sluice/sink/journal.hpp>
#include <sluice/sink/jsonl_writer.hpp>
#include <sluice/source/id_index.hpp>
#include <sluice/source/jsonl_reader.hpp>
#include <sluice/transport/endpoint.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>

namespace sluice::cli {

namespace asio = boost::asio;

// Flags > environment > config file > defaults, in that order of strength; within the file
// and within the flags, rpm/tpm override the tier's numbers.
dispatcher_options build_options(const run_options& o, std::string* api_key_env) {
    dispatcher_options opts;
    file_settings file;
    if (!o.config_file.empty())
        file = apply_config_file(o.config_file, opts);
    const std::string key_env = o.api_key_env.value_or(file.api_key_env);
    apply_environment(opts, key_env);
    if (api_key_env)
        *api_key_env = key_env;

    const std::string tier_name = o.tier.value_or(file.tier);
    if (!tier_name.empty()) {
        const auto tiers = builtin_tiers();
        const tier& t = find_tier(tiers, tier_name);
        // A --tier flag outranks the whole file; the file's own tier only what it leaves out.
        if (o.tier || !file.rpm_set)
            opts.limits.rpm = t.rpm;
        if (o.tier || !file.tpm_set)
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

std::string missing_key_error(const dispatcher_options& opts, std::string_view api_key_env) {
    if (!opts.api_key.empty())
        return {};
    error_code ec;
    const endpoint ep = endpoint::parse(opts.base_url, ec);
    if (ec || !ep.tls || ep.host_is_loopback())
        return {}; // a bad URL is reported where the engine is built
    return "no API key: set " + std::string(api_key_env) + " (or name another variable with " +
           "--api-key-env) before sending to " + opts.base_url;
}

namespace {

int dry_run(const run_options& o, const dispatcher_options& opts, const reader_options& ropts) {
    const price_table prices = load_prices(o.config_file);
    plan_builder plan(opts.estimate);
    const bool streaming = !readable_twice(o.input);
    id_index index(streaming ? id_index_mode::one_pass : id_index_mode::two_pass);
    if (!streaming)
        scan_ids(o.input, ropts, index);
    for_each_record(o.input, ropts, [&](input_record& rec) {
        mark_repeat(rec, index, streaming);
        plan.add(rec);
    });
    print_plan(std::cout, plan.plan(), opts, prices);
    if (!o.summary_file.empty()) {
        std::ofstream out(o.summary_file, std::ios::binary | std::ios::trunc);
        write_plan_json(out, plan.plan(), opts, prices);
        if (!out) {
            std::cerr << "sluice run: cannot write " << o.summary_file << '\n';
            return exit_io;
        }
    }
    return plan.plan().bad_lines > 0 ? exit_invalid_input : exit_ok;
}

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
    std::string key_env;
    try {
        opts = build_options(o, &key_env);
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_usage;
    }
    // The library never prints: its messages come here, one whole line per write so that
    // the loops of --threads do not interleave them.
    opts.log.sink = [](log_level, std::string_view message) {
        std::string line = "sluice: ";
        line.append(message);
        line += '\n';
        std::cerr << line << std::flush;
    };
    reader_options ropts;
    ropts.model = o.model;
    ropts.system = o.system;
    const bool streaming = !readable_twice(o.input);

    if (o.dry_run) {
        try {
            return dry_run(o, opts, ropts);
        } catch (const config_error& e) {
            std::cerr << "sluice run: " << e.what() << '\n';
            return exit_usage;
        } catch (const std::exception& e) {
            std::cerr << "sluice run: " << e.what() << '\n';
            return exit_io;
        }
    }
    if (o.output.empty()) {
        std::cerr << "sluice run: -o/--output is required (except with --dry-run)\n";
        return exit_usage;
    }
    if (o.strict && streaming) {
        std::cerr << "sluice run: --strict needs an input file: stdin or a pipe cannot be read "
                     "twice\n";
        return exit_usage;
    }
    if (!o.errors_file.empty() && o.errors_file == o.output) {
        std::cerr << "sluice run: --errors must name another file than the output\n";
        return exit_usage;
    }

    // The output is the journal: what it already holds is not sent again.
    id_index index(streaming ? id_index_mode::one_pass : id_index_mode::two_pass);
    journal_recovery recovered;
    std::uint64_t total = 0;
    try {
        if (o.output != "-") {
            journal_options jo;
            jo.retry_failed = o.retry_failed;
            jo.errors_path = o.errors_file;
            recovered = recover_journal(
                o.output,
                jo,
                [&](std::string_view id) { index.add_done_id(id); },
                [&](std::uint64_t line) { index.add_done_line(line); });
            if (recovered.records > 0 && !o.quiet)
                std::cerr << "sluice run: resuming " << o.output << ": "
                          << recovered.records - recovered.dropped << " records kept, "
                          << recovered.dropped << " to redo\n";
            if (recovered.torn_bytes > 0)
                std::cerr << "sluice run: cut a torn last line (" << recovered.torn_bytes
                          << " bytes) off " << o.output << '\n';
        }
        if (!streaming) {
            total = scan_ids(o.input, ropts, index);
            if (o.strict) {
                const input_problems found = find_bad_lines(o.input, ropts, index);
                for (const auto& [line, why] : found.first)
                    std::cerr << "sluice run: line " << line << ": " << why << '\n';
                if (found.bad > found.first.size())
                    std::cerr << "sluice run: ... and " << found.bad - found.first.size()
                              << " more bad lines\n";
                if (found.bad > 0) {
                    std::cerr << "sluice run: --strict: " << found.bad
                              << " bad lines; nothing was sent\n";
                    return exit_invalid_input;
                }
            }
        }
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_io;
    }

    std::optional<embedded_mock> mock;
    if (o.mock) {
        mock.emplace(o.mock_latency_ms);
        opts.base_url = mock->base_url();
        opts.tls.ca_pem = mock->certificate_pem();
        if (opts.api_key.empty())
            opts.api_key = "sk-mock";
    }
    if (const std::string why = missing_key_error(opts, key_env); !why.empty()) {
        std::cerr << "sluice run: " << why << '\n';
        return exit_usage;
    }
    if (opts.tls.insecure)
        std::cerr << "sluice run: WARNING: --insecure: TLS certificates are NOT verified\n";

    fd_guard fds;
    int in_fd = -1;
    int out_fd = -1;
    int err_fd = -1;
    try {
        in_fd = fds.add(open_input(o.input));
        out_fd = fds.add(open_output(o.output));
        // Without a journal to rebuild it from, the errors file starts afresh.
        if (!o.errors_file.empty())
            err_fd = fds.add(open_output(o.errors_file, o.output == "-"));
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
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

    jsonl_reader reader(in_fd, ropts);
    jsonl_writer writer(out_fd);
    std::optional<jsonl_writer> errors;
    if (err_fd >= 0)
        errors.emplace(err_fd);
    batch_job_options jo;
    jo.window = std::max<std::size_t>(256, opts.pool.max_connections * 4);
    jo.ordered = o.ordered;
    jo.reorder_window = std::max(o.reorder_window, jo.window);
    jo.flush_interval = std::chrono::milliseconds(o.flush_interval_ms);
    jo.fsync_interval = std::chrono::milliseconds(o.fsync_interval_ms);
    batch_job job(ioc, *engines, reader, index, streaming, writer, errors ? &*errors : nullptr, jo);

    std::optional<progress_display> progress;
    if (!o.quiet) {
        progress_options po;
        po.interval = std::chrono::milliseconds(static_cast<long>(o.progress_interval_s * 1000));
        // Records on the same terminal would tear a redrawn line apart.
        if (o.output == "-" && ::isatty(STDOUT_FILENO))
            po.tty = false;
        progress.emplace(
            ioc,
            [&] {
                progress_sample s = sample_of(engines->stats());
                s.done += job.bad_lines();
                s.failed += job.bad_lines();
                s.skipped = job.skipped();
                if (!streaming)
                    s.total = total;
                return s;
            },
            STDERR_FILENO,
            po);
    }

    const auto started = std::chrono::steady_clock::now();
    // SIGINT/SIGTERM: stop reading, let the requests on the wire finish (for the grace period)
    // and write every record; a second signal, or the end of the grace period, cancels those
    // too. Nothing already answered is lost.
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    asio::steady_timer grace(ioc);
    std::function<void()> watch = [&] {
        signals.async_wait([&](error_code ec, int) {
            if (ec)
                return;
            const bool again = job.interrupted();
            if (progress)
                progress->clear();
            std::cerr << (again ? "sluice run: stopping now\n"
                                : "sluice run: stopping; waiting for requests in flight "
                                  "(signal again to stop at once)\n");
            job.interrupt(again);
            if (!again) {
                grace.expires_after(
                    std::chrono::milliseconds(static_cast<long>(o.grace_period_s * 1000)));
                grace.async_wait([&](error_code gec) {
                    if (gec)
                        return;
                    std::cerr << "sluice run: grace period over; cancelling " << job.in_flight()
                              << " requests in flight\n";
                    job.interrupt(true);
                });
            }
            watch();
        });
    };
    watch();
    asio::post(ioc, [&] {
        if (progress)
            progress->start();
        job.start([&] {
            signals.cancel();
            grace.cancel();
            if (progress)
                progress->stop();
        });
    });
    ioc.run();
    const auto wall = std::chrono::steady_clock::now() - started;

    int status = exit_ok;
    try {
        job.sync();
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

    const stats_snapshot stats = engines->stats();
    const job_counts counts{job.lines(), job.bad_lines(), job.skipped()};
    if (!o.quiet)
        print_summary(std::cerr, stats, counts, wall);
    if (stats.failures.count("unauthorized"))
        std::cerr << "sluice run: the server refused the API key from " << key_env
                  << " (HTTP 401); the job stopped and the lines not sent are recorded as "
                     "not attempted: set a valid key and run the same command again to "
                     "resume\n";
    const std::uint64_t earlier_errors = recovered.kept_errors + recovered.kept_bad_lines;
    if (earlier_errors > 0 && !o.quiet)
        std::cerr << "  " << earlier_errors
                  << " error records from earlier runs kept (--retry-failed redoes them)\n";

    if (status == exit_ok) {
        if (job.interrupted())
            status = exit_interrupted;
        else if (stats.failures.count("unauthorized"))
            status = exit_auth;
        else if (stats.failures.count("quota_exhausted"))
            status = exit_quota;
        else if (stats.failed > 0 || job.bad_lines() > 0 || earlier_errors > 0)
            status = exit_failures;
    }
    if (!o.summary_file.empty()) {
        std::ofstream out(o.summary_file, std::ios::binary | std::ios::trunc);
        write_summary_json(out, stats, counts, wall, status);
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
    cmd->add_option("-o,--output",
                    opts->output,
                    "Output JSONL (Batch API output format), - for stdout; an existing file is "
                    "resumed");
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
    cmd->add_flag("-q,--quiet", opts->quiet, "Print no progress and no summary");
    cmd->add_option("--model", opts->model, "Model of {\"prompt\": ...} lines that name none");
    cmd->add_option("--system", opts->system, "System message put before every prompt line");
    cmd->add_flag("--dry-run",
                  opts->dry_run,
                  "Read and validate the input, print the plan (tokens, time, cost); send nothing");
    cmd->add_flag(
        "--strict", opts->strict, "Validate every line first; any bad line fails the run unsent");
    cmd->add_flag("--retry-failed",
                  opts->retry_failed,
                  "Resume: redo the error records already in the output too");
    cmd->add_option(
        "--errors", opts->errors_file, "Also write failed requests and bad lines to this file");
    cmd->add_flag("--ordered", opts->ordered, "Write records in input order (bounded window)");
    cmd->add_option("--reorder-window",
                    opts->reorder_window,
                    "With --ordered: records held waiting for an earlier one (default 4096)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--flush-interval-ms",
                    opts->flush_interval_ms,
                    "Write finished records to the output within this many ms (default 10)");
    cmd->add_option(
        "--fsync-interval-ms",
        opts->fsync_interval_ms,
        "fsync the output this often, and at the end; 0: only at the end (default 1000)");
    cmd->add_option("--grace-period",
                    opts->grace_period_s,
                    "Seconds requests in flight may take after SIGINT/SIGTERM (default 30)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--progress-interval",
                    opts->progress_interval_s,
                    "Seconds between progress lines when stderr is not a terminal (default 10)")
        ->check(CLI::PositiveNumber);
    cmd->callback([opts] {
        const int code = run(*opts);
        if (code != exit_ok)
            throw command_exit{code};
    });
}

} // namespace sluice::cli
