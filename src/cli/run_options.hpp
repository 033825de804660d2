#pragma once

#include "cli/config_file.hpp"

#include <sluice/batch/batch_run.hpp>
#include <sluice/dispatcher.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The options of `sluice run` and how they become the library's: flags over environment over
// config file over defaults.

namespace sluice::cli {

/// Options of `sluice run`, bound to its flags. Values left empty fall back to the config
/// file, then the environment, then the defaults (see docs/options.md).
struct run_options {
    std::string input;
    std::string output;
    std::string config_file;
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
    /// `--header 'Name: value'`, in the order given; they add to the config file's
    /// `[headers]`, replacing one of the same name.
    std::vector<std::string> headers;
    /// `--endpoint 'NAME=URL[,key=value...]'`, repeatable (parse_endpoint_flag): several
    /// endpoints, replacing the config file's `[[endpoints]]`.
    std::vector<std::string> endpoints;
    std::optional<std::size_t> concurrency;
    std::optional<double> rpm;
    std::optional<double> tpm;
    std::optional<std::string> tier;
    /// `--redis URL`, `--budget-key NAME`, `--redis-optional`: a budget shared through Redis.
    std::optional<std::string> redis;
    std::optional<std::string> budget_key;
    bool redis_optional = false;
    /// `--tiers FILE`: tiers added to (or replacing) the built-in ones and the config's.
    std::optional<std::string> tiers_file;
    /// `--no-adaptive`: no scope finds its rate from 429s (`limit_options::adaptive`).
    bool no_adaptive = false;
    std::optional<unsigned> max_attempts;
    std::optional<double> retry_budget;
    /// Event loops (threads); connections and limits are split evenly between them.
    unsigned threads = 1;
    std::optional<std::uint64_t> request_timeout_ms;
    std::optional<std::uint64_t> stream_idle_timeout_ms;
    /// Per-request deadline, backoff and hints included (0: none).
    std::optional<std::uint64_t> deadline_ms;
    /// Run against the embedded mock server on an ephemeral loopback port (HTTPS, its
    /// self-signed certificate trusted for this run only).
    bool mock = false;
    /// Mock latency, to make a demo or a test look like a real server.
    std::uint64_t mock_latency_ms = 0;
    bool quiet = false;
    /// Also write the summary as JSON to this file.
    std::string summary_file;

    /// Only this shard of the input ("K/N", `--shard`); empty: all of it.
    std::string shard;
    /// Model and system message of `{"prompt": ...}` lines.
    std::string model;
    std::string system;
    /// Read and plan the whole input, send nothing.
    bool dry_run = false;
    /// Validate every line first; any bad line fails the run before a request is sent.
    bool strict = false;
    /// Redo the error records already in the output (a resumed run keeps them by default).
    bool retry_failed = false;
    /// Also write failed requests and bad lines to this file (Batch API error-file shape).
    std::string errors_file;
    /// Write records in input order, holding at most `reorder_window` of them.
    bool ordered = false;
    std::size_t reorder_window = 4096;
    /// Write finished records to the output at most this long after they finish (0: at once).
    std::uint64_t flush_interval_ms = 10;
    /// fsync the output this often, and at the end (0: only at the end).
    std::uint64_t fsync_interval_ms = 1000;
    /// After SIGINT/SIGTERM, how long requests on the wire may take before they are cancelled.
    double grace_period_s = 30;
    /// The job deadline: after this many seconds the run stops as on SIGTERM (0: none).
    double max_duration_s = 0;
    /// Seconds between plain progress lines when stderr is not a terminal.
    double progress_interval_s = 10;
    /// Serve Prometheus metrics on this IP:PORT while the job runs; empty: none.
    std::string metrics_listen;

    /// The flags among those of the config file's `[run]` section that the command line gave
    /// ("--ordered", ...): they outrank the file, which outranks the defaults above.
    std::set<std::string> given;
};

/// Takes the `[run]` values of a config file for the options whose flags were not given.
void apply_run_settings(run_options& o, const run_settings& file);

/// The engine options of a run: defaults, then the config file, the environment and the flags,
/// each stronger than the one before. Throws config_error or std::invalid_argument. When
/// `api_key_env` is given, it receives the name of the environment variable the key was
/// looked up in.
dispatcher_options build_options(const run_options& opts,
                                 std::string* api_key_env = nullptr,
                                 run_settings* run_file = nullptr);

/// Why a run with `opts` must not start for want of an API key, or empty: a https endpoint
/// off this machine is never sent a request without one (it could only answer 401, after the
/// connection and handshake cost). Loopback and plain-http servers are local test peers and
/// often take no key. `api_key_env` names the variable the message tells the user to set.
std::string missing_key_error(const dispatcher_options& opts, std::string_view api_key_env);

/// The batch job's options for the flags `o` (after apply_run_settings) and the engine
/// options `engine` that build_options made of them. Throws std::invalid_argument naming
/// --model when the model holds a control character, or --shard when it is not K/N.
batch_options make_batch_options(const run_options& o, dispatcher_options engine);

/// `--header 'Name: value'` split into its name and value (the value's surrounding blanks
/// trimmed). Throws std::invalid_argument naming the flag, and the name when it is one, but
/// never the value.
std::pair<std::string, std::string> parse_header_flag(std::string_view arg);

/// One `--endpoint` flag: `NAME=URL` then `,key=value` items with the keys of a
/// `[[endpoints]]` table (api_key_env, rpm, tpm, tier, weight, models as names joined by '|',
/// api_style, api_version, organization, project). No value may hold a comma. Throws
/// std::invalid_argument naming the flag and the key.
endpoint_entry parse_endpoint_flag(std::string_view arg);

/// Makes `opts` send to the endpoints of `entries` (at least one): the first is the default
/// endpoint (its name, URL, key, limits, ... replace `opts`' own, whatever the environment
/// set), the others are `opts.endpoints`. Each key is read from its entry's variable, tiers
/// fill the limits an entry leaves out. Returns the first entry's key variable. Throws
/// config_error naming the endpoint when an endpoint other than the first has no key and
/// needs one (missing_key_error checks the first, as for one endpoint).
std::string apply_endpoints(dispatcher_options& opts,
                            const std::vector<endpoint_entry>& entries,
                            const std::function<const char*(const char*)>& getenv = ::getenv);

/// Throws std::invalid_argument naming `flag` (never the value) when `value` holds a CR, LF,
/// NUL or other control character: values sent in a header or the request line, or in every
/// body (a model).
void check_header_flag(std::string_view flag, std::string_view value);

} // namespace sluice::cli
