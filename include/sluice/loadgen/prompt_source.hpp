#pragma once

#include <sluice/source/token_estimate.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// A number of tokens, fixed (`min == max`) or drawn uniformly from [min, max] for each prompt.
struct token_range {
    std::uint32_t min = 0;
    std::uint32_t max = 0;

    bool fixed() const noexcept { return min == max; }
};

/// Parses "N" (fixed) or "N-M" (a range, N <= M). Throws std::invalid_argument naming `what`
/// (the flag or field) when the text is neither or a number is 0 or out of range.
token_range parse_token_range(std::string_view text, std::string_view what);

/// Where a benchmark's prompts come from: a JSONL file, or synthetic text of a given length.
struct prompt_options {
    /// JSONL file of prompts, in any form `sluice run` accepts (Batch API lines, chat bodies,
    /// `{"prompt": ...}` lines), each body sent as written but for `stream`. Empty: synthetic
    /// prompts. The lines a run needs are read into memory at the start: all of them with
    /// `sample`, else at most as many as the run's request count (all when it has none).
    std::string input_file;
    /// With a file: draw each request's line at random with the run's seed; false (default):
    /// take the lines in file order, starting over at the end.
    bool sample = false;
    /// Model of synthetic prompts, and of prompt lines that name none. Required for synthetic
    /// prompts.
    std::string model;
    /// System message put before each `{"prompt": ...}` line of a file; empty: none.
    std::string system;
    /// Synthetic prompts: length of the user message in tokens, about one word each (as
    /// tokenizers of English count them). Default 1024, vLLM's random dataset.
    token_range input_tokens{1024, 1024};
    /// Synthetic prompts: `max_tokens` of each request. Default 128, vLLM's random dataset.
    token_range output_tokens{128, 128};
    /// Synthetic prompts: also send `"ignore_eos": true` (vLLM's extension that makes the
    /// server generate all `max_tokens`); servers that do not know it may refuse it.
    bool ignore_eos = false;
    /// `"stream": true` in every body (set in a file's bodies whatever they say, with
    /// `stream_options.include_usage` in the synthetic ones), or `"stream": false`.
    bool stream = true;
    /// Synthetic prompts: how many different prompts are built at the start and then cycled,
    /// at most; fewer when the run has fewer requests. Default 1000.
    std::size_t distinct = 1000;

    /// Throws std::invalid_argument naming the field when a value is out of range.
    void validate() const;
};

/// One prompt, ready to send.
struct prompt {
    /// The chat-completion request body.
    std::string body;
    /// The model the body names, when known (for the engine's per-model scopes).
    std::string model;
    /// Estimated prompt tokens, counted when the server's answer carries no `usage`: the
    /// synthetic length, or the engine's estimate of a file's body.
    std::uint64_t input_tokens = 0;
    /// Set by `prompt_source::prepare`: the engine's token-cost estimate of the body, and
    /// whether the body (then prepared as the engine prepares it) streams. Worked out once per
    /// prompt, so that the engine does not parse the body again for every request.
    std::optional<std::uint64_t> token_cost;
    bool streams = false;
};

/// The prompts of one run: built (synthetic) or read (a file) by the constructor, handed out
/// by `next()` in a cycle or, sampling, at random with the seed. Sans I/O after construction.
///
/// Thread safety: none.
class prompt_source {
public:
    /// Prompts for a run of `requests` requests (0 = no count limit), drawn with `seed`.
    /// Throws std::invalid_argument when `opts` does not validate, std::system_error when
    /// the file cannot be opened or read, and std::runtime_error when it holds no usable line.
    prompt_source(const prompt_options& opts, std::uint64_t requests, std::uint64_t seed);

    /// The next request's prompt; valid until the source is destroyed.
    const prompt& next();

    /// Prompts held.
    std::size_t size() const noexcept { return prompts_.size(); }
    /// Lines of the file that were not usable requests (skipped), and why the first was not.
    std::uint64_t bad_lines() const noexcept { return bad_lines_; }
    const std::string& first_bad_line() const noexcept { return first_bad_; }

    /// Where the prompts come from, in words, for a report: "prompts.jsonl (200 lines,
    /// cycled)", "synthetic: 1024 input tokens, 128 output tokens".
    std::string describe() const;

    const std::vector<prompt>& all() const noexcept { return prompts_; }

    /// Prepares every prompt's body as the engine would (`prepare_stream_request`) and sets
    /// its `token_cost` with `estimate` (give it the engine's options) and `streams`.
    void prepare(const estimate_options& estimate);

private:
    void read_file(std::uint64_t requests);
    void build_synthetic(std::uint64_t requests);

    prompt_options opts_;
    std::mt19937_64 rng_;
    std::vector<prompt> prompts_;
    std::size_t next_ = 0;
    std::uint64_t bad_lines_ = 0;
    std::string first_bad_;
};

/// English-like text of `tokens` words drawn with `rng` from a vocabulary of common words that
/// tokenizers count as one token each, so that its length in tokens is about `tokens`.
std::string synthetic_text(std::uint32_t tokens, std::mt19937_64& rng);

/// A synthetic chat body: `model`, one user message of `text`, `max_tokens`, `stream` (with
/// `stream_options.include_usage` when true) and, when asked, `ignore_eos`.
std::string synthetic_body(std::string_view model,
                           std::string_view text,
                           std::uint32_t max_tokens,
                           bool stream,
                           bool ignore_eos);

/// `body` (a JSON object) with its top-level `stream` set to `stream`: the value replaced
/// where the key is present, else the field added first; every other byte kept. Throws
/// std::invalid_argument when `body` is not a JSON object or its `stream` is not a boolean.
std::string with_stream(std::string_view body, bool stream);

} // namespace sluice
