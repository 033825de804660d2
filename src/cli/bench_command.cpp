#include "cli/bench_command.hpp"

#include "cli/bench_progress.hpp"
#include "cli/embedded_mock.hpp"
#include "cli/open_files.hpp"
#include "cli/private_file.hpp"
#include "cli/run_options.hpp"

#include <sluice/harness/report.hpp>
#include <sluice/harness/sweep_report.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <csignal>
#include <ctime>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

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
// are recorded); the second cancels them. The report is printed either way. A sweep points it
// at each level's generator in turn; it skips the remaining levels once caught().
class bench_signals {
public:
    bench_signals(asio::io_context& ioc, bench_progress* progress, std::string_view stop_note)
        : signals_(ioc, SIGINT, SIGTERM)
        , progress_(progress)
        , stop_note_(stop_note) {
        watch();
    }
    /// The generator a signal stops; null: none (between the levels of a sweep).
    void target(load_generator* gen) noexcept { gen_ = gen; }
    void cancel() { signals_.cancel(); }
    bool caught() const noexcept { return count_ > 0; }

private:
    void watch() {
        signals_.async_wait([this](boost::system::error_code ec, int) {
            if (ec)
                return;
            if (progress_)
                progress_->clear();
            const bool at_once = count_++ > 0;
            if (!at_once)
                std::cerr << "sluice bench: stopping" << stop_note_
                          << "; waiting for the requests in flight (again to cancel them)\n";
            else
                std::cerr << "sluice bench: cancelling the requests in flight\n";
            if (gen_)
                gen_->stop(at_once);
            watch();
        });
    }

    asio::signal_set signals_;
    load_generator* gen_ = nullptr;
    bench_progress* progress_;
    std::string_view stop_note_;
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

// The report's context of `gen`'s run, whose figures are `results` (the generator's own, or a
// copy that outlives it). `concurrency_asked`: the concurrency came from a flag, not the cap
// of the connections.
report_context make_context(const bench_options& o,
                            const load_generator& gen,
                            const bench_results& results,
                            bool concurrency_asked) {
    report_context ctx;
    ctx.backend = o.backend;
    ctx.model_id = gen.options().prompts.model;
    ctx.date = local_date();
    ctx.load = gen.options().load;
    if (!concurrency_asked)
        ctx.load.concurrency = 0; // the cap was the connections, not a concurrency asked for
    ctx.extras = results.extras();
    ctx.extras.stream = gen.options().prompts.stream;
    ctx.extras.input = gen.prompts().describe();
    ctx.extras.warmup = gen.options().warmup;
    return ctx;
}

bool write_file(const std::string& path, const std::string& text) {
    if (!write_private_file(path, text)) {
        std::cerr << "sluice bench: cannot write " << path << '\n';
        return false;
    }
    return true;
}

// The exit status for how the run (or the sweep) ended, once its reports are out.
int end_status(error_code end, bool signalled, bool written) {
    if (end == errc::unauthorized) {
        std::cerr << "sluice bench: the server refused the API key (HTTP 401); stopped\n";
        return exit_auth;
    }
    if (end == errc::quota_exhausted) {
        std::cerr << "sluice bench: the quota is exhausted; stopped\n";
        return exit_quota;
    }
    if (end == errc::certificate_rejected) {
        std::cerr << "sluice bench: the server's TLS certificate was rejected (why is said "
                     "above); stopped: fix the certificate or trust its CA with --ca-file\n";
        return exit_usage;
    }
    if (end == errc::proxy_refused) {
        std::cerr << "sluice bench: the proxy refused the tunnel to the server (its answer is "
                     "said above); stopped: fix the proxy settings (--proxy, HTTPS_PROXY, "
                     "NO_PROXY)\n";
        return exit_usage;
    }
    if (signalled)
        return exit_interrupted;
    return written ? exit_ok : exit_io;
}

bool is_fatal_end(error_code end) {
    return end == errc::unauthorized || end == errc::quota_exhausted ||
           end == errc::certificate_rejected || end == errc::proxy_refused;
}

// The report on stdout and in the files; then the exit status for how the run ended.
int finish(const bench_options& o, const load_generator& gen, error_code end, bool signalled) {
    const report_context ctx = make_context(o, gen, gen.results(), o.concurrency.has_value());
    const recorder& rec = gen.results().rec();
    std::cout << report_text(rec, ctx) << std::flush;
    bool written = true;
    if (!o.json_file.empty())
        written = write_file(o.json_file, report_json(rec, ctx) + "\n") && written;
    if (!o.html_file.empty())
        written = write_file(o.html_file, report_html(rec, ctx)) && written;
    return end_status(end, signalled, written);
}

std::optional<bench_progress> make_progress(const bench_options& o) {
    std::optional<bench_progress> progress;
    if (!o.quiet)
        progress.emplace(STDERR_FILENO,
                         ::isatty(STDERR_FILENO) == 1,
                         std::chrono::milliseconds(std::llround(o.progress_interval_s * 1000)));
    return progress;
}

// One thread runs the loop and alone touches its sockets (the resolver's thread only posts to
// it), as in `sluice run`: the reactor's per-descriptor locks can go.
int run_once(const bench_options& o, const loadgen_options& lo) {
    asio::io_context ioc(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    std::optional<load_generator> gen;
    if (const int status = make_generator(gen, ioc, lo); status != exit_ok)
        return status;
    std::optional<bench_progress> progress = make_progress(o);
    if (progress)
        gen->on_progress([&](const loadgen_progress& p) { progress->update(p); });
    bench_signals signals(ioc, progress ? &*progress : nullptr, "");
    signals.target(&*gen);
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

// A sweep: the levels one after another on one loop, each a fresh generator (its own engine,
// connections and warm-up). A level's figures are copied out before its generator goes, so
// that the reports at the end can point at them. A signal or a fatal end skips what is left.
class sweep_run {
public:
    sweep_run(const bench_options& o, const loadgen_options& lo, const bench_sweep& sweep)
        : o_(o)
        , lo_(lo)
        , sweep_(sweep)
        , progress_(make_progress(o))
        , signals_(ioc_, progress_ ? &*progress_ : nullptr, "; the levels left are skipped") {}

    int run() {
        if (const int status = start(0); status != exit_ok)
            return status;
        ioc_.run();
        if (progress_)
            progress_->finish();
        return finish();
    }

private:
    int start(std::size_t i) {
        loadgen_options lo = lo_;
        apply_sweep_level(lo, sweep_.parameter, sweep_.levels[i]);
        if (const int status = make_generator(gen_, ioc_, lo); status != exit_ok)
            return status;
        if (progress_) {
            progress_->start_level(level_label(i));
            gen_->on_progress([this](const loadgen_progress& p) { progress_->update(p); });
        }
        signals_.target(&*gen_);
        gen_->async_run([this, i](error_code ec) { on_level_end(i, ec); });
        return exit_ok;
    }

    std::string level_label(std::size_t i) const {
        return "level " + std::to_string(i + 1) + "/" + std::to_string(sweep_.levels.size()) + " " +
               sweep_level_name(sweep_.parameter, sweep_.levels[i]);
    }

    void on_level_end(std::size_t i, error_code ec) {
        end_ = ec;
        results_.push_back(gen_->results());
        const bool concurrency_asked =
            o_.concurrency.has_value() || sweep_.parameter == sweep_parameter::concurrency;
        levels_.push_back({sweep_.levels[i],
                           &results_.back().rec(),
                           make_context(o_, *gen_, results_.back(), concurrency_asked)});
        if (progress_)
            progress_->clear();
        std::cout << report_sweep_line(sweep_.parameter, levels_.back(), i, sweep_.levels.size())
                  << std::flush;
        // The generator is done with once its handler has returned, not inside it.
        asio::post(ioc_, [this, i] { next(i + 1); });
    }

    void next(std::size_t i) {
        signals_.target(nullptr);
        gen_.reset();
        if (i == sweep_.levels.size() || signals_.caught() || is_fatal_end(end_)) {
            signals_.cancel();
            return;
        }
        if (const int status = start(i); status != exit_ok) {
            setup_status_ = status;
            signals_.cancel();
        }
    }

    int finish() {
        std::cout << report_sweep_text(sweep_.parameter, levels_) << std::flush;
        bool written = true;
        if (!o_.json_file.empty())
            written =
                write_file(o_.json_file, report_sweep_json(sweep_.parameter, levels_) + "\n") &&
                written;
        if (!o_.html_file.empty())
            written =
                write_file(o_.html_file, report_sweep_html(sweep_.parameter, levels_)) && written;
        if (setup_status_ != exit_ok)
            return setup_status_;
        return end_status(end_, signals_.caught(), written);
    }

    const bench_options& o_;
    const loadgen_options& lo_;
    const bench_sweep& sweep_;
    asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO}; // as run_once's
    std::optional<bench_progress> progress_;
    bench_signals signals_;
    std::optional<load_generator> gen_;
    std::deque<bench_results> results_; // a deque: levels_ points into it as it grows
    std::vector<sweep_level> levels_;
    error_code end_;
    int setup_status_ = exit_ok;
};

} // namespace

int bench(const bench_options& o) {
    loadgen_options lo;
    std::optional<bench_sweep> sweep;
    std::string key_env;
    try {
        sweep = parse_sweep(o);
        lo = make_loadgen_options(o, &key_env);
    } catch (const std::exception& e) {
        std::cerr << "sluice bench: " << e.what() << '\n';
        return exit_usage;
    }
    lo.engine.log.sink = log_to_stderr;
    std::optional<embedded_mock> mock;
    if (!point_engine(o, key_env, lo, mock))
        return exit_usage;
    if (!ensure_open_files(lo.engine.pool.max_connections * (mock ? 2 : 1) + reserved_descriptors,
                           "sluice bench"))
        return exit_usage;
    if (sweep)
        return sweep_run(o, lo, *sweep).run();
    return run_once(o, lo);
}

} // namespace sluice::cli
