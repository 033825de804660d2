#pragma once

#include <sluice/harness/sweep_report.hpp>
#include <sluice/loadgen/load_generator.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// The options of `sluice bench` and how they become the load generator's.

namespace sluice::cli {

/// Options of `sluice bench`, bound to its flags (docs/bench.md lists them with defaults).
struct bench_options {
    // The endpoint, as `sluice run` takes it (flags over environment over defaults).
    std::optional<std::string> base_url;
    std::optional<std::string> api_key_env;
    std::optional<std::string> ca_file;
    bool insecure = false;
    /// `--api-style` ("openai", "azure", "auto") and `--api-version`.
    std::optional<std::string> api_style;
    std::optional<std::string> api_version;
    /// `--proxy URL` ("" for none) and `--no-proxy`; over the environment's and the file's.
    std::optional<std::string> proxy;
    bool no_proxy = false;
    /// `--header 'Name: value'`, as `sluice run` takes them.
    std::vector<std::string> headers;
    /// Model of synthetic prompts and of prompt lines that name none.
    std::string model;
    /// System message of `{"prompt": ...}` lines.
    std::string system;
    /// Name of the server under test, echoed in the report ("vllm", "llama.cpp").
    std::string backend = "openai-chat";

    // The load.
    std::optional<std::size_t> concurrency;
    /// Empty: not given (0, unpaced); kept apart from 0 so that `--sweep rate=` can refuse it.
    std::optional<double> rate;
    std::optional<std::string> arrivals;
    std::optional<double> burstiness;
    std::optional<std::uint64_t> requests;
    double duration_s = 0;
    double warmup_s = 0;
    std::uint64_t seed = 0;
    /// Empty: loadgen_options' default.
    std::optional<std::int64_t> busy_wait_us;
    /// `--sweep rate=R1,R2,...` or `concurrency=C1,C2,...`; empty: one run.
    std::string sweep;

    // The prompts.
    std::string input;
    bool sample = false;
    std::string input_tokens = "1024";
    std::string output_tokens = "128";
    bool ignore_eos = false;
    bool stream = true;

    // The figures.
    std::string slo;
    std::string json_file;
    std::string html_file;

    // The engine: limits and retries off unless asked for.
    std::optional<double> rpm;
    std::optional<double> tpm;
    std::optional<unsigned> max_attempts;
    std::size_t max_connections = 256;
    std::optional<std::uint64_t> request_timeout_ms;
    std::optional<std::uint64_t> stream_idle_timeout_ms;

    /// Run against the embedded mock server (HTTPS on a loopback port), answering after
    /// `mock_latency_ms`.
    bool mock = false;
    std::uint64_t mock_latency_ms = 0;

    bool quiet = false;
    /// Seconds between progress lines when stderr is not a terminal.
    double progress_interval_s = 5;
};

/// The load generator's options for `o`: the engine's from the environment and the endpoint
/// flags (through `sluice run`'s build_options), then the benchmark's own defaults for what
/// the flags leave (no limits, one attempt). Throws std::invalid_argument (and config_error)
/// naming the flag. `api_key_env` receives the variable the key was looked up in.
loadgen_options make_loadgen_options(const bench_options& o, std::string* api_key_env = nullptr);

/// What `--sweep` varies and its levels, in the order they are run.
struct bench_sweep {
    sweep_parameter parameter = sweep_parameter::concurrency;
    /// At least two, each positive (whole numbers for concurrency).
    std::vector<double> levels;
};

/// The sweep of `o.sweep` ("rate=5,10,20", "concurrency=1,4,16"); empty when it is empty.
/// Throws std::invalid_argument naming `--sweep` for an unknown key, fewer than two levels, a
/// level that is not a positive number (a whole one for concurrency), or a conflict with the
/// flag the sweep sets (`--rate` for rate=, `--concurrency` for concurrency=).
std::optional<bench_sweep> parse_sweep(const bench_options& o);

/// `lo` set to run at `value` of `p`: the open loop's rate, or the concurrency.
void apply_sweep_level(loadgen_options& lo, sweep_parameter p, double value);

/// The arrival process named by `--arrivals` ("constant", "poisson", "gamma"). Throws
/// std::invalid_argument for another name.
arrival_process parse_arrival_process(const std::string& name);

} // namespace sluice::cli
