#pragma once

#include <sluice/batch/batch_job.hpp>
#include <sluice/batch/engine_shards.hpp>
#include <sluice/batch/input_files.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/sink/journal.hpp>
#include <sluice/sink/jsonl_writer.hpp>
#include <sluice/source/id_index.hpp>
#include <sluice/source/jsonl_reader.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace sluice {

/// The files of a batch job.
struct batch_files {
    /// Batch API JSONL input; "-" reads stdin (read once: no planning pass).
    std::string input;
    /// The output JSONL, one record per input line. It is also the journal: an existing file
    /// is resumed (its final records kept, the rest sent). "-" writes stdout (nothing resumed).
    std::string output;
    /// Also write failed requests and bad lines here (the Batch API error file); empty: none.
    std::string errors;
};

/// How a batch job runs: the engine, how prompt lines become requests, the loop's window and
/// cadence, the event loops, and what a resume redoes.
struct batch_options {
    dispatcher_options engine;
    reader_options reader;
    /// `job.window` 0 (the default here) takes four requests per connection, at least 256.
    batch_job_options job = [] {
        batch_job_options j;
        j.window = 0;
        return j;
    }();
    /// Event loops, each with its share of the connections and limits (`engine_shards`).
    unsigned threads = 1;
    /// Resume: redo every error record of the output, not only the unanswered ones.
    bool retry_failed = false;
};

/// A batch job that cannot start as configured (options the engine refuses, an errors file
/// that is the output): nothing was read, written or sent.
struct batch_setup_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// What a finished (or interrupted) batch job did.
struct batch_report {
    /// What the output held before the run, and what of it was redone.
    journal_recovery recovered;
    /// Input lines read in this run (blank lines excluded).
    std::uint64_t lines = 0;
    /// Lines written as error records without a request (bad input, repeated custom_ids).
    std::uint64_t bad_lines = 0;
    /// Lines skipped because the output already held their final record.
    std::uint64_t skipped = 0;
    /// The engines' counters: requests, results by kind, tokens, latency.
    stats_snapshot stats;
    /// Stopped by `interrupt` before the input was done.
    bool interrupted = false;
    /// From `start` to the last record.
    std::chrono::steady_clock::duration wall{};
};

/// A batch job over files, as `sluice run` runs it: the output recovered as a journal (a torn
/// last line cut, unanswered records dropped to be redone), a planning pass over a file input
/// (which lines are new, done or repeated), then every line read, sent through the engines
/// (`threads` loops) within a bounded window and recorded exactly once, in completion or input
/// order, flushed and fsync'ed at the configured cadence. The constructor does the setup I/O
/// and throws (batch_setup_error for options, std::system_error or std::runtime_error for the
/// files) before anything is sent; `start` runs the job on `loop`.
///
/// Thread safety: none; call everything from the thread running `loop`.
class batch_run {
public:
    batch_run(boost::asio::io_context& loop, batch_files files, batch_options opts);
    ~batch_run();
    batch_run(const batch_run&) = delete;
    batch_run& operator=(const batch_run&) = delete;

    /// Reads the whole input again to find every bad line before anything is sent (the first
    /// `keep` with their reasons). Needs a file input.
    input_problems find_bad_lines(std::size_t keep = 20);

    /// Starts the job; `on_done` runs on `loop` once every line read has its record (or the
    /// output failed). Then `sync()` and `report()`.
    void start(std::function<void()> on_done);

    /// Stops reading: requests not yet sent become `not_attempted` records, the ones on the
    /// wire finish (or, `at_once`, are cancelled too). A resumed run sends what is left.
    void interrupt(bool at_once);

    /// Flushes and fsyncs the output and errors files. Throws std::system_error.
    void sync();

    /// What was done so far (all of it once `on_done` has run).
    batch_report report() const;

    /// The engines' live counters (for a progress display).
    stats_snapshot stats() const;

    /// Input lines found by the planning pass; empty for an input read once (stdin, a pipe).
    std::optional<std::uint64_t> total_lines() const noexcept;

    /// What the output held before this run.
    const journal_recovery& recovered() const noexcept;

    bool interrupted() const noexcept;
    std::size_t in_flight() const noexcept;
    std::uint64_t bad_lines() const noexcept;
    std::uint64_t skipped() const noexcept;

    /// The first failure writing the output or reading the input, if any.
    std::exception_ptr error() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace sluice
