// The `sluice` entry point: registers the commands and nothing else.
#include "cli/batch_api_command.hpp"
#include "cli/bench_command.hpp"
#include "cli/merge_command.hpp"
#include "cli/mock_command.hpp"
#include "cli/run_command.hpp"
#include "cli/tiers_command.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    CLI::App app{"sluice: push chat-completion requests through OpenAI-compatible APIs as fast as "
                 "the rate limits allow"};
    app.name("sluice"); // not the path it was started by
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("sluice ") + SLUICE_VERSION);
    sluice::cli::add_run_command(app);
    sluice::cli::add_mock_command(app);
    sluice::cli::add_bench_command(app);
    sluice::cli::add_merge_command(app);
    sluice::cli::add_batch_api_command(app);
    sluice::cli::add_tiers_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        // CLI11 returns 0 for --help/--version; anything else is a usage error.
        return code == 0 ? 0 : sluice::cli::exit_usage;
    } catch (const sluice::cli::command_exit& e) {
        return e.code;
    }
    return 0;
}
