// The flags of `sluice bench`, registered in the order --help lists them.
#include "cli/bench_command.hpp"
#include "cli/server_flags.hpp"

#include <memory>

namespace sluice::cli {

namespace {

void add_endpoint_flags(CLI::App* cmd, bench_options& o) {
    add_server_flags(cmd, o);
    cmd->add_option("--model", o.model, "Model of synthetic prompts and of lines naming none");
    cmd->add_option("--backend", o.backend, "Name of the server under test, for the report")
        ->capture_default_str();
}

void add_load_flags(CLI::App* cmd, bench_options& o) {
    cmd->add_option("-c,--concurrency",
                    o.concurrency,
                    "Most requests in flight: a closed loop, or the cap of --rate "
                    "(default --max-connections)")
        ->check(CLI::PositiveNumber.description(""));
    cmd->add_option("-r,--rate", o.rate, "Open loop: requests per second (default 0: unpaced)")
        ->check(CLI::NonNegativeNumber.description(""));
    cmd->add_option(
           "--arrivals", o.arrivals, "Gaps of the open loop: constant, poisson (default) or gamma")
        ->check(CLI::IsMember({"constant", "poisson", "gamma"}));
    cmd->add_option("--burstiness",
                    o.burstiness,
                    "Shape of gamma gaps (implies --arrivals gamma): <1 burstier, 1 Poisson")
        ->check(CLI::PositiveNumber.description(""));
    cmd->add_option("--sweep",
                    o.sweep,
                    "Run once per level, in order: rate=R1,R2,... or concurrency=C1,C2,... "
                    "(a table row per level)");
    cmd->add_option("-n,--requests",
                    o.requests,
                    "Requests recorded (default 1000, or no count limit with --duration)");
    cmd->add_option(
           "--duration", o.duration_s, "Send for at most this many seconds (default 0: no limit)")
        ->check(CLI::NonNegativeNumber.description(""));
    cmd->add_option(
           "--warmup", o.warmup_s, "Seconds of load at the start that are not recorded (default 0)")
        ->check(CLI::NonNegativeNumber.description(""));
    cmd->add_option("--seed", o.seed, "Seed of the arrivals and the prompts (default 0)");
    cmd->add_option("--busy-wait-us",
                    o.busy_wait_us,
                    "Open loop: poll, instead of a timer, for a request due sooner than this "
                    "(default 20; 0: always a timer)")
        ->check(CLI::NonNegativeNumber.description(""));
}

void add_prompt_flags(CLI::App* cmd, bench_options& o) {
    auto* input = cmd->add_option(
        "--input", o.input, "JSONL prompts in any form `sluice run` reads (default: synthetic)");
    cmd->add_flag("--sample", o.sample, "With --input: draw lines at random instead of in order")
        ->needs(input);
    cmd->add_option("--system", o.system, "System message of {\"prompt\": ...} lines");
    cmd->add_option("--input-tokens",
                    o.input_tokens,
                    "Synthetic prompt length in tokens, N or N-M (default 1024)")
        ->excludes(input);
    cmd->add_option(
           "--output-tokens", o.output_tokens, "Synthetic max_tokens, N or N-M (default 128)")
        ->excludes(input);
    cmd->add_flag("--ignore-eos",
                  o.ignore_eos,
                  "Synthetic: send \"ignore_eos\": true (vLLM: generate all max_tokens)")
        ->excludes(input);
    cmd->add_flag("--stream,!--no-stream",
                  o.stream,
                  "Stream answers (default; TTFT, ITL, TPOT) or not (--no-stream: E2EL only)");
}

void add_output_flags(CLI::App* cmd, bench_options& o) {
    cmd->add_option("--slo",
                    o.slo,
                    "Goodput objectives in ms, e.g. ttft=500,tpot=50,e2e=5000 (request_goodput)");
    cmd->add_option("--json", o.json_file, "Write the report as JSON (vLLM key names) here");
    cmd->add_option("--html", o.html_file, "Write the report as one self-contained HTML page here");
    cmd->add_option("--rpm", o.rpm, "Requests per minute limit (default none)");
    cmd->add_option("--tpm", o.tpm, "Tokens per minute limit (default none)");
    cmd->add_option("--max-attempts",
                    o.max_attempts,
                    "Attempts per request, first included (default 1: no retries)")
        ->check(CLI::PositiveNumber.description(""));
    cmd->add_option("--max-connections",
                    o.max_connections,
                    "Most connections, the cap on requests in flight without -c (default 256)")
        ->check(CLI::PositiveNumber.description(""));
    cmd->add_option("--request-timeout-ms",
                    o.request_timeout_ms,
                    "Timeout of one request, connect to the end of the answer (default 600000)");
    cmd->add_option("--stream-idle-timeout-ms",
                    o.stream_idle_timeout_ms,
                    "Longest pause between the events of a streamed answer (default 60000)");
    cmd->add_flag("--mock", o.mock, "Run against the embedded mock server on a loopback port");
    cmd->add_option(
        "--mock-latency-ms", o.mock_latency_ms, "Latency of the embedded mock's answers");
    cmd->add_flag("-q,--quiet", o.quiet, "No progress line");
    cmd->add_option("--progress-interval",
                    o.progress_interval_s,
                    "Seconds between progress lines when stderr is not a terminal (default 5)")
        ->check(CLI::PositiveNumber.description(""));
}

constexpr const char* bench_footer = R"(Environment:
  OPENAI_API_KEY      the API key (another variable with --api-key-env)
  OPENAI_BASE_URL     the endpoint, when --base-url names none

The report goes to stdout; progress to stderr. Documented in docs/bench.md.

Exit status:
  0  the run (every level of a --sweep) completed (failed requests are counted)
  2  bad flags or environment, or the server's TLS certificate was rejected
  3  stopped: quota exhausted           4  the prompt file or a report file failed
  6  stopped: the server refused the key (401)
  130  stopped by SIGINT/SIGTERM (the report covers what was done))";

} // namespace

void add_bench_command(CLI::App& app) {
    auto opts = std::make_shared<bench_options>();
    CLI::App* cmd = app.add_subcommand(
        "bench", "Benchmark an OpenAI-compatible server: throughput, TTFT, ITL, TPOT, E2EL");
    add_endpoint_flags(cmd, *opts);
    add_load_flags(cmd, *opts);
    add_prompt_flags(cmd, *opts);
    add_output_flags(cmd, *opts);
    cmd->footer(bench_footer);
    cmd->callback([opts] {
        const int code = bench(*opts);
        if (code != exit_ok)
            throw command_exit{code};
    });
}

} // namespace sluice::cli
