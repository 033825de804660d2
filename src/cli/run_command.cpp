#include "cli/run_command.hpp"

#include "cli/config_file.hpp"
#include "cli/dry_run.hpp"
#include "cli/progress.hpp"
#include "cli/summary.hpp"

#include <sluice/batch/batch_run.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/mock/mock_server.hpp>
#include <sluice/sink/journal.hpp>
#include <sluice/source/id_index.hpp>
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
dispatcher_options
build_options(const run_options& o, std::string* api_key_env, run_settings* run_file) {
    dispatcher_options opts;
    file_settings file;
    if (!o.config_file.empty())
        file = apply_config_file(o.config_file, opts);
    const std::string key_env = o.api_key_env.value_or(file.api_key_env);
    apply_environment(opts, key_env);
    if (api_key_env)
        *api_key_env = key_env;
    if (run_file)
        *run_file = file.run;

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
    if (o.retry_budget) {
        opts.retry.budget_ratio = *o.retry_budget;
        // 0 means no retries of failures: the floor of the budget goes too.
        if (*o.retry_budget == 0)
            opts.retry.budget_min_per_second = 0;
    }
    if (o.request_timeout_ms)
        opts.pool.request_timeout = std::chrono::milliseconds(*o.request_timeout_ms);
    return opts;
}

void apply_run_settings(run_options& o, const run_settings& file) {
    auto take = [&](const char* flag, auto& target, const auto& value) {
        if (value && !o.given.count(flag))
            target = *value;
    };
    take("--threads", o.threads, file.threads);
    take("--ordered", o.ordered, file.ordered);
    take("--reorder-window", o.reorder_window, file.reorder_window);
    take("--flush-interval-ms", o.flush_interval_ms, file.flush_interval_ms);
    take("--fsync-interval-ms", o.fsync_interval_ms, file.fsync_interval_ms);
    take("--grace-period", o.grace_period_s, file.grace_period_s);
    take("--progress-interval", o.progress_interval_s, file.progress_interval_s);
    take("--model", o.model, file.model);
    take("--system", o.system, file.system);
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
    // A half-finished job is planned for what is left: what its output already answers is
    // read (and nothing in it changed) as a resume would judge it.
    if (!o.output.empty() && o.output != "-") {
        journal_options jo;
        jo.retry_failed = o.retry_failed;
        jo.read_only = true;
        recover_journal(
            o.output,
            jo,
            [&](std::string_view id) { index.add_done_id(id); },
            [&](std::uint64_t line) { index.add_done_line(line); });
    }
    if (!streaming)
        scan_ids(o.input, ropts, index);
    for_each_record(o.input, ropts, [&](input_record& rec) {
        if (decide_line(rec, index, streaming) == line_action::skip)
            plan.add_skipped();
        else
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

namespace {

// The library never prints: its messages come here, one whole line per write so that the
// loops of --threads do not interleave them.
void log_to_stderr(log_level, std::string_view message) {
    std::string line = "sluice: ";
    line.append(message);
    line += '\n';
    std::cerr << line << std::flush;
}

// Checks what can be checked before a file is touched; prints why not and returns false.
bool usable(const run_options& o) {
    if (o.output.empty()) {
        std::cerr << "sluice run: -o/--output is required (except with --dry-run)\n";
        return false;
    }
    if (o.strict && !readable_twice(o.input)) {
        std::cerr << "sluice run: --strict needs an input file: stdin or a pipe cannot be read "
                     "twice\n";
        return false;
    }
    if (!o.errors_file.empty() && o.errors_file == o.output) {
        std::cerr << "sluice run: --errors must name another file than the output\n";
        return false;
    }
    return true;
}

void say_recovered(const run_options& o, const journal_recovery& r) {
    if (r.records > 0 && !o.quiet)
        std::cerr << "sluice run: resuming " << o.output << ": " << r.records - r.dropped
                  << " records kept, " << r.dropped << " to redo\n";
    if (r.torn_bytes > 0)
        std::cerr << "sluice run: cut a torn last line (" << r.torn_bytes << " bytes) off "
                  << o.output << '\n';
}

// --strict: every bad line is found before anything is sent.
bool strict_check(batch_run& job) {
    const input_problems found = job.find_bad_lines();
    for (const auto& [line, why] : found.first)
        std::cerr << "sluice run: line " << line << ": " << why << '\n';
    if (found.bad > found.first.size())
        std::cerr << "sluice run: ... and " << found.bad - found.first.size()
                  << " more bad lines\n";
    if (found.bad > 0)
        std::cerr << "sluice run: --strict: " << found.bad << " bad lines; nothing was sent\n";
    return found.bad == 0;
}

// Not movable: emplaced into the caller's optional.
void make_progress(std::optional<progress_display>& progress,
                   const run_options& o,
                   asio::io_context& ioc,
                   batch_run& job) {
    if (o.quiet)
        return;
    progress_options po;
    po.interval = std::chrono::milliseconds(static_cast<long>(o.progress_interval_s * 1000));
    // Records on the same terminal would tear a redrawn line apart.
    if (o.output == "-" && ::isatty(STDOUT_FILENO))
        po.tty = false;
    progress.emplace(
        ioc,
        [&job] {
            progress_sample s = sample_of(job.stats());
            s.done += job.bad_lines();
            s.failed += job.bad_lines();
            s.skipped = job.skipped();
            if (const auto total = job.total_lines())
                s.total = *total;
            return s;
        },
        STDERR_FILENO,
        po);
}

// SIGINT/SIGTERM: stop reading, let the requests on the wire finish (for the grace period) and
// write every record; a second signal, or the end of the grace period, cancels those too.
// Nothing already answered is lost.
class signal_stop {
public:
    signal_stop(asio::io_context& ioc,
                batch_run& job,
                std::optional<progress_display>& progress,
                double grace_period_s)
        : signals_(ioc, SIGINT, SIGTERM)
        , grace_(ioc)
        , job_(job)
        , progress_(progress)
        , grace_period_s_(grace_period_s) {
        watch();
    }
    void cancel() {
        signals_.cancel();
        grace_.cancel();
    }

private:
    void watch() {
        signals_.async_wait([this](error_code ec, int) {
            if (ec)
                return;
            const bool again = job_.interrupted();
            if (progress_)
                progress_->clear();
            std::cerr << (again ? "sluice run: stopping now\n"
                                : "sluice run: stopping; waiting for requests in flight "
                                  "(signal again to stop at once)\n");
            job_.interrupt(again);
            if (!again) {
                grace_.expires_after(
                    std::chrono::milliseconds(static_cast<long>(grace_period_s_ * 1000)));
                grace_.async_wait([this](error_code gec) {
                    if (gec)
                        return;
                    std::cerr << "sluice run: grace period over; cancelling " << job_.in_flight()
                              << " requests in flight\n";
                    job_.interrupt(true);
                });
            }
            watch();
        });
    }

    asio::signal_set signals_;
    asio::steady_timer grace_;
    batch_run& job_;
    std::optional<progress_display>& progress_;
    double grace_period_s_;
};

// The summary, the exit status and the --summary file of a finished job.
int finish(const run_options& o, batch_run& job, const std::string& key_env) {
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
    const batch_report r = job.report();
    const job_counts counts{r.lines, r.bad_lines, r.skipped};
    if (!o.quiet)
        print_summary(std::cerr, r.stats, counts, r.wall);
    if (r.stats.failures.count("unauthorized"))
        std::cerr << "sluice run: the server refused the API key from " << key_env
                  << " (HTTP 401); the job stopped and the lines not sent are recorded as "
                     "not attempted: set a valid key and run the same command again to "
                     "resume\n";
    const std::uint64_t earlier_errors = r.recovered.kept_errors + r.recovered.kept_bad_lines;
    if (earlier_errors > 0 && !o.quiet)
        std::cerr << "  " << earlier_errors
                  << " error records from earlier runs kept (--retry-failed redoes them)\n";
    if (status == exit_ok) {
        if (r.interrupted)
            status = exit_interrupted;
        else if (r.stats.failures.count("unauthorized"))
            status = exit_auth;
        else if (r.stats.failures.count("quota_exhausted"))
            status = exit_quota;
        else if (r.stats.failed > 0 || r.bad_lines > 0 || earlier_errors > 0)
            status = exit_failures;
    }
    if (!o.summary_file.empty()) {
        std::ofstream out(o.summary_file, std::ios::binary | std::ios::trunc);
        write_summary_json(out, r.stats, counts, r.wall, status);
        if (!out) {
            std::cerr << "sluice run: cannot write " << o.summary_file << '\n';
            return exit_io;
        }
    }
    return status;
}

} // namespace

int run(const run_options& flags) {
    run_options o = flags;
    batch_options bo;
    std::string key_env;
    try {
        run_settings file_run;
        bo.engine = build_options(o, &key_env, &file_run);
        apply_run_settings(o, file_run);
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_usage;
    }
    bo.engine.log.sink = log_to_stderr;
    bo.reader.model = o.model;
    bo.reader.system = o.system;
    if (o.dry_run) {
        try {
            return dry_run(o, bo.engine, bo.reader);
        } catch (const config_error& e) {
            std::cerr << "sluice run: " << e.what() << '\n';
            return exit_usage;
        } catch (const std::exception& e) {
            std::cerr << "sluice run: " << e.what() << '\n';
            return exit_io;
        }
    }
    if (!usable(o))
        return exit_usage;

    std::optional<embedded_mock> mock;
    if (o.mock) {
        mock.emplace(o.mock_latency_ms);
        bo.engine.base_url = mock->base_url();
        bo.engine.tls.ca_pem = mock->certificate_pem();
        if (bo.engine.api_key.empty())
            bo.engine.api_key = "sk-mock";
    }
    if (const std::string why = missing_key_error(bo.engine, key_env); !why.empty()) {
        std::cerr << "sluice run: " << why << '\n';
        return exit_usage;
    }
    if (bo.engine.tls.insecure)
        std::cerr << "sluice run: WARNING: --insecure: TLS certificates are NOT verified\n";

    bo.threads = o.threads;
    bo.retry_failed = o.retry_failed;
    bo.job.ordered = o.ordered;
    bo.job.reorder_window = o.reorder_window;
    bo.job.flush_interval = std::chrono::milliseconds(o.flush_interval_ms);
    bo.job.fsync_interval = std::chrono::milliseconds(o.fsync_interval_ms);
    asio::io_context ioc(1);
    std::optional<batch_run> job;
    try {
        job.emplace(ioc, batch_files{o.input, o.output, o.errors_file}, std::move(bo));
    } catch (const batch_setup_error& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_io;
    }
    say_recovered(o, job->recovered());
    try {
        if (o.strict && !strict_check(*job))
            return exit_invalid_input;
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_io;
    }

    std::optional<progress_display> progress;
    make_progress(progress, o, ioc, *job);
    signal_stop signals(ioc, *job, progress, o.grace_period_s);
    asio::post(ioc, [&] {
        if (progress)
            progress->start();
        job->start([&] {
            signals.cancel();
            if (progress)
                progress->stop();
        });
    });
    ioc.run();
    return finish(o, *job, key_env);
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
                    "resumed. Required, except with --dry-run");
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
    cmd->add_option("--rpm",
                    opts->rpm,
                    "Requests per minute limit (default none: learned from the server's "
                    "x-ratelimit headers)");
    cmd->add_option("--tpm",
                    opts->tpm,
                    "Tokens per minute limit (default none: learned from the server's "
                    "x-ratelimit headers)");
    cmd->add_option(
        "--tier", opts->tier, "Provider tier from configs/tiers.toml (free, payg-first-48h, payg)");
    cmd->add_option("--threads",
                    opts->threads,
                    "Event loops, each with its own share of connections and limits (default 1)")
        ->check(CLI::Range(1u, 64u).description(""));
    cmd->add_option(
        "--max-attempts", opts->max_attempts, "Attempts per request, first included (default 5)");
    cmd->add_option("--retry-budget",
                    opts->retry_budget,
                    "Retries of failures allowed per request sent, over 10 s, plus 10 a second "
                    "(default 0.2); 0: none (429s are still waited out)");
    cmd->add_option("--request-timeout-ms",
                    opts->request_timeout_ms,
                    "Timeout of one attempt: connect, TLS handshake, request and whole answer "
                    "(default 600000)");
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
        ->check(CLI::PositiveNumber.description(""));
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
        ->check(CLI::NonNegativeNumber.description(""));
    cmd->add_option("--progress-interval",
                    opts->progress_interval_s,
                    "Seconds between progress lines when stderr is not a terminal (default 10)")
        ->check(CLI::PositiveNumber.description(""));
    cmd->footer(R"(Environment:
  OPENAI_API_KEY      the API key (another variable with --api-key-env or api_key_env)
  OPENAI_BASE_URL     the endpoint, when --base-url and the config file name none
  OPENAI_ORG_ID       sent as OpenAI-Organization
  OPENAI_PROJECT_ID   sent as OpenAI-Project

Exit status:
  0  every line has a success record       4  input or output could not be read/written
  1  some lines have error records         5  --strict or --dry-run found bad lines
  2  bad flags, config or environment      6  stopped: the server refused the key (401)
  3  stopped: quota exhausted              130  stopped by SIGINT/SIGTERM (resume to finish)

Options are documented in docs/options.md; precedence: defaults < config < environment < flags.)");
    cmd->callback([opts, cmd] {
        for (const char* flag : {"--threads",
                                 "--ordered",
                                 "--reorder-window",
                                 "--flush-interval-ms",
                                 "--fsync-interval-ms",
                                 "--grace-period",
                                 "--progress-interval",
                                 "--model",
                                 "--system"})
            if (cmd->count(flag) > 0)
                opts->given.insert(flag);
        const int code = run(*opts);
        if (code != exit_ok)
            throw command_exit{code};
    });
}

} // namespace sluice::cli
