#pragma once

#include <CLI/CLI.hpp>

namespace sluice::cli {

/// Registers `sluice mock`: the OpenAI-compatible mock server as a process.
void add_mock_command(CLI::App& app);

} // namespace sluice::cli
