#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

// The external sort under the two-pass id_index: facts sorted in memory-sized runs, spilled to
// an unlinked temporary file and merged back k ways through bounded buffers, so that memory
// stays the same whatever the input's size.

namespace sluice::detail {

/// One fact of the index, sorted by (hash, tag). The tag is the index's line << 2 | kind, so in
/// the merged stream a group of equal hashes starts with its done ids, then its lines in
/// increasing order, and the first line seen is the first occurrence.
struct id_fact {
    std::uint64_t hi;
    std::uint64_t lo;
    std::uint64_t tag;
};

inline bool operator<(const id_fact& a, const id_fact& b) noexcept {
    if (a.hi != b.hi)
        return a.hi < b.hi;
    if (a.lo != b.lo)
        return a.lo < b.lo;
    return a.tag < b.tag;
}

/// Sorts a buffer of facts; relies on the hashes being uniform.
void sort_facts(std::vector<id_fact>& v);

/// Where the temporary file goes: `configured`, else $TMPDIR, else /tmp.
std::string temp_directory(const std::string& configured);

/// An unlinked file of sorted runs, read back with pread. Errors throw std::system_error
/// naming the directory.
class spill_file {
public:
    explicit spill_file(std::string dir);
    ~spill_file();
    spill_file(const spill_file&) = delete;
    spill_file& operator=(const spill_file&) = delete;

    /// Appends `n` facts; returns the index of the first.
    std::uint64_t append(const id_fact* data, std::size_t n);
    /// Reads `n` facts from index `first` on.
    void read(std::uint64_t first, id_fact* out, std::size_t n) const;
    /// Gives the space of merged runs back to the file system; best effort.
    void discard(std::uint64_t first, std::uint64_t n) noexcept;

private:
    std::string dir_;
    int fd_ = -1;
    std::uint64_t size_ = 0; // facts
};

struct sorted_run {
    std::uint64_t first; // fact index in the file
    std::uint64_t count;
};

/// Reads one run through a small buffer.
struct run_cursor {
    const id_fact* cur = nullptr;
    const id_fact* end = nullptr;
    std::uint64_t next = 0; // next fact of the run in the file
    std::uint64_t left = 0; // facts of the run not yet read
    std::vector<id_fact> buffer;

    /// Reads the next bufferful; false when the run is exhausted.
    bool refill(const spill_file& file);
};

/// Restores the heap order (smallest current fact first) below `heap[i]`.
inline void sift_down(std::vector<run_cursor*>& heap, std::size_t i) noexcept {
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

/// Feeds the facts of `count` runs to `sink` in sorted order, reading through buffers that
/// share `buffer_bytes` (at least 16 facts per run). A template so that the sink, called once
/// per fact, is inlined into the loop.
template <class Sink>
void merge_runs(const spill_file& file,
                const sorted_run* runs,
                std::size_t count,
                std::size_t buffer_bytes,
                Sink&& sink) {
    const std::size_t per_run = std::max<std::size_t>(buffer_bytes / sizeof(id_fact) / count, 16);
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

} // namespace sluice::detail
