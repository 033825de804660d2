#include <sluice/source/id_index.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sluice {
namespace {

// ---- MurmurHash3_x64_128 ----------------------------------------------------------------

std::uint64_t load_le64(const unsigned char* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big)
        v = __builtin_bswap64(v);
    return v;
}

constexpr std::uint64_t fmix64(std::uint64_t k) noexcept {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

constexpr std::uint64_t murmur_c1 = 0x87c37b91114253d5ULL;
constexpr std::uint64_t murmur_c2 = 0x4cf5ad432745937fULL;

constexpr std::uint64_t mix_k1(std::uint64_t k1) noexcept {
    return std::rotl(k1 * murmur_c1, 31) * murmur_c2;
}
constexpr std::uint64_t mix_k2(std::uint64_t k2) noexcept {
    return std::rotl(k2 * murmur_c2, 33) * murmur_c1;
}

// ---- facts and verdicts ---------------------------------------------------------------

// What a fact says; the low two bits of entry::tag.
enum fact_kind : std::uint64_t {
    kind_done_id = 0, // line part is 0, so a group's done ids sort before its lines
    kind_input = 1,
    kind_done_line = 2, // hash part is {0, 0}; handled apart from the ids' groups
};

constexpr std::uint64_t max_line = (std::uint64_t{1} << 62) - 1;

// One fact, sorted by (hash, line): in the merged stream a group of equal hashes starts with
// its done ids, then its lines in increasing order, so the first line seen is the first
// occurrence.
struct entry {
    std::uint64_t hi;
    std::uint64_t lo;
    std::uint64_t tag; // line << 2 | fact_kind
};

bool operator<(const entry& a, const entry& b) noexcept {
    if (a.hi != b.hi)
        return a.hi < b.hi;
    if (a.lo != b.lo)
        return a.lo < b.lo;
    return a.tag < b.tag;
}

// Sorts a buffer of facts. The hashes are uniform, so one in-place radix pass on the top bits
// (American flag sort) leaves buckets of a dozen or so entries for std::sort to finish: two to
// three times faster than std::sort alone on a full buffer.
void sort_entries(std::vector<entry>& v) {
    const std::size_t n = v.size();
    if (n < 1024) {
        std::sort(v.begin(), v.end());
        return;
    }
    const int bits = std::min(16, static_cast<int>(std::bit_width(n / 16)) - 1);
    const int shift = 64 - bits;
    const std::size_t buckets = std::size_t{1} << bits;
    auto bucket_of = [shift](const entry& e) {
        return static_cast<std::size_t>(e.hi >> shift);
    };
    std::vector<std::size_t> begin(buckets + 1, 0);
    for (const entry& e : v)
        ++begin[bucket_of(e) + 1];
    for (std::size_t b = 0; b < buckets; ++b)
        begin[b + 1] += begin[b];
    std::vector<std::size_t> next(begin.begin(), begin.end() - 1); // first unplaced slot
    for (std::size_t b = 0; b < buckets; ++b) {
        while (next[b] < begin[b + 1]) {
            entry e = v[next[b]];
            // Follow the cycle of displaced entries until one belongs in this slot.
            for (std::size_t d = bucket_of(e); d != b; d = bucket_of(e))
                std::swap(e, v[next[d]++]);
            v[next[b]++] = e;
        }
    }
    for (std::size_t b = 0; b < buckets; ++b)
        std::sort(v.begin() + static_cast<std::ptrdiff_t>(begin[b]),
                  v.begin() + static_cast<std::ptrdiff_t>(begin[b + 1]));
}

fact_kind kind_of(const entry& e) noexcept {
    return static_cast<fact_kind>(e.tag & 3);
}
std::uint64_t line_of(const entry& e) noexcept {
    return e.tag >> 2;
}

// Per-line verdicts, two bits each. 0 means "not settled": the line was never added.
enum code : unsigned { code_unknown = 0, code_send = 1, code_done = 2, code_duplicate = 3 };

class verdict_map {
public:
    void resize(std::uint64_t lines) {
        size_ = lines;
        words_.assign(static_cast<std::size_t>((lines + 31) / 32), 0);
    }
    std::uint64_t size() const noexcept { return size_; }
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
    // A done line's verdict is set first or unconditionally; an id's verdict never replaces it.
    void settle(std::uint64_t line, unsigned c) noexcept {
        if (get(line) == code_unknown)
            set(line, c);
    }

private:
    std::vector<std::uint64_t> words_;
    std::uint64_t size_ = 0;
};

// ---- the temporary file ---------------------------------------------------------------

std::string temp_directory(const std::string& configured) {
    if (!configured.empty())
        return configured;
    const char* env = std::getenv("TMPDIR");
    return env && *env ? env : "/tmp";
}

// An unlinked file of sorted runs, read back with pread.
class spill_file {
public:
    explicit spill_file(std::string dir)
        : dir_(std::move(dir)) {
        fd_ = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd_ < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
            // File systems without O_TMPFILE: a named file, unlinked at once.
            std::string path = dir_ + "/sluice-ids-XXXXXX";
            fd_ = ::mkostemp(path.data(), O_CLOEXEC);
            if (fd_ >= 0)
                ::unlink(path.c_str());
        }
        if (fd_ < 0)
            throw std::system_error(errno,
                                    std::generic_category(),
                                    "id_index: cannot create a temporary file in " + dir_);
    }
    ~spill_file() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    spill_file(const spill_file&) = delete;
    spill_file& operator=(const spill_file&) = delete;

    // Appends `n` entries; returns the index of the first.
    std::uint64_t append(const entry* data, std::size_t n) {
        const std::uint64_t first = size_;
        auto p = reinterpret_cast<const char*>(data);
        std::size_t left = n * sizeof(entry);
        while (left > 0) {
            const ssize_t w = ::write(fd_, p, left);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                throw std::system_error(errno,
                                        std::generic_category(),
                                        "id_index: cannot write the temporary file in " + dir_);
            }
            p += w;
            left -= static_cast<std::size_t>(w);
        }
        size_ += n;
        return first;
    }

    void read(std::uint64_t first, entry* out, std::size_t n) const {
        auto p = reinterpret_cast<char*>(out);
        std::size_t left = n * sizeof(entry);
        auto offset = static_cast<off_t>(first * sizeof(entry));
        while (left > 0) {
            const ssize_t r = ::pread(fd_, p, left, offset);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                throw std::system_error(r < 0 ? errno : EIO,
                                        std::generic_category(),
                                        "id_index: cannot read the temporary file in " + dir_);
            p += r;
            left -= static_cast<std::size_t>(r);
            offset += r;
        }
    }

    // Gives the space of merged runs back to the file system; best effort.
    void discard(std::uint64_t first, std::uint64_t n) noexcept {
        (void)::fallocate(fd_,
                          FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          static_cast<off_t>(first * sizeof(entry)),
                          static_cast<off_t>(n * sizeof(entry)));
    }

private:
    std::string dir_;
    int fd_ = -1;
    std::uint64_t size_ = 0; // entries
};

struct run {
    std::uint64_t first; // entry index in the file
    std::uint64_t count;
};

// Reads one run through a small buffer.
struct run_cursor {
    const entry* cur = nullptr;
    const entry* end = nullptr;
    std::uint64_t next = 0; // next entry of the run in the file
    std::uint64_t left = 0; // entries of the run not yet read
    std::vector<entry> buffer;

    bool refill(const spill_file& file) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
        if (n == 0)
            return false;
        file.read(next, buffer.data(), n);
        next += n;
        left -= n;
        cur = buffer.data();
        end = cur + n;
        return true;
    }
};

void sift_down(std::vector<run_cursor*>& heap, std::size_t i) noexcept {
    const std::size_t n = heap.size();
    run_cursor* x = heap[i];
    for (;;) {
        std::size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && *heap[child + 1]->cur < *heap[child]->cur)
            ++child;
        if (!(*heap[child]->cur < *x->cur))
            break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = x;
}

// Feeds the runs' entries to `sink` in sorted order.
template <class Sink>
void merge_runs(const spill_file& file,
                const run* runs,
                std::size_t count,
                std::size_t buffer_bytes,
                Sink&& sink) {
    const std::size_t per_run = std::max<std::size_t>(buffer_bytes / sizeof(entry) / count, 16);
    std::vector<run_cursor> cursors(count);
    std::vector<run_cursor*> heap;
    heap.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        run_cursor& c = cursors[i];
        c.next = runs[i].first;
        c.left = runs[i].count;
        c.buffer.resize(static_cast<std::size_t>(std::min<std::uint64_t>(per_run, c.left)));
        if (c.refill(file))
            heap.push_back(&c);
    }
    for (std::size_t i = heap.size() / 2; i-- > 0;)
        sift_down(heap, i);
    while (!heap.empty()) {
        run_cursor* top = heap.front();
        sink(*top->cur);
        if (++top->cur == top->end && !top->refill(file)) {
            heap.front() = heap.back();
            heap.pop_back();
            if (heap.empty())
                break;
        }
        sift_down(heap, 0);
    }
}

// Walks the sorted facts group by group (equal hashes) and settles verdicts. In the final
// merge every line gets its verdict; in an intermediate merge, lines that are certainly not
// first occurrences (a smaller line with the same hash was seen) are settled as duplicates
// at once, and only the group's done marker and first line are passed on.
class group_walker {
public:
    // `out` is null for the final merge.
    group_walker(verdict_map& map, std::vector<entry>* out)
        : map_(map)
        , out_(out) {}

    void operator()(const entry& e) {
        const fact_kind kind = kind_of(e);
        if (kind == kind_done_line) {
            // Done whatever its id says, and not part of any id's group.
            map_.set(line_of(e), code_done);
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
    std::vector<entry>* out_;
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

void check_line(std::uint64_t line) {
    if (line > max_line)
        throw std::invalid_argument("id_index: line number out of range");
}

} // namespace

id_hash murmur3_x64_128(std::string_view data, std::uint32_t seed) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    const std::size_t len = data.size();
    std::uint64_t h1 = seed;
    std::uint64_t h2 = seed;

    const std::size_t blocks = len / 16;
    for (std::size_t i = 0; i < blocks; ++i, p += 16) {
        h1 ^= mix_k1(load_le64(p));
        h1 = std::rotl(h1, 27) + h2;
        h1 = h1 * 5 + 0x52dce729;
        h2 ^= mix_k2(load_le64(p + 8));
        h2 = std::rotl(h2, 31) + h1;
        h2 = h2 * 5 + 0x38495ab5;
    }

    // The tail: up to 15 bytes, little-endian into two words.
    std::uint64_t k1 = 0;
    std::uint64_t k2 = 0;
    const std::size_t tail = len & 15;
    for (std::size_t i = tail; i > 8; --i)
        k2 |= std::uint64_t{p[i - 1]} << ((i - 9) * 8);
    for (std::size_t i = std::min<std::size_t>(tail, 8); i > 0; --i)
        k1 |= std::uint64_t{p[i - 1]} << ((i - 1) * 8);
    if (tail > 8)
        h2 ^= mix_k2(k2);
    if (tail > 0)
        h1 ^= mix_k1(k1);

    h1 ^= len;
    h2 ^= len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    h2 += h1;
    return {h1, h2};
}

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

    void push(const entry& e) {
        if (buffer.capacity() == 0)
            buffer.reserve(options.buffer_entries);
        buffer.push_back(e);
        if (buffer.size() == options.buffer_entries)
            spill();
    }

    void spill() {
        sort_entries(buffer);
        if (!file)
            file = std::make_unique<spill_file>(temp_directory(options.temp_dir));
        runs.push_back({file->append(buffer.data(), buffer.size()), buffer.size()});
        ++spilled;
        buffer.clear();
    }

    // Merges groups of the oldest runs into longer ones until one merge can take them all.
    void reduce_runs() {
        const std::size_t fan_in = options.max_merge_fan_in;
        std::vector<entry> out;
        const std::size_t out_entries =
            std::max<std::size_t>(options.merge_buffer_bytes / 4 / sizeof(entry), 1024);
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
            merge_runs(*file, &runs[head], fan_in, options.merge_buffer_bytes, [&](const entry& e) {
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
    std::vector<entry> buffer;
    std::unique_ptr<spill_file> file;
    std::vector<run> runs; // contiguous in the file, in the order written
    std::size_t spilled = 0;
    verdict_map verdicts;

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
        sort_entries(m.buffer);
        group_walker walker(m.verdicts, nullptr);
        for (const entry& e : m.buffer)
            walker(e);
    } else {
        if (!m.buffer.empty())
            m.spill();
        std::vector<entry>().swap(m.buffer); // the merge's buffers take its place
        m.reduce_runs();
        group_walker walker(m.verdicts, nullptr);
        merge_runs(*m.file, m.runs.data(), m.runs.size(), m.options.merge_buffer_bytes, walker);
    }
    std::vector<entry>().swap(m.buffer);
    m.runs.clear();
    m.file.reset();
    m.finished = true;
}

line_verdict id_index::classify(std::uint64_t line) const {
    impl_->require(id_index_mode::two_pass, "classify");
    if (!impl_->finished)
        throw std::logic_error("id_index: classify before finish()");
    switch (impl_->verdicts.get(line)) {
    case code_send:
        return line_verdict::send;
    case code_done:
        return line_verdict::done;
    case code_duplicate:
        return line_verdict::duplicate;
    default:
        throw std::out_of_range("id_index: line " + std::to_string(line) +
                                " was not seen in pass 1 (did the input change?)");
    }
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
    return impl_->verdicts.get(line) == code_done;
}

std::size_t id_index::spilled_runs() const noexcept {
    return impl_->spilled;
}

} // namespace sluice
