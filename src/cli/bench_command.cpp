#include "cli/bench_command.hpp"

#include "cli/bench_progress.hpp"
#include "cli/embedded_mock.hpp"
#include "cli/run_options.hpp"

#include <sluice/harness/report.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <csignal>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

namespace sluice::cli {

namespace asio = boost::asio;

namespace {

void log_to_stderr(log_level, std::string_view message) {
    std::string line = "sluice bench: ";
    line.append(message);
    line += '\n';
    std::cerr << line << std::flush;
}

// The shared wiring (the embedded mock with --mock, the key check), plus what only a benchmark
// needs: a model for synthetic prompts. False, having said why, when the run cannot start.
bool point_engine(const bench_options& o,
                  const std::string& key_env,
                  loadgen_options& lo,
                  std::optional<embedded_mock>& mock) {
    if (o.mock && lo.prompts.model.empty())
        lo.prompts.model = "gpt-4o-mini";
    if (lo.prompts.input_file.empty() && lo.prompts.model.empty()) {
        std::cerr << "sluice bench: --model is required for synthetic prompts\n";
        return false;
    }
    return cli::point_engine(o.mock, o.mock_latency_ms, key_env, lo.engine, mock, "sluice bench");
}

// The generator, built into the caller's optional (it is not movable); exit_ok or why not.
int make_generator(std::optional<load_generator>& gen,
                   asio::io_context& ioc,
                   const loadgen_options& lo) {
    try {
        gen.emplace(ioc.get_executor(), lo);
    } catch (const std::invalid_argument& e) {
        std::cerr << "sluice bench: " << e.what() << '\n';
        return exit_usage;
    } catch (const boost::system::system_error& e) {
        std::cerr << "sluice bench: " << e.what() << '\n';
        return exit_usage; // the TLS context (a bad --ca-file)
    } catch (const std::exception& e) {
        std::cerr << "sluice bench: " << e.what() << '\n';
        return exit_io; // the prompt file
    }
    const prompt_source& p = gen->prompts();
    if (p.bad_lines() > 0)
        std::cerr << "sluice bench: skipped " << p.bad_lines() << " unusable lines of "
                  << lo.prompts.input_file << " (first: " << p.first_bad_line() << ")\n";
    return exit_ok;
}

// SIGINT/SIGTERM: the first stops sending and lets the requests on the wire finish (they
// are recorded); the second cancels them. The report is printed either way.
class bench_signals {
public:
    bench_signals(asio::io_context& ioc, load_generator& gen, bench_progress* progress)
        : signals_(ioc, SIGINT, SIGTERM)
        , gen_(gen)
        , progress_(progress) {
        watch();
    }
    void cancel() { signals_.cancel(); }
    bool caught() const noexcept { return count_ > 0; }

private:
    void watch() {
        signals_.async_wait([this](boost::system::error_code ec, int) {
            if (ec)
                return;
            if (progress_)
                progress_->clear();
            if (count_++ == 0) {
                std::cerr << "sluice bench: stopping; waiting for the requests in flight "
                             "(again to cancel them)\n";
                gen_.stop(false);
            } else {
                std::cerr << "sluice bench: cancelling the requests in flight\n";
                gen_.stop(true);
            }
            watch();
        });
    }

    asio::signal_set signals_;
    load_generator& gen_;
    bench_progress* progress_;
    int count_ = 0;
};

std::string local_date() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
    return buf;
}

report_context make_context(const bench_options& o, const load_generator& gen) {
    report_context ctx;
    ctx.backend = o.backend;
    ctx.model_id = gen.options().prompts.model;
    ctx.date = local_date();
    ctx.load = o.concurrency ? gen.options().load : [&] {
        arrivals_options a = gen.options().load;
        a.concurrency = 0; // the cap was the connections, not a concurrency asked for
        return a;
    }();
    ctx.extras = gen.results().extras();
    ctx.extras.stream = gen.options().prompts.stream;
    ctx.extras.input = gen.prompts().describe();
    ctx.extras.warmup = gen.options().warmup;
    return ctx;
}

bool write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
        std::cerr << "sluice bench: cannot write " << path << '\n';
        return false;
    }
    return true;
}

// The report on stdout and in the files; then the exit status for how the run ended.
int finish(const bench_options& o, const load_generator& gen, error_code end, bool signalled) {
    const report_context ctx = make_context(o, gen);
    const recorder& rec = gen.results().rec();
    std::cout << report_text(rec, ctx) << std::flush;
    bool written = true;
    if (!o.json_file.empty())
        written = write_file(o.json_file, report_json(rec, ctx) + "\n") && written;
    if (!o.html_file.empty())
        written = write_file(o.html_file, report_html(rec, ctx)) && written;
    if (end == errc::unauthorized) {
        std::cerr << "sluice bench: the server refused the API key (HTTP 401); stopped\n";
        return exit_auth;
    }
    if (end == errc::quota_exhausted) {
        std::cerr << "sluice bench: the quota is exhausted; stopped\n";
        return exit_quota;
    }
    if (end == errc::certificate_rejected) {
        std::cerr << "sluice bench: the server's TLS certificate was rejected (--ca-file)\n";
        return exit_usage;
    }
    if (signalled)
        return exit_interrupted;
    return written ? exit_ok : exit_io;
}

} // namespace

int bench(const bench_options& o) {
    loadgen_options lo;
    std::string key_env;
    try {
        lo = make_loadgen_options(o, &key_env);
    } catch (const std::exception& e) {
        std::cerr << "sluice bench: " << e.what() << '\n';
        return exit_usage;
    }
    lo.engine.log.sink = log_to_stderr;
    std::optional<embedded_mock> mock;
    if (!point_engine(o, key_env, lo, mock))
        return exit_usage;
    asio::io_context ioc(1);
    std::optional<load_generator> gen;
    if (const int status = make_generator(gen, ioc, lo); status != exit_ok)
        return status;

    std::optional<bench_progress> progress;
    if (!o.quiet) {
        progress.emplace(STDERR_FILENO,
                         ::isatty(STDERR_FILENO) == 1,
                         std::chrono::milliseconds(std::llround(o.progress_interval_s * 1000)));
        gen->on_progress([&](const loadgen_progress& p) { progress->update(p); });
    }
    bench_signals signals(ioc, *gen, progress ? &*progress : nullptr);
    error_code end;
    gen->async_run([&](error_code ec) {
        end = ec;
        signals.cancel();
    });
    ioc.run();
    if (progress)
        progress->finish();
    return finish(o, *gen, end, signals.caught());
}

} // namespace sluice::cli
