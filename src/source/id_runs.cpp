#include "source/id_runs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdlib>
#include <system_error>
#include <utility>

namespace sluice::detail {

// The hashes are uniform, so one in-place radix pass on the top bits (American flag sort)
// leaves buckets of a dozen or so facts for std::sort to finish: two to three times faster
// than std::sort alone on a full buffer.
void sort_facts(std::vector<id_fact>& v) {
    const std::size_t n = v.size();
    if (n < 1024) {
        std::sort(v.begin(), v.end());
        return;
    }
    const int bits = std::min(16, static_cast<int>(std::bit_width(n / 16)) - 1);
    const int shift = 64 - bits;
    const std::size_t buckets = std::size_t{1} << bits;
    auto bucket_of = [shift](const id_fact& e) {
        return static_cast<std::size_t>(e.hi >> shift);
    };
    std::vector<std::size_t> begin(buckets + 1, 0);
    for (const id_fact& e : v)
        ++begin[bucket_of(e) + 1];
    for (std::size_t b = 0; b < buckets; ++b)
        begin[b + 1] += begin[b];
    std::vector<std::size_t> next(begin.begin(), begin.end() - 1); // first unplaced slot
    for (std::size_t b = 0; b < buckets; ++b) {
        while (next[b] < begin[b + 1]) {
            id_fact e = v[next[b]];
            // Follow the cycle of displaced facts until one belongs in this slot.
            for (std::size_t d = bucket_of(e); d != b; d = bucket_of(e))
                std::swap(e, v[next[d]++]);
            v[next[b]++] = e;
        }
    }
    for (std::size_t b = 0; b < buckets; ++b)
        std::sort(v.begin() + static_cast<std::ptrdiff_t>(begin[b]),
                  v.begin() + static_cast<std::ptrdiff_t>(begin[b + 1]));
}

std::string temp_directory(const std::string& configured) {
    if (!configured.empty())
        return configured;
    const char* env = std::getenv("TMPDIR");
    return env && *env ? env : "/tmp";
}

spill_file::spill_file(std::string dir)
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
        throw std::system_error(
            errno, std::generic_category(), "id_index: cannot create a temporary file in " + dir_);
}

spill_file::~spill_file() {
    if (fd_ >= 0)
        ::close(fd_);
}

std::uint64_t spill_file::append(const id_fact* data, std::size_t n) {
    const std::uint64_t first = size_;
    auto p = reinterpret_cast<const char*>(data);
    std::size_t left = n * sizeof(id_fact);
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

void spill_file::read(std::uint64_t first, id_fact* out, std::size_t n) const {
    auto p = reinterpret_cast<char*>(out);
    std::size_t left = n * sizeof(id_fact);
    auto offset = static_cast<off_t>(first * sizeof(id_fact));
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

void spill_file::discard(std::uint64_t first, std::uint64_t n) noexcept {
    (void)::fallocate(fd_,
                      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      static_cast<off_t>(first * sizeof(id_fact)),
                      static_cast<off_t>(n * sizeof(id_fact)));
}

bool run_cursor::refill(const spill_file& file) {
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

} // namespace sluice::detail
