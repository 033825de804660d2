#include "cli/batch_api_steps.hpp"

#include "cli/run_command.hpp"

#include "batch_api/batch_split.hpp"
#include "detail/line_reader.hpp"
#include "sink/atomic_file.hpp"

#include <fcntl.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

namespace sluice::cli {

namespace fs = std::filesystem;

std::string upload_name(const batch_state& s, const batch_part& p) {
    return "sluice-" + s.job + "-part-" + std::to_string(p.index) + ".jsonl";
}

namespace {

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

} // namespace

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

} // namespace sluice::cli
