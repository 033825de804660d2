#pragma once

#include <sluice/admission/rate_limiter.hpp>
#include <sluice/batch/batch_run.hpp>
#include <sluice/batch/model_prices.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/request.hpp>
#include <sluice/source/jsonl_reader.hpp>
#include <sluice/source/token_estimate.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The plan of a batch job, made without sending anything (`sluice run --dry-run`): what the
// input holds (requests per model, estimated tokens, bad lines), how long the rate limits make
// the run take at least, and what it would cost, so a caller learns about bad lines, a missing
// model or a surprising bill before spending anything.

namespace sluice {

/// The requests of one model in a plan. Token counts are the estimates admission charges
/// (`estimate_tokens`), not what the server will bill.
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

/// What the input of a batch job holds, as the run would judge it: the lines it would send,
/// grouped by model, the bad lines it would record, and the lines a resumed run skips.
struct batch_plan {
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

/// Builds a batch_plan from the input a line at a time, so a plan over any input size holds
/// only one entry per model and the first few bad lines.
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
    const batch_plan& plan() const noexcept { return plan_; }

private:
    token_estimator estimate_;
    batch_plan plan_;
};

/// Plans the job that `batch_run(loop, files, opts)` would run, sending nothing: the output,
/// when it exists, is read (never changed) as a resume would judge it, so a half-finished job
/// is planned for what is left (`opts.retry_failed` too); a file input gets the planning pass,
/// so repeated custom_ids are bad lines as in the run; then every line is read through
/// `opts.reader` and estimated with `opts.engine.estimate`. `files.errors` is not used. Throws
/// std::system_error or std::runtime_error when a file cannot be read.
batch_plan plan_batch(const batch_files& files, const batch_options& opts);

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

/// What one model's requests cost at a price, in US dollars.
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

/// The requests of a plan that one rate-limit scope would admit, and how long they take.
struct scope_estimate {
    /// The scope's key (`scope_key`): a model, or "" for the endpoint's scope.
    std::string name;
    /// The scope's limits (`scope_limits`).
    limit_options limits;
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;
    /// The largest single request of the scope.
    std::uint64_t largest_request = 0;
    /// `largest_request` can never be admitted at `limits` (`rate_limiter::too_large`): the
    /// run refuses requests that large (request_too_large) instead of sending them.
    bool too_large = false;
    /// The shortest time `limits` allow for the scope's requests.
    duration_estimate duration;
};

/// How one model of a plan is priced.
struct model_cost {
    /// The price table entry used (`find_price`); empty when not priced.
    std::string priced_as;
    /// The cost at that price; empty when not priced.
    std::optional<cost_estimate> cost;
};

/// The time and cost of a plan: its requests grouped into the scopes the dispatcher would admit
/// them in, each timed on its own (scopes run side by side, so the run takes as long as its
/// slowest scope), and every model priced where the price table knows it.
struct plan_estimate {
    /// The endpoint's scope first (when it has requests), then models' scopes by name.
    std::vector<scope_estimate> scopes;
    /// Index into `scopes` of the one that takes longest; empty when no scope has a limit.
    std::optional<std::size_t> slowest;
    /// Every model of the plan, by name.
    std::map<std::string, model_cost> models;
    /// Over the priced models.
    cost_estimate total_cost;
    /// The models with no price, by name.
    std::vector<std::string> unpriced;

    /// The slowest scope, or null.
    const scope_estimate* slowest_scope() const noexcept {
        return slowest ? &scopes[*slowest] : nullptr;
    }
};

/// Times and prices `plan` for a run with the engine options `opts` (`limits`, `model_limits`
/// and `per_model_limits` decide the scopes, by the dispatcher's own rule: `scope_key`) at
/// `prices` (USD per million tokens).
plan_estimate
estimate_plan(const batch_plan& plan, const dispatcher_options& opts, const price_table& prices);

} // namespace sluice
