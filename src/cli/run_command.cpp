#include "cli/run_command.hpp"
#include "cli/server_flags.hpp"

#include "cli/config_file.hpp"
#include "cli/dry_run.hpp"
#include "cli/embedded_mock.hpp"
#include "cli/metrics_listener.hpp"
#include "cli/open_files.hpp"
#include "cli/private_file.hpp"
#include "cli/progress.hpp"
#include "cli/signal_stop.hpp"
#include "cli/summary.hpp"

#include <sluice/batch/batch_run.hpp>
#include <sluice/prometheus.hpp>
#include <sluice/sink/journal.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

namespace sluice::cli {

namespace asio = boost::asio;

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

// The summary, the exit status and the --summary file of a finished job.
int finish(const run_options& o, batch_run& job, const std::string& key_env, bool deadline_passed) {
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
    const bool rejected = r.stats.failures.count("certificate_rejected") > 0;
    if (rejected)
        std::cerr << "sluice run: the server's TLS certificate was rejected (why is said above); "
                     "the job stopped and the lines not answered are recorded to be sent again: "
                     "fix the certificate or trust its CA with --ca-file, and run the same "
                     "command again to resume\n";
    const bool proxy_refused = r.stats.failures.count("proxy_refused") > 0;
    if (proxy_refused)
        std::cerr << "sluice run: the proxy refused the tunnel to the server (its answer is said "
                     "above); the job stopped and the lines not answered are recorded to be sent "
                     "again: fix the proxy settings (--proxy, HTTPS_PROXY, its credentials, "
                     "NO_PROXY) and run the same command again to resume\n";
    const std::uint64_t earlier_errors = r.recovered.kept_errors + r.recovered.kept_bad_lines;
    if (earlier_errors > 0 && !o.quiet)
        std::cerr << "  " << earlier_errors
                  << " error records from earlier runs kept (--retry-failed redoes them)\n";
    if (status == exit_ok) {
        if (r.interrupted)
            status = deadline_passed ? exit_deadline : exit_interrupted;
        else if (rejected || proxy_refused)
            status = exit_usage; // as for bench: the setup is wrong, not a line
        else if (r.stats.failures.count("unauthorized"))
            status = exit_auth;
        else if (r.stats.failures.count("quota_exhausted"))
            status = exit_quota;
        else if (r.stats.failed > 0 || r.bad_lines > 0 || earlier_errors > 0)
            status = exit_failures;
    }
    if (!o.summary_file.empty()) {
        std::ostringstream json;
        write_summary_json(json, r.stats, counts, r.wall, status);
        if (!write_private_file(o.summary_file, json.str())) {
            std::cerr << "sluice run: cannot write " << o.summary_file << '\n';
            return exit_io;
        }
    }
    return status;
}

// A shared budget's Redis must answer before anything is sent, unless it is optional: a run
// that cannot share would overrun the account N-fold, or crawl at 1/N.
bool check_redis(const shared_budget_options& sb) {
    if (!sb.enabled())
        return true;
    std::string why;
    if (!probe_redis(sb, why))
        return true;
    if (sb.optional) {
        std::cerr << "sluice run: warning: shared budget: " << why
                  << "; --redis-optional: running on the local limits until Redis answers\n";
        return true;
    }
    std::cerr << "sluice run: shared budget: " << why
              << " (--redis-optional runs without it on the local limits)\n";
    return false;
}

// The engine's options and the job's, from the flags `o` completed with the config file's
// `[run]` section; empty, having said why, when they are not usable.
std::optional<batch_options> configure(run_options& o, std::string& key_env) {
    try {
        run_settings file_run;
        dispatcher_options engine = build_options(o, &key_env, &file_run);
        apply_run_settings(o, file_run);
        batch_options bo = make_batch_options(o, std::move(engine));
        bo.engine.log.sink = log_to_stderr;
        return bo;
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return std::nullopt;
    }
}

// Builds the job into the caller's optional (it is not movable): the output's recovery, the
// planning pass and, with --strict, the check of every line. Returns exit_ok or why not.
int make_job(std::optional<batch_run>& job,
             asio::io_context& ioc,
             const run_options& o,
             batch_options bo) {
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
    return exit_ok;
}

// The flags, registered in the order --help lists them: input, output and the endpoint...
void add_endpoint_flags(CLI::App* cmd, run_options& o) {
    cmd->add_option("input", o.input, "Input JSONL (Batch API format), - for stdin")->required();
    cmd->add_option("-o,--output",
                    o.output,
                    "Output JSONL (Batch API output format), - for stdout; an existing file is "
                    "resumed. Required, except with --dry-run");
    cmd->add_option("--config", o.config_file, "TOML config file (see configs/default.toml)");
    add_server_flags(cmd, o);
    cmd->add_option("--concurrency", o.concurrency, "Maximum connections (default 64)");
    cmd->add_option("--rpm",
                    o.rpm,
                    "Requests per minute limit (default none: learned from the server's "
                    "x-ratelimit headers)");
    cmd->add_option("--tpm",
                    o.tpm,
                    "Tokens per minute limit (default none: learned from the server's "
                    "x-ratelimit headers)");
    cmd->add_option("--tier",
                    o.tier,
                    "Provider tier: free, payg-first-48h, payg, tier-1 ... tier-5 (OpenAI's "
                    "usage tiers, per model) or one of --tiers FILE; `sluice tiers` lists them");
    cmd->add_option("--redis",
                    o.redis,
                    "Share the account's limits with other processes through Redis: "
                    "redis://[[user]:password@]host[:port][/db], rediss:// for TLS "
                    "(env SLUICE_REDIS_URL)");
    cmd->add_option("--budget-key",
                    o.budget_key,
                    "Name of the shared budget (default: from the base URL and a hash of the "
                    "API key)");
    cmd->add_flag("--redis-optional",
                  o.redis_optional,
                  "Run on the local limits when Redis cannot be reached at start, instead of "
                  "failing");
    cmd->add_option("--tiers",
                    o.tiers_file,
                    "TOML file of tiers (format of configs/tiers.toml) added to the built-in "
                    "ones; a tier of the same name replaces the built-in one");
    cmd->add_flag("--no-adaptive",
                  o.no_adaptive,
                  "With no limit known, do not find the rate from 429s that carry neither "
                  "x-ratelimit headers nor a retry hint");
    // One value per --endpoint, as for --header.
    cmd->add_option("--endpoint",
                    o.endpoints,
                    "One of several endpoints, repeatable: NAME=URL[,api_key_env=VAR][,rpm=N]"
                    "[,tpm=N][,tier=T][,weight=W][,models=A|B] (replaces the config's "
                    "[[endpoints]]; see docs/endpoints.md)")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

// ... the engine, the mock and what is printed ...
void add_engine_flags(CLI::App* cmd, run_options& o) {
    cmd->add_option("--threads",
                    o.threads,
                    "Event loops, each with its own share of connections and limits (default 1)")
        ->check(CLI::Range(1u, 64u).description(""));
    cmd->add_option(
        "--max-attempts", o.max_attempts, "Attempts per request, first included (default 5)");
    cmd->add_option("--retry-budget",
                    o.retry_budget,
                    "Retries of failures allowed per request sent, over 10 s, plus 10 a second "
                    "(default 0.2); 0: none (429s are still waited out)");
    cmd->add_option("--request-timeout-ms",
                    o.request_timeout_ms,
                    "Timeout of one attempt: connect, TLS handshake, request and whole answer "
                    "(default 600000)");
    cmd->add_option("--stream-idle-timeout-ms",
                    o.stream_idle_timeout_ms,
                    "Longest pause between the events of a streamed answer (default 60000)");
    cmd->add_option("--deadline-ms",
                    o.deadline_ms,
                    "Deadline of each request, all attempts, backoff and server hints included "
                    "(default 0: none)");
    cmd->add_flag("--mock", o.mock, "Run against the embedded mock server on a loopback port");
    cmd->add_option(
        "--mock-latency-ms", o.mock_latency_ms, "Latency of the embedded mock's answers");
    cmd->add_option("--summary", o.summary_file, "Also write the summary as JSON to this file");
    cmd->add_option("--metrics-listen",
                    o.metrics_listen,
                    "Serve Prometheus metrics on http://ADDRESS/metrics while the job runs, as "
                    "127.0.0.1:9464 (port 0: a free one, printed on stderr)")
        ->type_name("IP:PORT");
    cmd->add_flag("-q,--quiet", o.quiet, "Print no progress and no summary");
    cmd->add_option("--model", o.model, "Model of {\"prompt\": ...} lines that name none");
    cmd->add_option("--system", o.system, "System message put before every prompt line");
}

// ... and how the job reads, checks and writes.
void add_job_flags(CLI::App* cmd, run_options& o) {
    cmd->add_flag("--dry-run",
                  o.dry_run,
                  "Read and validate the input, print the plan (tokens, time, cost); send nothing");
    cmd->add_option("--shard",
                    o.shard,
                    "Only shard K of N (as 2/3, counted from 1): the lines whose custom_id "
                    "hashes there (FNV-1a 64 mod N; see docs/scale-out.md); give each shard its "
                    "own -o")
        ->type_name("K/N");
    cmd->add_flag(
        "--strict", o.strict, "Validate every line first; any bad line fails the run unsent");
    cmd->add_flag("--retry-failed",
                  o.retry_failed,
                  "Resume: redo the error records already in the output too");
    cmd->add_option(
        "--errors", o.errors_file, "Also write failed requests and bad lines to this file");
    cmd->add_flag("--ordered", o.ordered, "Write records in input order (bounded window)");
    cmd->add_option("--reorder-window",
                    o.reorder_window,
                    "With --ordered: records held waiting for an earlier one (default 4096)")
        ->check(CLI::PositiveNumber.description(""));
    cmd->add_option("--flush-interval-ms",
                    o.flush_interval_ms,
                    "Write finished records to the output within this many ms (default 10)");
    cmd->add_option(
        "--fsync-interval-ms",
        o.fsync_interval_ms,
        "fsync the output this often, and at the end; 0: only at the end (default 1000)");
    cmd->add_option("--grace-period",
                    o.grace_period_s,
                    "Seconds requests in flight may take after SIGINT/SIGTERM (default 30)")
        ->check(CLI::NonNegativeNumber.description(""));
    cmd->add_option("--max-duration",
                    o.max_duration_s,
                    "Job deadline in seconds: then stop as on SIGTERM, resumable (default 0: none)")
        ->check(CLI::NonNegativeNumber.description(""));
    cmd->add_option("--progress-interval",
                    o.progress_interval_s,
                    "Seconds between progress lines when stderr is not a terminal (default 10)")
        ->check(CLI::PositiveNumber.description(""));
}

// The job's own figures after the engine's: where a scraper sees how far the input is read.
void append_job_metrics(const batch_run& job, std::string& out) {
    auto counter = [&](const char* name, const char* help, std::uint64_t v, const char* type) {
        out += "# HELP sluice_batch_";
        out += name;
        out += ' ';
        out += help;
        out += "\n# TYPE sluice_batch_";
        out += name;
        out += ' ';
        out += type;
        out += "\nsluice_batch_";
        out += name;
        out += ' ';
        out += std::to_string(v);
        out += '\n';
    };
    const batch_report r = job.report();
    counter("lines_read_total",
            "Input lines read by this run (blank lines not counted).",
            r.lines,
            "counter");
    counter("bad_lines_total",
            "Input lines recorded as errors without a request (bad lines, repeated ids).",
            r.bad_lines,
            "counter");
    counter("skipped_lines_total",
            "Input lines skipped because the output already held their record (resume).",
            r.skipped,
            "counter");
    if (const auto total = job.total_lines())
        counter("input_lines",
                "Input lines of this run's shard, found by the planning pass.",
                *total,
                "gauge");
}

// --metrics-listen: bound before any file is touched, so a bad address costs nothing; serves
// once the job exists.
bool make_metrics(std::optional<metrics_listener>& metrics,
                  asio::io_context& ioc,
                  const run_options& o,
                  const std::optional<batch_run>& job) {
    if (o.metrics_listen.empty())
        return true;
    try {
        metrics.emplace(ioc, o.metrics_listen, [&job] {
            std::string text;
            if (job) {
                render_prometheus(job->stats(), text);
                append_job_metrics(*job, text);
            }
            return text;
        });
    } catch (const std::exception& e) {
        std::cerr << "sluice run: --metrics-listen: " << e.what() << '\n';
        return false;
    }
    std::cerr << "sluice run: metrics on http://" << metrics->local_endpoint() << "/metrics\n";
    return true;
}

constexpr const char* run_footer = R"(Environment:
  OPENAI_API_KEY      the API key (another variable with --api-key-env or api_key_env)
  OPENAI_BASE_URL     the endpoint, when --base-url and the config file name none
  OPENAI_ORG_ID       sent as OpenAI-Organization
  OPENAI_PROJECT_ID   sent as OpenAI-Project
  SLUICE_DEADLINE_MS  --deadline-ms, when the flag is not given (outranks the config file)
  SLUICE_MAX_DURATION --max-duration, likewise
  AZURE_OPENAI_API_KEY  the key of an Azure endpoint (api-key header)
  OPENAI_API_VERSION  Azure's api-version, when --api-version and the config name none
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY  the proxy, as curl reads them (docs/endpoints.md)

Exit status:
  0  every line has a success record       4  input or output could not be read/written
  1  some lines have error records         5  --strict or --dry-run found bad lines
  2  bad flags, config or environment,     6  stopped: the server refused the key (401)
     the TLS certificate was rejected or
     the proxy refused the tunnel
  3  stopped: quota exhausted              7  stopped by --max-duration (resume to finish)
                                           130  stopped by SIGINT/SIGTERM (resume to finish)

Options are documented in docs/options.md; precedence: defaults < config < environment < flags.)";

} // namespace

int run(const run_options& flags) {
    run_options o = flags;
    std::string key_env;
    std::optional<batch_options> bo = configure(o, key_env);
    if (!bo)
        return exit_usage;
    if (o.dry_run)
        return dry_run(o, *bo);
    if (!usable(o))
        return exit_usage;

    std::optional<embedded_mock> mock;
    if (!point_engine(o.mock, o.mock_latency_ms, key_env, bo->engine, mock, "sluice run"))
        return exit_usage;
    // With --mock both ends of every connection are in this process.
    if (!ensure_open_files(bo->engine.pool.max_connections * (mock ? 2 : 1) + reserved_descriptors,
                           "sluice run"))
        return exit_usage;
    if (!check_redis(bo->engine.shared_budget))
        return exit_usage;
    // One thread runs this loop and alone touches its sockets; other threads (engine shards,
    // the resolver's) only post to it. So the reactor's per-descriptor locks can go; the
    // scheduler keeps its lock for those posts.
    asio::io_context ioc(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    std::optional<batch_run> job;
    std::optional<metrics_listener> metrics;
    if (!make_metrics(metrics, ioc, o, job))
        return exit_usage;
    if (const int status = make_job(job, ioc, o, std::move(*bo)); status != exit_ok)
        return status;

    std::optional<progress_display> progress;
    make_progress(progress, o, ioc, *job);
    signal_stop signals(ioc, *job, progress, o.grace_period_s, o.max_duration_s);
    asio::post(ioc, [&] {
        if (progress)
            progress->start();
        if (metrics)
            metrics->start();
        job->start([&] {
            signals.cancel();
            if (progress)
                progress->stop();
            if (metrics)
                metrics->stop();
        });
    });
    ioc.run();
    return finish(o, *job, key_env, signals.deadline_passed());
}

void add_run_command(CLI::App& app) {
    auto opts = std::make_shared<run_options>();
    CLI::App* cmd = app.add_subcommand(
        "run", "Send every request of a Batch API JSONL file and write one result line for each");
    add_endpoint_flags(cmd, *opts);
    add_engine_flags(cmd, *opts);
    add_job_flags(cmd, *opts);
    cmd->footer(run_footer);
    cmd->callback([opts, cmd] {
        for (const char* flag : {"--threads",
                                 "--ordered",
                                 "--reorder-window",
                                 "--flush-interval-ms",
                                 "--fsync-interval-ms",
                                 "--grace-period",
                                 "--max-duration",
                                 "--progress-interval",
                                 "--model",
                                 "--system",
                                 "--metrics-listen"})
            if (cmd->count(flag) > 0)
                opts->given.insert(flag);
        const int code = run(*opts);
        if (code != exit_ok)
            throw command_exit{code};
    });
}

} // namespace sluice::cli
