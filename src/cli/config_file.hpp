#pragma once

#include <sluice/batch/model_prices.hpp>
#include <sluice/dispatcher.hpp>

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cli {

/// A configuration problem, with a message naming the file, line and key:
/// "configs/x.toml:12: [pool] max_connections: expected an integer >= 1".
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The limits a tier gives one model.
struct tier_model_limits {
    double rpm = 0;
    double tpm = 0;
};

/// A provider's rate-limit tier (configs/tiers.toml): the endpoint's limits (0: none) and
/// those of the models it names, each of which is admitted in a scope of its own.
struct tier {
    std::string name;
    std::string description;
    double rpm = 0;
    double tpm = 0;
    std::map<std::string, tier_model_limits> models;
};

/// The tiers of configs/tiers.toml, compiled into the binary.
std::vector<tier> builtin_tiers();

/// Tiers from a file in the format of configs/tiers.toml.
std::vector<tier> load_tiers(const std::string& path);

/// `from` laid over `into`: a tier of a name already there replaces it whole (a tier left
/// half from each would be neither), a new one is added at the end.
void merge_tiers(std::vector<tier>& into, std::vector<tier> from);

/// The built-in tiers with those of the tiers file of a config (`[limits] tiers_file`,
/// empty: none) and then of `--tiers` (empty: none) laid over them.
std::vector<tier> known_tiers(const std::string& file_tiers, const std::string& flag_tiers);

/// The tier called `name`; throws config_error listing the known names.
const tier& find_tier(const std::vector<tier>& tiers, std::string_view name);

/// The prices of configs/prices.toml, compiled into the binary (`model_price`, `price_table`
/// and `find_price` are the library's: <sluice/batch/model_prices.hpp>).
price_table builtin_prices();

/// The built-in prices with the `[prices."MODEL"]` tables of the config file at `config_path`
/// laid over them, so users can correct a price that changed or add their own models; a key a
/// table leaves out keeps the built-in value. An empty path gives the built-in prices. Throws
/// config_error (a new model needs both `input` and `output`).
price_table load_prices(const std::string& config_path);

/// The `[run]` section: how `sluice run` runs a job, where the command line does not say.
struct run_settings {
    std::optional<unsigned> threads;
    std::optional<bool> ordered;
    std::optional<std::size_t> reorder_window;
    std::optional<std::uint64_t> flush_interval_ms;
    std::optional<std::uint64_t> fsync_interval_ms;
    std::optional<double> grace_period_s;
    std::optional<double> max_duration_s;
    std::optional<double> progress_interval_s;
    std::optional<std::string> model;
    std::optional<std::string> system;
    std::optional<std::string> metrics_listen;
};

/// One endpoint of several: a `[[endpoints]]` table of the config file or a `--endpoint` flag.
/// The key is not in it: only the name of the environment variable that holds it.
struct endpoint_entry {
    /// Name, base URL, style, api-version, organization, project, headers, limits (rpm/tpm),
    /// models and weight; `api_key` empty.
    endpoint_options endpoint;
    /// The variable that holds its key; empty: OPENAI_API_KEY, or AZURE_OPENAI_API_KEY for
    /// an Azure endpoint.
    std::string api_key_env;
    /// A tier of configs/tiers.toml for the limits `rpm` / `tpm` leave out.
    std::string tier;
    bool rpm_set = false;
    bool tpm_set = false;
};

/// Settings of a config file that are not engine options.
struct file_settings {
    /// Environment variable that holds the API key.
    std::string api_key_env = "OPENAI_API_KEY";
    /// The file named it (`api_key_env`): the Azure default (AZURE_OPENAI_API_KEY) is not
    /// taken then.
    bool api_key_env_set = false;
    /// The file set `api_style`.
    bool api_style_set = false;
    /// Tier named by `[limits] tier`; empty when none.
    std::string tier;
    /// `[limits] tiers_file`: tiers added to (or replacing) the built-in ones; empty: none.
    std::string tiers_file;
    /// `[limits] rpm` / `tpm` were given: they override the same file's tier.
    bool rpm_set = false;
    bool tpm_set = false;
    /// `[run]`.
    run_settings run;
    /// `[[endpoints]]`, in order; empty when the file has none.
    std::vector<endpoint_entry> endpoints;
};

/// Applies the keys present in a TOML config file (format: configs/default.toml) onto
/// `opts`. Unknown keys and sections, wrong types and out-of-range values are errors, so a
/// typo is never silently ignored. Throws config_error.
///
/// Precedence, lowest first: defaults < config file < environment < flags. The caller applies
/// them in that order: this, then apply_environment, then its flags.
file_settings apply_config_file(const std::string& path, dispatcher_options& opts);

/// Applies the environment as the official SDKs read it: OPENAI_BASE_URL, the API key from
/// variable `api_key_env`, OPENAI_ORG_ID, OPENAI_PROJECT_ID and OPENAI_API_VERSION (as the
/// SDKs' Azure client reads it); and sluice's own SLUICE_DEADLINE_MS. Throws config_error naming
/// the variable (never the value of one that may hold a secret) when one holds a CR, LF or other
/// control character or is not a number.
void apply_environment(dispatcher_options& opts,
                       std::string_view api_key_env,
                       const std::function<const char*(const char*)>& getenv = ::getenv);

/// A non-negative finite decimal number from an environment variable, or empty.
std::optional<double> parse_env_number(std::string_view text);

/// The first 40 characters of `text` with control characters as '?', for a message.
std::string printable(std::string_view text);

/// Sets `opts.api_key` from variable `api_key_env` (cleared when it is unset or empty), with
/// apply_environment's check.
void apply_api_key(dispatcher_options& opts,
                   std::string_view api_key_env,
                   const std::function<const char*(const char*)>& getenv = ::getenv);

/// "openai", "azure" or "auto" as an api_style; throws config_error naming `where` otherwise.
api_style parse_api_style(std::string_view text, std::string_view where);

} // namespace sluice::cli
