// `sluice batch submit|status|collect|cancel`: the same JSONL through the provider's Batch API,
// submitted now and collected later, each step recorded in a state file written atomically
// after it, so that any command can be killed and run again without doing a step twice.
#include "cli/batch_api_command.hpp"
#include "cli/batch_api_steps.hpp"

#include "cli/run_command.hpp"
#include "cli/server_flags.hpp"

#include "batch_api/batch_split.hpp"

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <random>

namespace sluice::cli {

namespace fs = std::filesystem;

namespace {

std::string default_state(const batch_api_options& o, const std::string& fallback) {
    if (!o.state.empty())
        return o.state;
    return (o.run.output.empty() ? fallback : o.run.output) + ".batch.json";
}

std::string random_job_id() {
    std::random_device rd;
    char buf[32];
    std::snprintf(
        buf, sizeof buf, "%08x%08x", static_cast<unsigned>(rd()), static_cast<unsigned>(rd()));
    return buf;
}

std::optional<dispatcher_options> engine_options_for(const batch_api_options& o, const char* cmd) {
    try {
        std::string key_env;
        dispatcher_options d = build_options(o.run, &key_env);
        if (const std::string why = missing_key_error(d, key_env); !why.empty()) {
            std::cerr << "sluice batch " << cmd << ": " << why << '\n';
            return std::nullopt;
        }
        return d;
    } catch (const std::exception& e) {
        std::cerr << "sluice batch " << cmd << ": " << e.what() << '\n';
        return std::nullopt;
    }
}

} // namespace

int batch_submit(batch_api_options& o) {
    const std::string state_path = default_state(o, o.run.input);
    const auto opts = engine_options_for(o, "submit");
    if (!opts)
        return exit_usage;
    try {
        std::error_code ec;
        batch_state s;
        if (fs::exists(state_path, ec)) {
            s = batch_state::load(state_path);
            if (!o.run.quiet)
                std::cerr << "sluice batch submit: resuming " << state_path << '\n';
        } else {
            const std::string dir = batch_state::directory_of(state_path);
            fs::create_directories(dir);
            s.job = random_job_id();
            s.input = o.run.input;
            s.created_at = static_cast<long long>(std::time(nullptr));
            s.completion_window = o.completion_window;
            if (opts->effective_style() == api_style::azure)
                s.endpoint = "/chat/completions";
            detail::split_options so;
            so.max_requests = o.max_batch_requests;
            so.max_bytes = o.max_batch_bytes;
            so.url = s.endpoint;
            so.reader.model = o.run.model;
            so.reader.system = o.run.system;
            s.bad_lines_file = "bad-lines.jsonl";
            const auto split = detail::split_input(o.run.input, dir, s.bad_lines_file, so);
            s.input_lines = split.lines;
            s.bad_lines = split.bad;
            s.parts = split.parts;
            // The split is one step: a state file exists only once every part file does.
            s.save(state_path);
            if (!o.run.quiet)
                std::cerr << "sluice batch submit: " << split.lines << " lines, " << split.bad
                          << " bad (recorded, not sent), in " << s.parts.size() << " parts\n";
        }
        api_session api(*opts);
        submit_parts(api, s, state_path, o.run.quiet);
        if (!o.run.quiet)
            std::cerr << "sluice batch submit: submitted; state in " << state_path
                      << " (sluice batch status|collect --state " << state_path << ")\n";
        return exit_ok;
    } catch (const step_failed& e) {
        std::cerr << "sluice batch submit: " << e.what()
                  << "; run the same command again to resume\n";
        return exit_failures;
    } catch (const std::exception& e) {
        std::cerr << "sluice batch submit: " << e.what() << '\n';
        return exit_io;
    }
}

int batch_status(batch_api_options& o) {
    const std::string state_path = default_state(o, "");
    const auto opts = engine_options_for(o, "status");
    if (!opts)
        return exit_usage;
    try {
        batch_state s = batch_state::load(state_path);
        api_session api(*opts);
        const bool done = poll_parts(api, s, state_path);
        print_status(s);
        return done ? exit_ok : exit_pending;
    } catch (const std::exception& e) {
        std::cerr << "sluice batch status: " << e.what() << '\n';
        return exit_io;
    }
}

int batch_collect(batch_api_options& o) {
    if (o.run.output.empty()) {
        std::cerr << "sluice batch collect: -o/--output is required\n";
        return exit_usage;
    }
    if (o.finish_live && o.resubmit) {
        std::cerr << "sluice batch collect: --finish-live or --resubmit, not both\n";
        return exit_usage;
    }
    const std::string state_path = default_state(o, "");
    const auto opts = engine_options_for(o, "collect");
    if (!opts)
        return exit_usage;
    try {
        batch_state s = batch_state::load(state_path);
        const std::string dir = batch_state::directory_of(state_path);
        api_session api(*opts);
        auto interval = std::chrono::milliseconds(static_cast<long long>(o.poll_interval_s * 1000));
        const auto longest =
            std::chrono::milliseconds(static_cast<long long>(o.max_poll_interval_s * 1000));
        for (;;) {
            submit_parts(api, s, state_path, o.run.quiet); // a resubmission cut short
            const bool all_final = poll_parts(api, s, state_path);
            {
                detail::merged_output out(o.run.output);
                if (s.bad_lines > 0)
                    detail::merge_bad_lines(dir + "/" + s.bad_lines_file, out);
                for (batch_part& p : s.parts)
                    if (is_final(p.status) && !p.merged)
                        collect_part(api, s, p, out, state_path, o.run.quiet);
                out.sync();
            }
            if (o.resubmit && !resubmittable_parts(s).empty()) {
                resubmit(api, s, o, state_path);
                continue;
            }
            if (all_final || !o.wait)
                break;
            api.pause(interval);
            interval = std::min(longest, interval * 3 / 2);
        }
        int status = exit_ok;
        if (o.finish_live)
            status = finish_live(s, o, state_path);
        print_status(s);
        bool pending = false;
        std::uint64_t left = 0, failed = s.bad_lines;
        for (const batch_part& p : s.parts) {
            pending = pending || !p.merged;
            left += p.finished_by.empty() ? p.unfinished : 0;
            failed += p.failed;
        }
        if (left > 0)
            std::cerr << "sluice batch collect: " << left
                      << " lines of expired, failed or cancelled parts are not answered (listed "
                         "in "
                      << dir
                      << "/part-N.unfinished.jsonl): collect again with --finish-live or "
                         "--resubmit\n";
        if (pending)
            return status == exit_ok ? exit_pending : status;
        if (status == exit_ok && (left > 0 || failed > 0))
            status = exit_failures;
        return status;
    } catch (const step_failed& e) {
        std::cerr << "sluice batch collect: " << e.what()
                  << "; run the same command again to resume\n";
        return exit_failures;
    } catch (const std::exception& e) {
        std::cerr << "sluice batch collect: " << e.what() << '\n';
        return exit_io;
    }
}

int batch_cancel(batch_api_options& o) {
    const std::string state_path = default_state(o, "");
    const auto opts = engine_options_for(o, "cancel");
    if (!opts)
        return exit_usage;
    try {
        batch_state s = batch_state::load(state_path);
        api_session api(*opts);
        for (batch_part& p : s.parts) {
            if (p.batch_id.empty() || is_final(p.status) || p.status == "cancelling")
                continue;
            auto b = checked(api.run<batch_object>([&](batch_client& c, auto h) {
                c.async_cancel(p.batch_id, std::move(h));
            }),
                             "cancel batch " + p.batch_id);
            record_poll(p, b);
            s.save(state_path);
        }
        print_status(s);
        return exit_ok;
    } catch (const std::exception& e) {
        std::cerr << "sluice batch cancel: " << e.what() << '\n';
        return exit_io;
    }
}

void add_batch_api_command(CLI::App& app) {
    auto* batch = app.add_subcommand(
        "batch",
        "The provider's Batch API: submit the input now at half the price, collect the answers "
        "within the completion window (docs/batch.md, \"Live or deferred\")");
    batch->require_subcommand(1);
    auto o = std::make_shared<batch_api_options>();
    auto common = [&](CLI::App* cmd) {
        cmd->add_option("--state",
                        o->state,
                        "The job's state file (default: the output's or input's name + "
                        ".batch.json)");
        cmd->add_option("--config", o->run.config_file, "TOML config file");
        add_server_flags(cmd, o->run);
        cmd->add_flag("-q,--quiet", o->run.quiet, "Print only errors");
    };
    auto check = [](int code) {
        if (code != exit_ok)
            throw command_exit{code};
    };

    auto* submit = batch->add_subcommand("submit", "Split, upload and create the batches");
    submit->add_option("input", o->run.input, "Input JSONL (as for sluice run)")->required();
    submit->add_option("-o,--output", o->run.output, "Where collect will write (names the state)");
    submit->add_option("--max-batch-requests", o->max_batch_requests, "Requests per batch")
        ->capture_default_str();
    submit->add_option("--max-batch-bytes", o->max_batch_bytes, "Bytes per batch input file")
        ->capture_default_str();
    submit->add_option("--completion-window", o->completion_window, "Completion window")
        ->capture_default_str();
    submit->add_option("--model", o->run.model, "Model of prompt lines that name none");
    submit->add_option("--system", o->run.system, "System message of prompt lines");
    common(submit);
    submit->callback([o, check] { check(batch_submit(*o)); });

    auto* status = batch->add_subcommand("status", "Each part's status and request counts");
    status->add_option("-o,--output", o->run.output, "The job's output (names the state)");
    common(status);
    status->callback([o, check] { check(batch_status(*o)); });

    auto* collect = batch->add_subcommand(
        "collect", "Download the finished parts and merge them into the output");
    collect->add_option("-o,--output", o->run.output, "Output JSONL (resumed if it exists)");
    collect->add_flag("--wait", o->wait, "Poll until every part is final");
    collect->add_option("--poll-interval", o->poll_interval_s, "First pause between polls (s)")
        ->capture_default_str();
    collect
        ->add_option(
            "--max-poll-interval", o->max_poll_interval_s, "Longest pause between polls (s)")
        ->capture_default_str();
    collect->add_flag("--finish-live",
                      o->finish_live,
                      "Send the lines of expired, failed or cancelled parts live (sluice run)");
    collect->add_flag(
        "--resubmit", o->resubmit, "Submit the lines of expired, failed or cancelled parts again");
    collect->add_option("--concurrency", o->run.concurrency, "--finish-live: connections");
    collect->add_option("--rpm", o->run.rpm, "--finish-live: requests per minute");
    collect->add_option("--tpm", o->run.tpm, "--finish-live: tokens per minute");
    common(collect);
    collect->callback([o, check] { check(batch_collect(*o)); });

    auto* cancel = batch->add_subcommand("cancel", "Cancel the parts not yet final");
    cancel->add_option("-o,--output", o->run.output, "The job's output (names the state)");
    common(cancel);
    cancel->callback([o, check] { check(batch_cancel(*o)); });
}

} // namespace sluice::cli
