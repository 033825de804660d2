#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sluice {

/// A 128-bit hash of a custom_id. The index compares ids by this hash, never by their text, so
/// that what it keeps per line is a fixed 24 bytes however long the ids are. This is the one
/// approximation of duplicate detection: two different ids with equal hashes would count as
/// the same id; for n distinct ids the odds of that anywhere are about n^2 / 2^129 (about
/// 1.5e-25 for 10 million ids).
struct id_hash {
    std::uint64_t hi = 0; ///< first output word of the hash (h1)
    std::uint64_t lo = 0; ///< second output word of the hash (h2)
    friend constexpr auto operator<=>(const id_hash&, const id_hash&) = default;
};

/// MurmurHash3_x64_128 (Austin Appleby's public-domain, well-studied non-cryptographic hash),
/// implemented here from its specification so that no dependency is needed. Inputs are read as
/// little-endian words on every platform, so the value is the same everywhere, and matches the
/// reference implementation (SMHasher verification value 0x6384BA69).
id_hash murmur3_x64_128(std::string_view data, std::uint32_t seed = 0) noexcept;

/// The hash the index uses for a custom_id: murmur3_x64_128 with seed 0.
inline id_hash hash_custom_id(std::string_view custom_id) noexcept {
    return murmur3_x64_128(custom_id, 0);
}

/// What a batch run does with one input line.
enum class line_verdict : std::uint8_t {
    /// First line with its custom_id, and no final record for it yet: send the request.
    send,
    /// Its final record already exists in the output (a resumed run): skip the line.
    done,
    /// An earlier line has the same custom_id: write a duplicate_custom_id error record.
    duplicate,
};

/// How the input can be read, which decides where the index keeps what it has seen.
enum class id_index_mode : std::uint8_t {
    /// The input is a file read twice: pass 1 adds every line, `finish()` merges, pass 2 asks.
    /// Memory stays bounded whatever the input's size; the facts wait in a temporary file.
    two_pass,
    /// The input is a stream read once (stdin): `classify_streaming()` answers each line as it
    /// comes, from in-memory sets that grow by about 21-43 bytes per distinct id (done ids alike;
    /// done lines about 50 bytes each).
    one_pass,
};

/// Tuning of the two-pass mode. With the defaults the index's own memory stays under 2 MiB
/// plus the per-line verdicts (3 bits per line: 3.6 MiB for 10 million lines), whatever the
/// size of the input and of the journal; pass 2 adds about 40 bytes for each bad line that
/// pass 1 counted as the first line of its id (see `classify_bad_line`).
struct id_index_options {
    /// Facts (24 bytes each) held in memory before they are sorted and written to the
    /// temporary file as one run. Larger means fewer runs and a cheaper merge; 65536 is
    /// 1.5 MiB. Inputs whose facts all fit never touch the disk.
    std::size_t buffer_entries = 65536;
    /// Bytes of read buffers shared by all runs during a merge in `finish()`, so that the
    /// merge's memory does not grow with the number of runs.
    std::size_t merge_buffer_bytes = std::size_t{1} << 20;
    /// Runs merged at once. With more runs than this, groups of this many are first merged
    /// into longer runs (and duplicates inside a group settled on the way), keeping every
    /// run's read buffer at merge_buffer_bytes / max_merge_fan_in or more.
    std::size_t max_merge_fan_in = 256;
    /// Directory of the temporary file; empty means $TMPDIR, else /tmp. The file is unlinked
    /// as soon as it is created, so nothing is left behind even after a crash. Its size is
    /// 24 bytes per fact (input line, done id or done line) in the worst case.
    std::string temp_dir;
};

/// Decides, for every input line of a batch run, whether to send it, skip it because its final
/// record already exists (resume), or answer it with a duplicate_custom_id error because an
/// earlier line has the same custom_id.
///
/// The rules, identical in both modes: the first line (smallest line number) with a given
/// custom_id is `done` when the journal reported a final record for that id, else `send`;
/// every later line with that id is `duplicate`. A line the journal reported a final record
/// for by number (a bad-line or duplicate record) is `done` whatever else, and still counts as
/// an occurrence of its id. Bad lines have no custom_id and are not occurrences of any.
///
/// Pass 1 need not check its lines. Checking a line costs a full parse, and the cheap first
/// pass of a batch run (`reader_options::unchecked_ids`) only reads each line's custom_id; the
/// lines it could not read so are checked. It adds every line it read an id for, so a bad line
/// may take its id's first place. Pass 2 checks every line and reports it, in input order: a
/// bad line with the id pass 1 counted it under (`classify_bad_line`), and its place goes to
/// the next good line with that id (`classify`). The verdicts are then those of a checked
/// pass 1, and stay so in any later pass over the same input.
///
/// Use, two-pass mode (file input): `add_done_id` / `add_done_line` for the journal's facts,
/// then `add_input` for every line of pass 1 with an id, then `finish(last_line)`, then, for
/// each line of a pass in order, `classify` (a good line) or `classify_bad_line`. One-pass
/// mode (stdin): the journal's facts, then `classify_streaming` or `classify_bad_line` for
/// each line as it is read.
///
/// Thread safety: none; pass 2's questions settle what the bad lines hand over.
///
/// Exception safety: calls out of order or in the wrong mode throw std::logic_error. Failing
/// to create or write the temporary file throws std::system_error naming the directory; the
/// index is then unusable but safe to destroy.
class id_index {
public:
    /// An empty index for inputs read as `mode` says. Throws std::invalid_argument when an
    /// option is out of range (buffer_entries < 2, max_merge_fan_in < 2).
    explicit id_index(id_index_mode mode, id_index_options options = {});
    ~id_index();
    id_index(id_index&&) noexcept;
    id_index& operator=(id_index&&) noexcept;

    /// Journal fact: the output has a final record for `custom_id`. Call before any input.
    void add_done_id(std::string_view custom_id);

    /// Journal fact: the output has a final record for input line `line` (a bad-line or
    /// duplicate record, which name their line rather than an id). Call before any input.
    void add_done_line(std::uint64_t line);

    /// Two-pass mode, pass 1: line `line` (1-based) has `custom_id`. Each good line once, and
    /// any unchecked line with the id it would have if good; the order does not matter. May
    /// write to the temporary file (std::system_error).
    void add_input(std::uint64_t line, std::string_view custom_id);

    /// Two-pass mode, end of pass 1: merges everything added and settles every line's verdict.
    /// `last_line` is the number of the input's last line, good or bad, so that `line_done`
    /// can answer for bad lines after the last good one; it must be at least the largest
    /// line added. Cost: one sequential read of the temporary file (plus one read and write
    /// per intermediate merge level); the file is closed afterwards.
    void finish(std::uint64_t last_line);

    /// Two-pass mode, pass 2, O(1): the verdict for good line `line` with `custom_id` (the id
    /// it had in pass 1), or `done` for a line given to `add_done_line`. Lines come in input
    /// order. Throws std::out_of_range for a line pass 1 did not add (the input changed).
    line_verdict classify(std::uint64_t line, std::string_view custom_id);

    /// One-pass mode: the verdict for line `line` with `custom_id`, recording the id as seen.
    /// Lines must come in increasing order, each once.
    line_verdict classify_streaming(std::uint64_t line, std::string_view custom_id);

    /// A bad line, in input order among `classify`'s: true when the journal reported its
    /// final record (`add_done_line`), so it must not be written again. `first_pass_id` is the
    /// id pass 1 added the line under, or empty when pass 1 checked the line; two-pass mode
    /// hands its place in that id's group to the next good line with the id.
    bool classify_bad_line(std::uint64_t line, std::string_view first_pass_id = {});

    /// True when the journal reported a final record for line `line` by its number. Two-pass
    /// mode: after `finish()`.
    bool line_done(std::uint64_t line) const;

    /// Sorted runs written to the temporary file so far, intermediate merges included (0 while
    /// everything fits in memory). For tests and diagnostics.
    std::size_t spilled_runs() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace sluice
