#include "cli/merge_command.hpp"

#include "cli/exit_status.hpp"

#include <sluice/batch/merge_outputs.hpp>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace sluice::cli {

namespace {

// "3 input lines have no record: a, b, c, ..." on one line per kind of problem.
void say(const char* what, const merge_id_list& list, const char* advice) {
    if (list.count == 0)
        return;
    std::string line = "sluice merge: " + std::to_string(list.count) + " " + what;
    const char* sep = ": ";
    for (const std::string& id : list.first) {
        line += sep;
        line += id;
        sep = ", ";
    }
    if (list.count > list.first.size())
        line += ", ...";
    line += advice;
    std::cerr << line << '\n';
}

} // namespace

int merge(const merge_command_options& o) {
    merge_report r;
    try {
        r = merge_outputs(o.shard_outputs, o.input, o.output);
    } catch (const std::invalid_argument& e) {
        std::cerr << "sluice " << e.what() << '\n';
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "sluice merge: " << e.what() << '\n';
        return exit_io;
    }
    say("input lines have no final record",
        r.missing,
        " (run the shard that holds them again: a resumed run sends only what is missing)");
    say("records are not final answers (not_attempted, stopped, ...) and were not merged",
        r.unanswered,
        " (their shard stopped before the end: resume it)");
    say("records repeat a custom_id that already has its record",
        r.duplicated,
        " (a shard merged twice, or run twice into two files, or shards of different N?)");
    say("records have a custom_id that no input line has",
        r.unknown,
        " (an output of another input?)");
    if (!r.written) {
        std::cerr << "sluice merge: " << o.output << " not written: " << r.records
                  << " records read for " << r.input_lines << " input lines\n";
        return exit_failures;
    }
    if (!o.quiet)
        std::cerr << "sluice merge: " << r.input_lines << " input lines, one record each, from "
                  << o.shard_outputs.size() << " files: written to " << o.output << '\n';
    return exit_ok;
}

void add_merge_command(CLI::App& app) {
    auto opts = std::make_shared<merge_command_options>();
    CLI::App* cmd = app.add_subcommand(
        "merge",
        "Merge the outputs of `sluice run --shard K/N` into one, checking that every input "
        "line has exactly one record");
    cmd->add_option("outputs", opts->shard_outputs, "The shard outputs, in any order")->required();
    cmd->add_option("-o,--output", opts->output, "The merged output (written only when complete)")
        ->required();
    cmd->add_option("--input", opts->input, "The input the shards were run from")->required();
    cmd->add_flag("-q,--quiet", opts->quiet, "Print nothing when the merge is complete");
    cmd->footer(R"(Exit status:
  0  merged: exactly one final record per input line
  1  lines without a final record, repeated records or records of another input:
     listed, nothing written
  2  bad arguments
  4  a file could not be read or written, or is not a sluice output)");
    cmd->callback([opts] {
        const int code = merge(*opts);
        if (code != exit_ok)
            throw command_exit{code};
    });
}

} // namespace sluice::cli
