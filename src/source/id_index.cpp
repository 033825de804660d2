#include <sluice/source/id_index.hpp>

#include "source/id_runs.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sluice {
namespace {

using detail::id_fact;
using detail::sorted_run;
using detail::spill_file;

// ---- facts and verdicts ---------------------------------------------------------------

// What a fact says; the low two bits of id_fact::tag.
enum fact_kind : std::uint64_t {
    kind_done_id = 0, // line part is 0, so a group's done ids sort before its lines
    kind_input = 1,
    kind_done_line = 2, // hash part is {0, 0}; handled apart from the ids' groups
};

constexpr std::uint64_t max_line = (std::uint64_t{1} << 62) - 1;

fact_kind kind_of(const id_fact& e) noexcept {
    return static_cast<fact_kind>(e.tag & 3);
}
std::uint64_t line_of(const id_fact& e) noexcept {
    return e.tag >> 2;
}

// Per-line verdicts of the ids' groups, two bits each. 0 means "not settled": the line was
// never added. Lines the journal named by number are kept apart (done_lines), because such a
// line still holds its place in its id's group, and that place may pass on (classify_bad_line).
enum code : unsigned { code_unknown = 0, code_send = 1, code_done = 2, code_duplicate = 3 };

class verdict_map {
public:
    void resize(std::uint64_t lines) {
        size_ = lines;
        words_.assign(static_cast<std::size_t>((lines + 31) / 32), 0);
        done_.assign(static_cast<std::size_t>((lines + 63) / 64), 0);
    }
    unsigned get(std::uint64_t line) const noexcept {
        if (line >= size_)
            return code_unknown;
        return static_cast<unsigned>(words_[line / 32] >> (line % 32 * 2)) & 3;
    }
    // Lines beyond the input (a journal from another input) are ignored.
    void set(std::uint64_t line, unsigned c) noexcept {
        if (line >= size_)
            return;
        std::uint64_t& w = words_[line / 32];
        const unsigned shift = line % 32 * 2;
        w = (w & ~(std::uint64_t{3} << shift)) | (std::uint64_t{c} << shift);
    }
    // The first verdict a line gets in the merge stands.
    void settle(std::uint64_t line, unsigned c) noexcept {
        if (get(line) == code_unknown)
            set(line, c);
    }
    bool done_line(std::uint64_t line) const noexcept {
        return line < size_ && (done_[line / 64] >> (line % 64) & 1) != 0;
    }
    void set_done_line(std::uint64_t line) noexcept {
        if (line < size_)
            done_[line / 64] |= std::uint64_t{1} << (line % 64);
    }

private:
    std::vector<std::uint64_t> words_;
    std::vector<std::uint64_t> done_;
    std::uint64_t size_ = 0;
};

// Walks facts sorted by (hash, tag), one id's group after another. In an intermediate merge,
// lines that are not their group's first occurrence (a smaller line with the same hash was
// seen) are settled as duplicates at once, and only the group's done marker and first line
// are passed on.
class group_walker {
public:
    // `out` is null for the final merge.
    group_walker(verdict_map& map, std::vector<id_fact>* out)
        : map_(map)
        , out_(out) {}

    void operator()(const id_fact& e) {
        const fact_kind kind = kind_of(e);
        if (kind == kind_done_line) {
            // Done whatever its id's group says; its place in the group is its input fact's.
            map_.set_done_line(line_of(e));
            return;
        }
        if (!in_group_ || e.hi != hi_ || e.lo != lo_) {
            in_group_ = true;
            hi_ = e.hi;
            lo_ = e.lo;
            has_done_ = false;
            has_first_ = false;
        }
        if (kind == kind_done_id) {
            if (!has_done_ && out_)
                out_->push_back(e);
            has_done_ = true;
            return;
        }
        if (has_first_) {
            map_.settle(line_of(e), code_duplicate);
            return;
        }
        has_first_ = true;
        if (out_)
            out_->push_back(e);
        else
            map_.settle(line_of(e), has_done_ ? code_done : code_send);
    }

private:
    verdict_map& map_;
    std::vector<id_fact>* out_;
    bool in_group_ = false;
    std::uint64_t hi_ = 0;
    std::uint64_t lo_ = 0;
    bool has_done_ = false;
    bool has_first_ = false;
};

// ---- one-pass sets --------------------------------------------------------------------

// Open addressing over 16-byte slots, at most 3/4 full; {0, 0} marks an empty slot, so that
// one hash value is kept beside the table.
class hash_set {
public:
    // True when `h` was not in the set.
    bool insert(const id_hash& h) {
        if (h == id_hash{})
            return !std::exchange(has_zero_, true);
        if ((size_ + 1) * 4 > slots_.size() * 3)
            grow();
        id_hash& slot = slots_[slot_of(h)];
        if (slot == h)
            return false;
        slot = h;
        ++size_;
        return true;
    }
    bool contains(const id_hash& h) const {
        if (h == id_hash{})
            return has_zero_;
        return !slots_.empty() && slots_[slot_of(h)] == h;
    }

private:
    // The slot holding `h`, or the empty slot where it belongs.
    std::size_t slot_of(const id_hash& h) const noexcept {
        const std::size_t mask = slots_.size() - 1;
        for (auto i = static_cast<std::size_t>(h.lo) & mask;; i = (i + 1) & mask) {
            if (slots_[i] == h || slots_[i] == id_hash{})
                return i;
        }
    }
    void grow() {
        std::vector<id_hash> old = std::exchange(slots_, {});
        slots_.resize(old.empty() ? 1024 : old.size() * 2);
        for (const id_hash& h : old)
            if (h != id_hash{})
                slots_[slot_of(h)] = h;
    }

    std::vector<id_hash> slots_;
    std::size_t size_ = 0;
    bool has_zero_ = false;
};

struct hash_of_hash {
    std::size_t operator()(const id_hash& h) const noexcept {
        return static_cast<std::size_t>(h.lo);
    }
};

void check_line(std::uint64_t line) {
    if (line > max_line)
        throw std::invalid_argument("id_index: line number out of range");
}

} // namespace

struct id_index::impl {
    impl(id_index_mode mode, id_index_options options)
        : mode(mode)
        , options(std::move(options)) {}

    void require(id_index_mode m, const char* what) const {
        if (mode != m)
            throw std::logic_error(std::string("id_index: ") + what + " in the wrong mode");
    }
    void require_adding(const char* what) const {
        if (finished)
            throw std::logic_error(std::string("id_index: ") + what + " after finish()");
    }

    void push(const id_fact& e) {
        if (buffer.capacity() == 0)
            buffer.reserve(options.buffer_entries);
        buffer.push_back(e);
        if (buffer.size() == options.buffer_entries)
            spill();
    }

    void spill() {
        detail::sort_facts(buffer);
        if (!file)
            file = std::make_unique<spill_file>(detail::temp_directory(options.temp_dir));
        runs.push_back({file->append(buffer.data(), buffer.size()), buffer.size()});
        ++spilled;
        buffer.clear();
    }

    // Merges groups of the oldest runs into longer ones until one merge can take them all.
    void reduce_runs() {
        const std::size_t fan_in = options.max_merge_fan_in;
        std::vector<id_fact> out;
        const std::size_t out_entries =
            std::max<std::size_t>(options.merge_buffer_bytes / 4 / sizeof(id_fact), 1024);
        out.reserve(out_entries);
        std::size_t head = 0; // runs[head..] are still to merge
        while (runs.size() - head > fan_in) {
            group_walker walker(verdicts, &out);
            const std::uint64_t merged_first = runs[head].first;
            std::uint64_t first = 0;
            std::uint64_t count = 0;
            bool started = false;
            auto flush = [&] {
                if (out.empty())
                    return;
                const std::uint64_t at = file->append(out.data(), out.size());
                if (!started)
                    first = at;
                started = true;
                count += out.size();
                out.clear();
            };
            detail::merge_runs(
                *file, &runs[head], fan_in, options.merge_buffer_bytes, [&](const id_fact& e) {
                    walker(e);
                    if (out.size() >= out_entries)
                        flush();
                });
            flush();
            std::uint64_t merged = 0;
            for (std::size_t i = head; i < head + fan_in; ++i)
                merged += runs[i].count;
            file->discard(merged_first, merged);
            head += fan_in;
            if (count > 0) {
                runs.push_back({first, count});
                ++spilled;
            }
        }
        runs.erase(runs.begin(), runs.begin() + static_cast<std::ptrdiff_t>(head));
    }

    id_index_mode mode;
    id_index_options options;
    bool finished = false;
    std::uint64_t max_input_line = 0;

    // two-pass
    std::vector<id_fact> buffer;
    std::unique_ptr<spill_file> file;
    std::vector<sorted_run> runs; // contiguous in the file, in the order written
    std::size_t spilled = 0;
    verdict_map verdicts;
    // Pass 2: places handed over by bad lines (classify_bad_line), by id, with their verdict.
    std::unordered_map<id_hash, unsigned, hash_of_hash> handed;

    // one-pass
    hash_set seen_ids;
    hash_set done_ids;
    std::unordered_set<std::uint64_t> done_lines;
};

id_index::id_index(id_index_mode mode, id_index_options options) {
    if (options.buffer_entries < 2)
        throw std::invalid_argument("id_index: buffer_entries must be at least 2");
    if (options.max_merge_fan_in < 2)
        throw std::invalid_argument("id_index: max_merge_fan_in must be at least 2");
    impl_ = std::make_unique<impl>(mode, std::move(options));
}
id_index::~id_index() = default;
id_index::id_index(id_index&&) noexcept = default;
id_index& id_index::operator=(id_index&&) noexcept = default;

void id_index::add_done_id(std::string_view custom_id) {
    impl_->require_adding("add_done_id");
    const id_hash h = hash_custom_id(custom_id);
    if (impl_->mode == id_index_mode::one_pass)
        impl_->done_ids.insert(h);
    else
        impl_->push({h.hi, h.lo, kind_done_id});
}

void id_index::add_done_line(std::uint64_t line) {
    impl_->require_adding("add_done_line");
    check_line(line);
    if (impl_->mode == id_index_mode::one_pass)
        impl_->done_lines.insert(line);
    else
        impl_->push({0, 0, (line << 2) | kind_done_line});
}

void id_index::add_input(std::uint64_t line, std::string_view custom_id) {
    impl_->require(id_index_mode::two_pass, "add_input");
    impl_->require_adding("add_input");
    check_line(line);
    impl_->max_input_line = std::max(impl_->max_input_line, line);
    const id_hash h = hash_custom_id(custom_id);
    impl_->push({h.hi, h.lo, (line << 2) | kind_input});
}

void id_index::finish(std::uint64_t last_line) {
    impl& m = *impl_;
    m.require(id_index_mode::two_pass, "finish");
    m.require_adding("finish");
    if (last_line < m.max_input_line)
        throw std::invalid_argument("id_index: finish() given a last line before an added line");
    check_line(last_line);
    m.verdicts.resize(last_line + 1);
    if (m.runs.empty()) {
        // Everything fit in memory: no file at all.
        detail::sort_facts(m.buffer);
        group_walker walker(m.verdicts, nullptr);
        for (const id_fact& e : m.buffer)
            walker(e);
    } else {
        if (!m.buffer.empty())
            m.spill();
        std::vector<id_fact>().swap(m.buffer); // the merge's buffers take its place
        m.reduce_runs();
        group_walker walker(m.verdicts, nullptr);
        detail::merge_runs(
            *m.file, m.runs.data(), m.runs.size(), m.options.merge_buffer_bytes, walker);
    }
    std::vector<id_fact>().swap(m.buffer);
    m.runs.clear();
    m.file.reset();
    m.finished = true;
}

line_verdict id_index::classify(std::uint64_t line, std::string_view custom_id) {
    impl& m = *impl_;
    m.require(id_index_mode::two_pass, "classify");
    if (!m.finished)
        throw std::logic_error("id_index: classify before finish()");
    unsigned c = m.verdicts.get(line);
    if (c == code_unknown)
        throw std::out_of_range("id_index: line " + std::to_string(line) +
                                " was not seen in pass 1 (did the input change?)");
    if (c == code_duplicate && !m.handed.empty()) {
        // The first good line after a bad one that held its id's first place takes that place.
        const auto it = m.handed.find(hash_custom_id(custom_id));
        if (it != m.handed.end()) {
            c = it->second;
            m.verdicts.set(line, c);
            m.handed.erase(it);
        }
    }
    if (m.verdicts.done_line(line))
        return line_verdict::done;
    return c == code_send   ? line_verdict::send
           : c == code_done ? line_verdict::done
                            : line_verdict::duplicate;
}

bool id_index::classify_bad_line(std::uint64_t line, std::string_view first_pass_id) {
    impl& m = *impl_;
    if (m.mode == id_index_mode::one_pass)
        return m.done_lines.count(line) != 0;
    if (!m.finished)
        throw std::logic_error("id_index: classify_bad_line before finish()");
    const unsigned c = m.verdicts.get(line);
    if (!first_pass_id.empty() && (c == code_send || c == code_done)) {
        // Counted as its id's first line by a pass that did not check it: the place goes to
        // the next good line with that id. Settled once, so that a later pass over the input
        // asks the same questions and gets the same answers.
        m.handed.insert_or_assign(hash_custom_id(first_pass_id), c);
        m.verdicts.set(line, code_duplicate);
    }
    return m.verdicts.done_line(line);
}

line_verdict id_index::classify_streaming(std::uint64_t line, std::string_view custom_id) {
    impl_->require(id_index_mode::one_pass, "classify_streaming");
    const id_hash h = hash_custom_id(custom_id);
    // The id counts as seen even on a done line, exactly as in the two-pass merge.
    const bool first = impl_->seen_ids.insert(h);
    if (impl_->done_lines.count(line))
        return line_verdict::done;
    if (!first)
        return line_verdict::duplicate;
    return impl_->done_ids.contains(h) ? line_verdict::done : line_verdict::send;
}

bool id_index::line_done(std::uint64_t line) const {
    if (impl_->mode == id_index_mode::one_pass)
        return impl_->done_lines.count(line) != 0;
    if (!impl_->finished)
        throw std::logic_error("id_index: line_done before finish()");
    return impl_->verdicts.done_line(line);
}

std::size_t id_index::spilled_runs() const noexcept {
    return impl_->spilled;
}

} // namespace sluice
