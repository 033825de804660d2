#pragma once

#include <sluice/batch/batch_plan.hpp>

#include <iosfwd>

// `sluice run --dry-run`: the plan (sluice::plan_batch, sluice::estimate_plan) printed for
// people and written as JSON for scripts. The planning itself is the library's.

namespace sluice::cli {

struct run_options;

/// Prints `plan` for people, with its `estimate`: lines, requests and bad lines (with the
/// first reasons); per model requests, estimated prompt tokens, completion budget and cost;
/// the minimum duration of each scope, naming the limit that binds the slowest; the total
/// cost of the priced models and which models have no price.
void print_plan(std::ostream& os, const batch_plan& plan, const plan_estimate& estimate);

/// Writes `plan` and its `estimate` as one JSON object (for scripts, e.g. `--dry-run
/// --summary FILE`): `lines`, `requests`, `bad_lines`, `skipped`, `bad_line_samples`
/// [{`line`, `message`}], `models` {NAME: {`requests`, `prompt_tokens`, `completion_budget`,
/// `largest_request`, `priced_as` (null when not priced), `cost_usd` {`prompt`,
/// `completion_max`, `total_max`} or null}}, `duration` {`minimum_minutes`, `binding` ("rpm",
/// "tpm" or "none"), `scope`, `scopes` [{`scope`, `requests`, `tokens`, `rpm`, `tpm`,
/// `rpm_minutes`, `tpm_minutes`, `binding`}]}, `cost_usd` {`total_max`, `unpriced_models`}.
/// The endpoint scope is named "".
void write_plan_json(std::ostream& os, const batch_plan& plan, const plan_estimate& estimate);

/// `sluice run --dry-run` with the flags `o` and the options `bo` they built: plans the job,
/// prices it at the built-in prices with the config file's over them, prints the plan on
/// stdout and, with `--summary`, writes it as JSON. Returns the exit status: 0, 5 (bad lines),
/// 2 (a bad price table) or 4 (a file that cannot be read or written).
int dry_run(const run_options& o, const batch_options& bo);

} // namespace sluice::cli
