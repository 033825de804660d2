#pragma once

#include "cli/config_file.hpp"

#include <sluice/admission/rate_limiter.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/request.hpp>
#include <sluice/source/jsonl_reader.hpp>
#include <sluice/source/token_estimate.hpp>

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <string_view>
#include <vector>

// `sluice run --dry-run`: read the whole input, send nothing, and say what the run would be
// (requests per model, estimated tokens, how long the rate limits make it take at least, what it
// would cost), so a user learns about bad lines, a missing model or a surprising bill before
// spending anything.

namespace sluice::cli {

/// The requests of one model in a dry run. Token counts are the estimates admission charges
/// (estimate_tokens), not what the server will bill.
struct model_plan {
    /// Good lines naming this model.
    std::uint64_t requests = 0;
    /// Estimated prompt tokens, summed.
    std::uint64_t prompt_tokens = 0;
    /// Completion budget (max_completion_tokens, else max_tokens, else the default, x n),
    /// summed: an upper bound of the completion tokens, as responses stop at their budget.
    std::uint64_t completion_budget = 0;
    /// Largest single request (prompt + budget): one above a scope's TPM is never sent.
    std::uint64_t largest_request = 0;

    /// What admission charges against TPM for all of them.
    std::uint64_t tokens() const noexcept { return prompt_tokens + completion_budget; }
};

/// A bad line kept for the report.
struct bad_line_sample {
    /// 1-based line number in the input.
    std::uint64_t line_number = 0;
    /// Why the line is bad, as the reader (or the caller) said it.
    std::string message;
};

/// What a dry run found in the input.
struct dry_run_plan {
    /// Lines read (blank lines not counted): good and bad.
    std::uint64_t lines = 0;
    /// Good lines, each a request the run would send.
    std::uint64_t requests = 0;
    /// Bad lines, all of them counted.
    std::uint64_t bad_lines = 0;
    /// Lines whose final record the output already holds: a resumed run skips them, so they
    /// are not planned (and not counted in `lines`).
    std::uint64_t skipped = 0;
    /// The first bad lines, at most plan_builder::max_bad_samples, in input order.
    std::vector<bad_line_sample> bad_samples;
    /// Requests by the model their body names; "" for requests that name none.
    std::map<std::string, model_plan> models;
};

/// Builds a dry_run_plan from the input a line at a time, so a dry run over any input size
/// holds only one entry per model and the first few bad lines.
class plan_builder {
public:
    /// Bad lines kept with their message; the rest are only counted.
    static constexpr std::size_t max_bad_samples = 20;

    /// Estimates with `estimate`: pass the run's own options (dispatcher_options::estimate) so
    /// the plan charges what admission will.
    explicit plan_builder(const estimate_options& estimate = {});

    /// Adds a good line: its request's model, estimated prompt tokens and completion budget.
    void add(const request& req);

    /// Adds a bad line with the reason it is bad.
    void add_bad(std::uint64_t line_number, std::string_view message);

    /// Adds what the reader made of a line: add() when good, add_bad() when not.
    void add(const input_record& record);
    /// A line a resumed run skips (its final record exists).
    void add_skipped() { ++plan_.skipped; }

    /// The plan so far.
    const dry_run_plan& plan() const noexcept { return plan_; }

private:
    estimate_options estimate_;
    dry_run_plan plan_;
};

/// Which limit makes a run take as long as it does.
enum class binding_limit {
    none, ///< neither limit is set: only the server and the connection count bound the run
    rpm,  ///< requests per minute
    tpm,  ///< tokens per minute
};

/// The shortest time the rate limits allow for some requests.
struct duration_estimate {
    /// max(requests / RPM, tokens / TPM) in minutes; 0 with no limits.
    double minutes = 0;
    /// The limit that gives `minutes` (rpm on a tie).
    binding_limit binding = binding_limit::none;
    /// requests / RPM; 0 when RPM is unlimited.
    double rpm_minutes = 0;
    /// tokens / TPM; 0 when TPM is unlimited.
    double tpm_minutes = 0;
};

/// How long `requests` costing `tokens` take at least under `limits` (0 = unlimited). A lower
/// bound from the limits alone; refunds of unused completion budget can shorten a TPM-bound
/// run, and latency with too few connections can lengthen any run.
duration_estimate
minimum_duration(std::uint64_t requests, std::uint64_t tokens, const limit_options& limits);

/// What one model's requests cost at `price`, in US dollars.
struct cost_estimate {
    /// Estimated prompt tokens at the input price.
    double prompt = 0;
    /// The whole completion budget at the output price: an upper bound.
    double completion = 0;

    /// An upper bound of the whole cost (the prompt part is an estimate, not a bound).
    double total() const noexcept { return prompt + completion; }
};

/// The cost of `model`'s requests at `price` (USD per million tokens).
cost_estimate estimate_cost(const model_plan& model, const model_price& price);

/// Prints the plan for people: lines, requests and bad lines (with the first reasons); per
/// model requests, estimated prompt tokens, completion budget and cost; the minimum duration
/// at `limits`, naming the limit that binds; the total cost of the priced models and which
/// models have no price. Every request is timed against `limits`, as one scope.
void print_plan(std::ostream& os,
                const dry_run_plan& plan,
                const limit_options& limits,
                const price_table& prices);

/// As above, with the rate-limit scopes the dispatcher would use for `opts`: a model with
/// limits of its own in `model_limits` (or every named model, with `per_model_limits`) is timed
/// in its own scope, the rest together at `limits`; scopes run side by side, so the run takes
/// as long as its slowest scope.
void print_plan(std::ostream& os,
                const dry_run_plan& plan,
                const dispatcher_options& opts,
                const price_table& prices);

/// Writes the plan as one JSON object (for scripts, e.g. `--dry-run --summary FILE`):
/// `lines`, `requests`, `bad_lines`, `bad_line_samples` [{`line`, `message`}], `models`
/// {NAME: {`requests`, `prompt_tokens`, `completion_budget`, `largest_request`, `priced_as`
/// (null when not priced), `cost_usd` {`prompt`, `completion_max`, `total_max`} or null}},
/// `duration` {`minimum_minutes`, `binding` ("rpm", "tpm" or "none"), `scope`, `scopes`
/// [{`scope`, `requests`, `tokens`, `rpm`, `tpm`, `rpm_minutes`, `tpm_minutes`, `binding`}]},
/// `cost_usd` {`total_max`, `unpriced_models`}. The endpoint scope is named "".
void write_plan_json(std::ostream& os,
                     const dry_run_plan& plan,
                     const dispatcher_options& opts,
                     const price_table& prices);

} // namespace sluice::cli
