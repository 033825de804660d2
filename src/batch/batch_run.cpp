#include <sluice/batch/batch_run.hpp>

#include <algorithm>

namespace sluice {

namespace {

// The output records carry each body as it came: the text the parser would copy out of it
// (id, model, choices) is never read here.
batch_options with_usage_only(batch_options o) {
    o.engine.fields = completion_fields::usage;
    return o;
}

} // namespace

struct batch_run::impl {
    impl(boost::asio::io_context& loop, batch_files f, batch_options o)
        : files(std::move(f))
        , opts(with_usage_only(std::move(o)))
        , streaming(!readable_twice(files.input))
        , index(streaming ? id_index_mode::one_pass : id_index_mode::two_pass) {
        if (!files.errors.empty() && files.errors == files.output)
            throw batch_setup_error("the errors file must be another file than the output");
        // The engines first: options they refuse must fail before any file is touched.
        try {
            engines.emplace(loop, opts.engine, opts.threads);
        } catch (const std::exception& e) {
            throw batch_setup_error(e.what());
        }
        // The output is the journal: what it already holds is not sent again.
        if (files.output != "-") {
            journal_options jo;
            jo.retry_failed = opts.retry_failed;
            jo.errors_path = files.errors;
            recovered = recover_journal(
                files.output,
                jo,
                [&](std::string_view id) { index.add_done_id(id); },
                [&](std::uint64_t line) { index.add_done_line(line); });
        }
        if (!streaming)
            total = scan_ids(files.input, opts.reader, index);
        const int in_fd = fds.add(open_input(files.input));
        const int out_fd = fds.add(open_output(files.output));
        // Without a journal to rebuild it from, the errors file starts afresh.
        const int err_fd =
            files.errors.empty() ? -1 : fds.add(open_output(files.errors, files.output == "-"));
        // The reader's one pass over a line has what the token estimate needs: the dispatcher
        // then does not parse every body a second time.
        reader_options ro = opts.reader;
        if (!ro.estimate)
            ro.estimate = opts.engine.estimate;
        reader.emplace(in_fd, std::move(ro));
        writer.emplace(out_fd);
        if (err_fd >= 0)
            errors.emplace(err_fd);
        batch_job_options jo = opts.job;
        if (jo.window == 0)
            jo.window = std::max<std::size_t>(256, opts.engine.pool.max_connections * 4);
        jo.reorder_window = std::max(jo.reorder_window, jo.window);
        job.emplace(
            loop, *engines, *reader, index, streaming, *writer, errors ? &*errors : nullptr, jo);
    }

    batch_files files;
    batch_options opts;
    bool streaming;
    id_index index;
    journal_recovery recovered;
    std::uint64_t total = 0;
    // Declared in the order they are built; destroyed in reverse, the job first.
    std::optional<engine_shards> engines;
    fd_guard fds;
    std::optional<jsonl_reader> reader;
    std::optional<jsonl_writer> writer;
    std::optional<jsonl_writer> errors;
    std::optional<batch_job> job;
    std::chrono::steady_clock::time_point started{};
    std::chrono::steady_clock::time_point ended{};
};

batch_run::batch_run(boost::asio::io_context& loop, batch_files files, batch_options opts)
    : impl_(std::make_unique<impl>(loop, std::move(files), std::move(opts))) {}

batch_run::~batch_run() = default;

input_problems batch_run::find_bad_lines(std::size_t keep) {
    if (impl_->streaming)
        throw batch_setup_error("checking every line first needs an input file: stdin or a pipe "
                                "cannot be read twice");
    return sluice::find_bad_lines(impl_->files.input, impl_->opts.reader, impl_->index, keep);
}

void batch_run::start(std::function<void()> on_done) {
    impl_->started = std::chrono::steady_clock::now();
    impl_->job->start([this, on_done = std::move(on_done)] {
        impl_->ended = std::chrono::steady_clock::now();
        if (on_done)
            on_done();
    });
}

void batch_run::interrupt(bool at_once) {
    impl_->job->interrupt(at_once);
}

void batch_run::sync() {
    impl_->job->sync();
}

batch_report batch_run::report() const {
    batch_report r;
    r.recovered = impl_->recovered;
    r.lines = impl_->job->lines();
    r.bad_lines = impl_->job->bad_lines();
    r.skipped = impl_->job->skipped();
    r.stats = impl_->engines->stats();
    r.interrupted = impl_->job->interrupted();
    const auto end = impl_->ended != std::chrono::steady_clock::time_point{}
                         ? impl_->ended
                         : std::chrono::steady_clock::now();
    if (impl_->started != std::chrono::steady_clock::time_point{})
        r.wall = end - impl_->started;
    return r;
}

stats_snapshot batch_run::stats() const {
    return impl_->engines->stats();
}

std::optional<std::uint64_t> batch_run::total_lines() const noexcept {
    if (impl_->streaming)
        return std::nullopt;
    return impl_->total;
}

const journal_recovery& batch_run::recovered() const noexcept {
    return impl_->recovered;
}

bool batch_run::interrupted() const noexcept {
    return impl_->job->interrupted();
}

std::size_t batch_run::in_flight() const noexcept {
    return impl_->job->in_flight();
}

std::uint64_t batch_run::bad_lines() const noexcept {
    return impl_->job->bad_lines();
}

std::uint64_t batch_run::skipped() const noexcept {
    return impl_->job->skipped();
}

std::exception_ptr batch_run::error() const noexcept {
    return impl_->job->error();
}

} // namespace sluice
