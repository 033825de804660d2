#include "cli/bench_options.hpp"

#include "cli/run_options.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string_view>

namespace sluice::cli {

namespace {

std::chrono::milliseconds seconds_flag(double s, const char* flag) {
    if (!(s >= 0) || std::isinf(s))
        throw std::invalid_argument(std::string(flag) + ": must be a number of seconds >= 0");
    return std::chrono::milliseconds(std::llround(s * 1000));
}

// The engine: the endpoint flags and the environment as `sluice run` reads them, then what a
// benchmark needs unless told otherwise (see bench_engine_options).
dispatcher_options engine_options(const bench_options& o, std::string* api_key_env) {
    run_options ro;
    ro.base_url = o.base_url;
    ro.api_key_env = o.api_key_env;
    ro.ca_file = o.ca_file;
    ro.insecure = o.insecure;
    ro.headers = o.headers;
    ro.api_style = o.api_style;
    ro.api_version = o.api_version;
    ro.proxy = o.proxy;
    ro.no_proxy = o.no_proxy;
    ro.rpm = o.rpm;
    ro.tpm = o.tpm;
    ro.max_attempts = o.max_attempts;
    ro.request_timeout_ms = o.request_timeout_ms;
    ro.stream_idle_timeout_ms = o.stream_idle_timeout_ms;
    dispatcher_options e = build_options(ro, api_key_env);
    const dispatcher_options bench = bench_engine_options();
    e.limits.learn_from_headers = false;
    e.retry.max_attempts = o.max_attempts.value_or(1);
    // Retries asked for wait out a 429's hint as `sluice run` does; without them a 429 is
    // counted and holds nothing.
    if (e.retry.max_attempts <= 1)
        e.retry.max_retry_after = bench.retry.max_retry_after;
    e.pool.max_connections = o.max_connections;
    e.pool.reuse_quiet_period = bench.pool.reuse_quiet_period;
    e.fields = bench.fields;
    e.streamed_body = bench.streamed_body;
    return e;
}

arrivals_options load_options(const bench_options& o) {
    arrivals_options a;
    a.rate = o.rate.value_or(0);
    a.concurrency = o.concurrency.value_or(0);
    // --burstiness alone means gamma gaps, as vLLM draws them.
    a.process = o.arrivals     ? parse_arrival_process(*o.arrivals)
                : o.burstiness ? arrival_process::gamma
                               : arrival_process::poisson;
    a.burstiness = o.burstiness.value_or(1);
    if (o.burstiness && a.process != arrival_process::gamma)
        throw std::invalid_argument("--burstiness: applies to --arrivals gamma only");
    a.seed = o.seed;
    a.max_duration = seconds_flag(o.duration_s, "--duration");
    // vLLM's 1000 prompts, unless a duration alone bounds the run.
    a.max_requests = o.requests.value_or(a.max_duration.count() > 0 ? 0 : 1000);
    return a;
}

// One level of `--sweep`: a positive finite number, whole for a concurrency.
double sweep_level_value(std::string_view word, sweep_parameter p) {
    double v = 0;
    const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
    const bool number = ec == std::errc() && end == word.data() + word.size();
    if (!number || !(v > 0) || std::isinf(v))
        throw std::invalid_argument("--sweep: '" + std::string(word) +
                                    "' is not a positive number");
    if (p == sweep_parameter::concurrency && v != std::floor(v))
        throw std::invalid_argument("--sweep: concurrency '" + std::string(word) +
                                    "' is not a whole number");
    return v;
}

std::vector<double> sweep_levels(std::string_view list, sweep_parameter p) {
    std::vector<double> levels;
    std::size_t from = 0;
    while (true) {
        const std::size_t comma = list.find(',', from);
        levels.push_back(sweep_level_value(list.substr(from, comma - from), p));
        if (comma == std::string_view::npos)
            break;
        from = comma + 1;
    }
    if (levels.size() < 2)
        throw std::invalid_argument("--sweep: needs at least two levels (one is a plain run)");
    return levels;
}

} // namespace

std::optional<bench_sweep> parse_sweep(const bench_options& o) {
    if (o.sweep.empty())
        return std::nullopt;
    const std::string_view text = o.sweep;
    const std::size_t eq = text.find('=');
    const std::string_view key = text.substr(0, eq);
    bench_sweep s;
    if (eq != std::string_view::npos && key == "rate")
        s.parameter = sweep_parameter::rate;
    else if (eq != std::string_view::npos && key == "concurrency")
        s.parameter = sweep_parameter::concurrency;
    else
        throw std::invalid_argument("--sweep: '" + o.sweep +
                                    "' is not rate=R1,R2,... or concurrency=C1,C2,...");
    s.levels = sweep_levels(text.substr(eq + 1), s.parameter);
    if (s.parameter == sweep_parameter::rate && o.rate)
        throw std::invalid_argument("--sweep rate=...: cannot be combined with --rate");
    if (s.parameter == sweep_parameter::concurrency && o.concurrency)
        throw std::invalid_argument(
            "--sweep concurrency=...: cannot be combined with --concurrency");
    return s;
}

void apply_sweep_level(loadgen_options& lo, sweep_parameter p, double value) {
    if (p == sweep_parameter::rate)
        lo.load.rate = value;
    else
        lo.load.concurrency = static_cast<std::size_t>(value);
}

arrival_process parse_arrival_process(const std::string& name) {
    if (name == "constant")
        return arrival_process::constant;
    if (name == "poisson")
        return arrival_process::poisson;
    if (name == "gamma")
        return arrival_process::gamma;
    throw std::invalid_argument("--arrivals: '" + name +
                                "' is not one of constant, poisson, gamma");
}

loadgen_options make_loadgen_options(const bench_options& o, std::string* api_key_env) {
    loadgen_options lo;
    lo.engine = engine_options(o, api_key_env);
    lo.load = load_options(o);
    lo.prompts.input_file = o.input;
    lo.prompts.sample = o.sample;
    check_header_flag("--model", o.model);
    lo.prompts.model = o.model;
    lo.prompts.system = o.system;
    lo.prompts.input_tokens = parse_token_range(o.input_tokens, "--input-tokens");
    lo.prompts.output_tokens = parse_token_range(o.output_tokens, "--output-tokens");
    lo.prompts.ignore_eos = o.ignore_eos;
    lo.prompts.stream = o.stream;
    lo.warmup = seconds_flag(o.warmup_s, "--warmup");
    if (o.busy_wait_us)
        lo.busy_wait = std::chrono::microseconds(*o.busy_wait_us);
    lo.slo = parse_slo(o.slo);
    return lo;
}

} // namespace sluice::cli
