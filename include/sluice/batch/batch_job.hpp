#pragma once

#include <sluice/batch/engine_shards.hpp>

#include <sluice/result.hpp>
#include <sluice/sink/jsonl_writer.hpp>
#include <sluice/sink/reorder_buffer.hpp>
#include <sluice/source/id_index.hpp>
#include <sluice/source/jsonl_reader.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <variant>

namespace sluice {

/// How a batch job paces, orders and persists its records.
struct batch_job_options {
    /// Requests inside the engines at once; memory is bounded by this, not by the input.
    std::size_t window = 256;
    /// Write records in input order (`--ordered`) instead of completion order.
    bool ordered = false;
    /// With `ordered`: records held while an earlier one is outstanding. Reading stops when
    /// the window is full, so memory is bounded by about this many records.
    std::size_t reorder_window = 4096;
    /// Records reach the file (the page cache, which survives a killed process) at most this
    /// long after they were finished, in one write(2) per batch; zero writes every batch of
    /// completions the event loop hands over at once. The bound on what kill -9 can lose.
    std::chrono::milliseconds flush_interval{10};
    /// The output is fsync'ed this often (and at the end); zero syncs only at the end. The
    /// bound on what a machine crash can lose.
    std::chrono::milliseconds fsync_interval{1000};
};

/// The main loop of `sluice run` after planning: reads input lines, decides from the
/// `id_index` which to send (new), skip (a final record exists) or record as errors (bad lines,
/// repeated custom_ids), keeps at most `window` requests inside the engines, and appends one
/// record per line to the output (and failures to the errors file), in completion order or,
/// with `ordered`, in input order. Everything runs on `loop`; results from other shards'
/// threads are brought back to it.
///
/// Thread safety: none; all calls on `loop`'s thread.
class batch_job {
public:
    /// `index` must be finished (two-pass) unless `streaming`, where it is asked line by line.
    /// `errors` may be null.
    batch_job(boost::asio::io_context& loop,
              engine_shards& engines,
              jsonl_reader& in,
              id_index& index,
              bool streaming,
              jsonl_writer& out,
              jsonl_writer* errors,
              batch_job_options opts);

    /// Starts reading; `on_done` runs once every line read has its record (or the job failed
    /// on the output).
    void start(std::function<void()> on_done);

    /// Stops reading more lines: the engines hand back what they hold (requests not yet sent
    /// become not_attempted records) and the job ends when the requests on the wire are in.
    /// With `at_once`, those are cancelled too.
    void interrupt(bool at_once);

    bool interrupted() const noexcept { return interrupted_; }
    /// Input lines read (blank lines excluded).
    std::uint64_t lines() const noexcept { return lines_; }
    /// Lines written as error records without a request: bad input and repeated custom_ids.
    std::uint64_t bad_lines() const noexcept { return bad_lines_; }
    /// Lines skipped because the output already held their final record (a resumed run).
    std::uint64_t skipped() const noexcept { return skipped_; }
    /// Requests handed to the engines and not yet back.
    std::size_t in_flight() const noexcept { return in_flight_; }
    /// The first failure writing the output, or reading the input.
    const std::exception_ptr& error() const noexcept { return error_; }

    /// Flushes and fsyncs the output and errors files. Throws std::system_error.
    void sync();

private:
    using record = std::variant<result, input_record>;

    void fill();
    void dispatch(input_record& rec);
    void on_result(std::optional<std::uint64_t> seq, result&& r);
    template <class Item> // result or input_record
    void emit(std::optional<std::uint64_t> seq, Item&& item);
    void write(const record& rec);
    void write(const result& r);
    void write(const input_record& in);
    void written(std::size_t at, bool failed);
    void schedule_flush();
    void flush();
    void arm_sync_timer();
    void fail(std::exception_ptr e);
    void finish();
    bool room() const noexcept;

    boost::asio::io_context& loop_;
    engine_shards& engines_;
    jsonl_reader& reader_;
    id_index& index_;
    bool streaming_;
    jsonl_writer& out_;
    jsonl_writer* errors_;
    batch_job_options opts_;
    std::optional<reorder_buffer<record>> order_;
    boost::asio::steady_timer sync_timer_;
    boost::asio::steady_timer flush_timer_;
    std::size_t in_flight_ = 0;
    std::uint64_t lines_ = 0;
    std::uint64_t bad_lines_ = 0;
    std::uint64_t skipped_ = 0;
    bool eof_ = false;
    bool finished_ = false;
    bool interrupted_ = false;
    bool flush_pending_ = false;
    std::function<void()> on_done_;
    std::exception_ptr error_;
};

} // namespace sluice
