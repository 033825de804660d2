#include <sluice/batch/batch_job.hpp>
#include <sluice/batch/input_files.hpp>

#include <sluice/error.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

namespace sluice {

namespace asio = boost::asio;

batch_job::batch_job(asio::io_context& loop,
                     engine_shards& engines,
                     jsonl_reader& in,
                     id_index& index,
                     bool streaming,
                     jsonl_writer& out,
                     jsonl_writer* errors,
                     batch_job_options opts)
    : loop_(loop)
    , engines_(engines)
    , reader_(in)
    , index_(index)
    , streaming_(streaming)
    , out_(out)
    , errors_(errors)
    , opts_(opts)
    , sync_timer_(loop)
    , flush_timer_(loop) {
    if (opts_.ordered)
        order_.emplace(opts_.reorder_window);
}

void batch_job::start(std::function<void()> on_done) {
    on_done_ = std::move(on_done);
    arm_sync_timer();
    fill();
}

void batch_job::interrupt(bool at_once) {
    interrupted_ = true;
    eof_ = true;
    engines_.stop(!at_once);
    if (in_flight_ == 0)
        finish();
}

bool batch_job::room() const noexcept {
    return in_flight_ < opts_.window && !(order_ && order_->full());
}

void batch_job::fill() {
    try {
        input_record rec;
        while (!eof_ && room()) {
            if (!reader_.next(rec)) {
                eof_ = true;
                break;
            }
            ++lines_;
            switch (decide_line(rec, index_, streaming_)) {
            case line_action::skip:
                ++skipped_;
                break;
            case line_action::record_error:
                ++bad_lines_;
                emit(order_ ? std::optional(order_->issue()) : std::nullopt, std::move(rec));
                break;
            case line_action::send:
                dispatch(rec);
                break;
            }
        }
    } catch (...) {
        fail(std::current_exception());
    }
    if (eof_ && in_flight_ == 0)
        finish();
}

void batch_job::dispatch(input_record& rec) {
    std::optional<std::uint64_t> seq;
    if (order_)
        seq = order_->issue();
    ++in_flight_;
    // Results come back to this loop, whichever shard's thread produced them: the reader, the
    // writers and this object are single-threaded.
    engines_.next().async_complete(std::move(rec.request),
                                   asio::bind_executor(loop_, [this, seq](error_code, result&& r) {
                                       on_result(seq, std::move(r));
                                   }));
}

// Results are passed by reference down to the writer: one is about 700 bytes, and each move
// of it copied them.
void batch_job::on_result(std::optional<std::uint64_t> seq, result&& r) {
    --in_flight_;
    try {
        emit(seq, std::move(r));
    } catch (...) {
        fail(std::current_exception());
    }
    fill();
}

template <class Item>
void batch_job::emit(std::optional<std::uint64_t> seq, Item&& item) {
    if (!order_) {
        write(item);
        return;
    }
    order_->put(*seq, record(std::forward<Item>(item)));
    while (auto next = order_->pop())
        write(*next);
}

void batch_job::write(const record& rec) {
    std::visit([this](const auto& item) { write(item); }, rec);
}

// Formatted straight into the output's buffer.
void batch_job::write(const result& r) {
    const std::size_t at = out_.buffer().size();
    append_output_record(out_.buffer(), r, out_.next_record_id());
    written(at, !r.ok());
}

void batch_job::write(const input_record& in) {
    const std::size_t at = out_.buffer().size();
    append_input_error_record(out_.buffer(),
                              {in.line_number, in.request.custom_id, in.ec, in.message},
                              out_.next_record_id());
    written(at, true);
}

// The record appended to the output's buffer from `at` on is complete; a failure is copied
// from there to the errors file, with the same id.
void batch_job::written(std::size_t at, bool failed) {
    if (failed && errors_) {
        try {
            errors_->write_line(std::string_view(out_.buffer()).substr(at));
        } catch (...) {
            out_.written(); // the record stays counted in the output, whose id it took
            throw;
        }
    }
    out_.written();
    schedule_flush();
}

// Records go to the file in batches: one write(2) every flush_interval at most (the writer
// also writes whenever its buffer fills), so the system-call count stays low at tens of
// thousands of results a second, and a kill -9 loses at most that interval's records.
void batch_job::schedule_flush() {
    if (flush_pending_)
        return;
    flush_pending_ = true;
    if (opts_.flush_interval <= std::chrono::milliseconds::zero()) {
        asio::post(loop_, [this] { flush(); });
        return;
    }
    flush_timer_.expires_after(opts_.flush_interval);
    flush_timer_.async_wait([this](error_code ec) {
        if (!ec)
            flush();
    });
}

void batch_job::flush() {
    flush_pending_ = false;
    try {
        out_.flush();
        if (errors_)
            errors_->flush();
    } catch (...) {
        fail(std::current_exception());
    }
}

void batch_job::arm_sync_timer() {
    if (opts_.fsync_interval <= std::chrono::milliseconds::zero() || finished_)
        return;
    sync_timer_.expires_after(opts_.fsync_interval);
    sync_timer_.async_wait([this](error_code ec) {
        if (ec || finished_)
            return;
        try {
            sync();
        } catch (...) {
            fail(std::current_exception());
        }
        arm_sync_timer();
    });
}

void batch_job::sync() {
    out_.sync();
    if (errors_)
        errors_->sync();
}

// A record that cannot be written must not be paid for again and again: stop reading, let
// what is on the wire come back, and report.
void batch_job::fail(std::exception_ptr e) {
    if (!error_)
        error_ = std::move(e);
    eof_ = true;
}

void batch_job::finish() {
    if (finished_)
        return;
    finished_ = true;
    sync_timer_.cancel();
    if (flush_pending_) {
        flush_timer_.cancel();
        flush();
    }
    engines_.stop();
    if (on_done_)
        on_done_();
}

} // namespace sluice
