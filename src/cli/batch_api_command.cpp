// `sluice batch submit|status|collect|cancel`: the same JSONL through the provider's Batch API,
// submitted now and collected later, each step recorded in a state file written atomically
// after it, so that any command can be killed and run again without doing a step twice.
#include "cli/batch_api_command.hpp"

#include "cli/run_command.hpp"
#include "cli/server_flags.hpp"

#include "batch_api/batch_collect.hpp"
#include "batch_api/batch_split.hpp"
#include "batch_api/batch_state.hpp"

#include <sluice/batch_api/batch_client.hpp>

#include "detail/line_reader.hpp"
#include "sink/atomic_file.hpp"

#include <boost/asio/io_context.hpp>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>

namespace sluice::cli {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using detail::batch_part;
using detail::batch_state;

namespace {

// The parts are not all final yet: collect again later (or with --wait).
constexpr int exit_pending = 8;

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

// The name of a part's upload at the provider: the job and the part, so that an upload whose
// answer was lost is found again by it.
std::string upload_name(const batch_state& s, const batch_part& p) {
    return "sluice-" + s.job + "-part-" + std::to_string(p.index) + ".jsonl";
}

// The Batch API steps run one at a time on a loop of this thread.
class api_session {
public:
    explicit api_session(const dispatcher_options& opts)
        : client_(ioc_.get_executor(), opts) {}

    // Starts `op` with a handler and runs the loop until it completes.
    template <class T, class Op>
    std::pair<error_code, T> run(Op op) {
        std::optional<std::pair<error_code, T>> r;
        op(client_, [&r](error_code ec, T v) { r.emplace(ec, std::move(v)); });
        while (!r)
            ioc_.run_one();
        return std::move(*r);
    }

    // Waits `d` while the loop keeps serving the pool (idle connections, timers).
    void pause(std::chrono::milliseconds d) { ioc_.run_for(d); }

private:
    asio::io_context ioc_;
    batch_client client_;
};

// Thrown with what a failed step said; the command reports it and exits.
struct step_failed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <class T>
T checked(std::pair<error_code, T> r, const std::string& step) {
    if (r.first)
        throw step_failed(
            step + ": " + r.first.message() +
            (r.second.error_message.empty() ? "" : " (" + r.second.error_message + ")"));
    return std::move(r.second);
}

std::optional<dispatcher_options> endpoint_options(const batch_api_options& o, const char* cmd) {
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

// Looks for a batch of this job and part among the provider's batches, newest first, down to
// those older than the job.
std::optional<batch_object>
find_orphan_batch(api_session& api, const batch_state& s, const batch_part& p) {
    std::string after;
    const std::string part = std::to_string(p.index);
    for (;;) {
        auto page = checked(api.run<batch_list>([&](batch_client& c, auto h) {
            c.async_list_batches(after, std::move(h));
        }),
                            "list batches");
        for (auto& b : page.data) {
            if (b.metadata_value("sluice_job") == std::string_view(s.job) &&
                b.metadata_value("sluice_part") == std::string_view(part))
                return std::move(b);
            if (b.created_at > 0 && b.created_at + 3600 < s.created_at)
                return std::nullopt; // older than the job by far: it is not there
        }
        if (!page.has_more || page.last_id.empty())
            return std::nullopt;
        after = page.last_id;
    }
}

// What a retrieval said of a part's batch; all of it, since a batch found already final is
// never polled again.
void record_poll(batch_part& p, const batch_object& b) {
    p.status = b.status;
    p.total = b.request_counts.total;
    p.completed = b.request_counts.completed;
    p.failed = b.request_counts.failed;
    p.output_file_id = b.output_file_id;
    p.error_file_id = b.error_file_id;
}

// Uploads and creates every part that has no batch yet, saving the state after each step.
void submit_parts(api_session& api, batch_state& s, const std::string& state_path, bool quiet) {
    const std::string dir = batch_state::directory_of(state_path);
    for (batch_part& p : s.parts) {
        if (p.file_id.empty()) {
            if (p.upload_pending) {
                auto files = checked(api.run<file_list>([](batch_client& c, auto h) {
                    c.async_list_files(std::move(h));
                }),
                                     "list files");
                for (const auto& f : files.data)
                    if (f.filename == upload_name(s, p) && f.bytes == p.bytes)
                        p.file_id = f.id;
                if (!p.file_id.empty() && !quiet)
                    std::cerr << "sluice batch: part " << p.index << ": found its upload "
                              << p.file_id << " from before the interruption\n";
            }
            if (p.file_id.empty()) {
                p.upload_pending = true;
                s.save(state_path);
                auto f = checked(api.run<file_object>([&](batch_client& c, auto h) {
                    c.async_upload(dir + "/" + p.file, upload_name(s, p), std::move(h));
                }),
                                 "upload part " + std::to_string(p.index));
                p.file_id = f.id;
                if (!quiet)
                    std::cerr << "sluice batch: part " << p.index << ": uploaded " << p.lines
                              << " requests (" << p.bytes << " bytes) as " << f.id << '\n';
            }
            p.upload_pending = false;
            s.save(state_path);
        }
        if (p.batch_id.empty()) {
            if (p.create_pending) {
                if (auto b = find_orphan_batch(api, s, p)) {
                    p.batch_id = b->id;
                    record_poll(p, *b);
                    if (!quiet)
                        std::cerr << "sluice batch: part " << p.index << ": found its batch "
                                  << p.batch_id << " from before the interruption\n";
                }
            }
            if (p.batch_id.empty()) {
                p.create_pending = true;
                s.save(state_path);
                batch_create_request r;
                r.input_file_id = p.file_id;
                r.endpoint = s.endpoint;
                r.completion_window = s.completion_window;
                r.metadata = {{"sluice_job", s.job},
                              {"sluice_part", std::to_string(p.index)},
                              {"sluice_input", fs::path(s.input).filename().string()}};
                auto b = checked(api.run<batch_object>([&](batch_client& c, auto h) {
                    c.async_create_batch(r, std::move(h));
                }),
                                 "create batch of part " + std::to_string(p.index));
                p.batch_id = b.id;
                record_poll(p, b);
                if (!quiet)
                    std::cerr << "sluice batch: part " << p.index << ": batch " << b.id
                              << " created\n";
            }
            p.create_pending = false;
            s.save(state_path);
        }
    }
}

bool is_final(const std::string& status) {
    return status == "completed" || status == "failed" || status == "expired" ||
           status == "cancelled";
}

void print_status(const batch_state& s) {
    std::uint64_t total = 0, completed = 0, failed = 0, final_parts = 0, unfinished = 0;
    for (const batch_part& p : s.parts) {
        std::cout << "part " << p.index << "  " << (p.batch_id.empty() ? "-" : p.batch_id) << "  "
                  << (p.status.empty() ? "not submitted" : p.status) << "  requests " << p.lines
                  << "  completed " << p.completed << "  failed " << p.failed;
        if (p.merged && p.unfinished > 0)
            std::cout << "  unfinished " << p.unfinished
                      << (p.finished_by.empty() ? "" : " (" + p.finished_by + ")");
        std::cout << '\n';
        total += p.lines;
        completed += p.completed;
        failed += p.failed;
        final_parts += is_final(p.status) ? 1 : 0;
        unfinished += p.finished_by.empty() ? p.unfinished : 0;
    }
    std::cout << "overall  " << s.parts.size() << " parts (" << final_parts << " final)  requests "
              << total << "  completed " << completed << "  failed " << failed << "  bad lines "
              << s.bad_lines;
    if (unfinished > 0)
        std::cout << "  unfinished " << unfinished;
    std::cout << '\n';
}

// Polls every part not yet final; true when all are.
bool poll_parts(api_session& api, batch_state& s, const std::string& state_path) {
    bool all_final = true;
    for (batch_part& p : s.parts) {
        if (p.batch_id.empty()) {
            all_final = false;
            continue;
        }
        if (is_final(p.status))
            continue;
        auto b = checked(api.run<batch_object>([&](batch_client& c, auto h) {
            c.async_poll(p.batch_id, std::move(h));
        }),
                         "retrieve batch " + p.batch_id);
        record_poll(p, b);
        all_final = all_final && is_final(p.status);
    }
    s.save(state_path);
    return all_final;
}

// Downloads a final part's files and merges them into the output; the lines the batch did not
// run go to its unfinished file. Saves the state once the part is merged.
void collect_part(api_session& api,
                  batch_state& s,
                  batch_part& p,
                  detail::merged_output& out,
                  const std::string& state_path,
                  bool quiet) {
    const std::string dir = batch_state::directory_of(state_path);
    detail::merge_counts total;
    for (const std::string* id : {&p.output_file_id, &p.error_file_id}) {
        if (id->empty())
            continue;
        const std::string path = dir + "/" + *id + ".jsonl";
        std::error_code ec;
        if (!fs::exists(path, ec)) {
            const auto r = api.run<std::uint64_t>(
                [&](batch_client& c, auto h) { c.async_download(*id, path, std::move(h)); });
            if (r.first)
                throw step_failed("download " + *id + ": " + r.first.message());
        }
        const auto c = detail::merge_provider_file(path, out);
        total.written += c.written;
        total.duplicates += c.duplicates;
    }
    out.sync();
    p.unfinished_file = "part-" + std::to_string(p.index) + ".unfinished.jsonl";
    p.unfinished = detail::write_unfinished(dir + "/" + p.file, out, dir + "/" + p.unfinished_file);
    p.merged = true;
    s.save(state_path);
    if (!quiet)
        std::cerr << "sluice batch: part " << p.index << " (" << p.status << "): " << total.written
                  << " records merged"
                  << (p.unfinished ? ", " + std::to_string(p.unfinished) + " lines unfinished"
                                   : std::string())
                  << '\n';
}

// The lines of parts that left some undone and that nothing has taken on yet.
std::vector<batch_part*> unfinished_parts(batch_state& s) {
    std::vector<batch_part*> v;
    for (batch_part& p : s.parts)
        if (p.merged && p.unfinished > 0 && p.finished_by.empty())
            v.push_back(&p);
    return v;
}

// A part's lines can go into a new batch when the batch ran out of time or was cancelled
// (not when it failed validation: the same lines would fail again), and at most
// `max_resubmissions` times, so that a window too short for them cannot loop without end.
constexpr std::uint32_t max_resubmissions = 3;

std::vector<batch_part*> resubmittable_parts(batch_state& s) {
    std::vector<batch_part*> v;
    for (batch_part* p : unfinished_parts(s))
        if ((p->status == "expired" || p->status == "cancelled") &&
            p->generation < max_resubmissions)
            v.push_back(p);
    return v;
}

// --resubmit: the unfinished lines become new parts, submitted as the first ones were.
void resubmit(api_session& api,
              batch_state& s,
              const batch_api_options& o,
              const std::string& state_path) {
    const auto todo = resubmittable_parts(s);
    if (todo.empty())
        return;
    std::uint32_t generation = 0;
    for (const batch_part* p : todo)
        generation = std::max(generation, p->generation + 1);
    const std::string dir = batch_state::directory_of(state_path);
    detail::split_options so;
    so.max_requests = o.max_batch_requests;
    so.max_bytes = o.max_batch_bytes;
    std::uint32_t next = 1;
    for (const batch_part& p : s.parts)
        next = std::max(next, p.index + 1);
    detail::part_writer writer(dir, so, next);
    for (batch_part* p : todo) {
        detail::file_handle in(::open((dir + "/" + p->unfinished_file).c_str(), O_RDONLY));
        if (in.get() < 0)
            detail::fail_io("open ", dir + "/" + p->unfinished_file);
        detail::line_reader lines(in.get(), 64, "read " + p->unfinished_file);
        std::string_view text;
        while (lines.next(text))
            if (!text.empty())
                writer.add(text);
    }
    auto parts = writer.finish();
    // One save: the new parts and the old ones' hand-over together, or neither.
    std::string names;
    for (auto& np : parts)
        names += (names.empty() ? "" : ", ") + std::to_string(np.index);
    for (batch_part* p : todo)
        p->finished_by = "resubmitted as part " + names;
    for (auto& np : parts) {
        np.generation = generation;
        s.parts.push_back(std::move(np));
    }
    s.save(state_path);
    submit_parts(api, s, state_path, o.run.quiet);
}

// --finish-live: the unfinished lines through `sluice run` (the dispatcher with its limits),
// appending to the same output, which it resumes as its journal.
int finish_live(batch_state& s, const batch_api_options& o, const std::string& state_path) {
    const auto todo = unfinished_parts(s);
    if (todo.empty())
        return exit_ok;
    const std::string dir = batch_state::directory_of(state_path);
    const std::string live_input = dir + "/live.jsonl";
    {
        detail::replacement_file f(live_input, std::nullopt);
        for (batch_part* p : todo) {
            detail::file_handle in(::open((dir + "/" + p->unfinished_file).c_str(), O_RDONLY));
            if (in.get() < 0)
                detail::fail_io("open ", dir + "/" + p->unfinished_file);
            detail::line_reader lines(in.get(), 64, "read " + p->unfinished_file);
            std::string_view text;
            while (lines.next(text))
                if (!text.empty())
                    f.append_line(text);
        }
        f.commit();
    }
    run_options r = o.run;
    r.input = live_input;
    const int status = run(r);
    if (status == exit_ok || status == exit_failures) {
        for (batch_part* p : todo)
            p->finished_by = "finished live";
        s.save(state_path);
    }
    return status;
}

} // namespace

int batch_submit(batch_api_options& o) {
    const std::string state_path = default_state(o, o.run.input);
    const auto opts = endpoint_options(o, "submit");
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
    const auto opts = endpoint_options(o, "status");
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
    const auto opts = endpoint_options(o, "collect");
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
    const auto opts = endpoint_options(o, "cancel");
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
