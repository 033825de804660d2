#pragma once

#include <sluice/error.hpp>
#include <sluice/request.hpp>
#include <sluice/source/shard.hpp>
#include <sluice/source/token_estimate.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace sluice {

/// One input line turned into a request, or into the reason it could not be.
struct input_record {
    /// 1-based line number in the input.
    std::uint64_t line_number = 0;
    /// The request; custom_id is "line-N" when the line had none.
    sluice::request request;
    /// errc::bad_input_line (or duplicate_custom_id, set by the caller) when the line is bad.
    error_code ec;
    /// Why the line is bad, naming what was wrong ("not JSON: ...", "missing body").
    std::string message;
    /// A bad line only: the custom_id a pass with `reader_options::unchecked_ids` gives the
    /// line, or empty when that pass checks it. The id_index was told this id in pass 1, and
    /// needs it back to correct its verdicts (`id_index::classify_bad_line`).
    std::string first_pass_id;
};

/// How the reader turns lines into requests: what completes a bare prompt line (a body the
/// user wrote, in the Batch API and chat-body forms, is sent as written), which lines it
/// yields, and whether it estimates each request's token cost on the way.
struct reader_options {
    /// Model of prompt lines that name none (`--model`). Empty: such a line is a bad line,
    /// since a request without a model cannot succeed and would cost a round trip to learn it.
    std::string model;
    /// System message put before every prompt (`--system`). Empty: no system message.
    std::string system;
    /// Only the lines of this shard (`--shard K/N`) are yielded, decided by the custom_id their
    /// record carries (`shard_of`); the others are skipped as blank lines are, keeping their
    /// line numbers. The default, 1 of 1, yields every line.
    shard_spec shard;
    /// Each line is checked as fully as ever, but only its verdict and custom_id are filled in:
    /// the request's body and model stay empty. For a pass that needs no more than that, such
    /// as `--strict`'s check of the whole input or a merge of shard outputs, which then costs
    /// about two thirds as much per line.
    bool ids_only = false;
    /// Stronger than `ids_only`, for the first pass of a batch run over a file: lines are not
    /// checked. Each record is good and carries the custom_id read by a scan of the line's top
    /// level that stops at that member; a line the scan cannot read with certainty is checked
    /// as `ids_only` would. A bad line among the good ones is then found by the second pass,
    /// whose records tell the id_index (`input_record::first_pass_id`). About a quarter of
    /// the checked pass's time per line (`reader_bench`). Ignored with more than one shard
    /// (`shard`): a bad line's shard is decided by the id its check gives it, which the scan
    /// cannot know.
    bool unchecked_ids = false;
    /// When set, each request's `token_cost` is filled in from the reader's own pass over the
    /// line, with these options (give it the dispatcher's `estimate`): the dispatcher then has
    /// no body to parse again. The figure is the one `estimate_tokens(body, *estimate)` gives.
    /// Empty (the default): `token_cost` stays empty and the dispatcher estimates it.
    std::optional<estimate_options> estimate;
};

/// Reads input lines from a file descriptor as a stream: memory is bounded by the longest
/// line, never the file. Blank lines are skipped; every other line of the shard
/// (`reader_options::shard`, by default all) yields exactly one record, a bad one included.
/// Three forms are accepted, so users can bring the files they have:
///  - OpenAI Batch API: `{"custom_id","method","url","body"}`, the body sent as written;
///  - a chat-completion body on its own (a line with `messages`), sent as written;
///  - a bare prompt: `{"prompt","custom_id"?,"model"?}`, sent as
///    `{"model","messages":[{"role":"system",...}?,{"role":"user","content":prompt}]}` with
///    the line's model, else `reader_options::model`.
///
/// Thread safety: none.
class jsonl_reader {
public:
    /// Reads from `fd` (not closed by the reader); `opts` complete prompt lines.
    explicit jsonl_reader(int fd, reader_options opts = {});
    ~jsonl_reader();
    jsonl_reader(jsonl_reader&&) noexcept;
    jsonl_reader& operator=(jsonl_reader&&) noexcept;

    /// Fills `out` with the next record; false at end of input. Throws std::system_error on a
    /// read error of the descriptor.
    bool next(input_record& out);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace sluice
