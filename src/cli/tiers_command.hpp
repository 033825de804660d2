#pragma once

#include "cli/config_file.hpp"

#include <CLI/CLI.hpp>

#include <iosfwd>
#include <string>
#include <vector>

namespace sluice::cli {

/// Options of `sluice tiers`, bound to its flags.
struct tiers_command_options {
    /// A tiers file laid over the built-in tiers (`--tiers`), as `sluice run --tiers` does.
    std::string tiers_file;
    /// A config file whose `[limits] tiers_file` is laid over them first (`--config`).
    std::string config_file;
};

/// Registers `sluice tiers`: the tiers `--tier` knows, with their limits.
void add_tiers_command(CLI::App& app);

/// Writes every tier: its name, description and endpoint limits, then one line per model it
/// names, with thousands separated ("tier-1  OpenAI usage tier 1 ...", "  gpt-4o  500 RPM,
/// 30,000 TPM").
void print_tiers(std::ostream& os, const std::vector<tier>& tiers);

/// Lists the tiers of `opts` on `out`; returns the exit status (0, or 2 with the reason on
/// `err` for a file that cannot be read or is not a tiers file).
int list_tiers(const tiers_command_options& opts, std::ostream& out, std::ostream& err);

} // namespace sluice::cli
