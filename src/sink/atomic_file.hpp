#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

// The file handling under the journal: a descriptor that closes itself, and the replacement of
// a file's whole content that a crash cannot leave half done.

namespace sluice::detail {

/// The mode sluice creates its files with (outputs, error files, their replacements, summaries
/// and reports), before the umask: they hold prompts, answers and what they cost, so only
/// their owner reads them. A file that exists keeps the mode its owner gave it.
inline constexpr mode_t private_file_mode = 0600;

/// Throws std::system_error for errno with the message `what` + `name`. Takes the message in
/// pieces so that errno is read before any allocation can change it.
[[noreturn]] void fail_io(std::string_view what, std::string_view name = {});

/// Syncs `fd` to stable storage, retrying on EINTR; `name` goes into the error.
void sync_file(int fd, const std::string& name);

/// Writes `size` bytes, retrying short writes and EINTR. Returns how many were written and
/// sets `err` to the errno of the write that failed (0 when all were): a caller that keeps a
/// buffer must drop what reached the file before it retries.
std::size_t write_fully(int fd, const char* data, std::size_t size, int& err) noexcept;

/// fsync, retried on EINTR: 0, or the errno it failed with.
int fsync_retrying(int fd) noexcept;

/// The file a path names, symlinks followed, so that replacing it keeps the user's link;
/// nullopt when it does not exist.
std::optional<std::string> resolve(const std::string& path);

/// Owns a file descriptor: closed by the destructor, or by close() when the caller needs to
/// hear about a failed close.
class file_handle {
public:
    file_handle() = default;
    explicit file_handle(int fd) noexcept
        : fd_(fd) {}
    ~file_handle() { reset(); }
    file_handle(file_handle&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)) {}
    file_handle& operator=(file_handle&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }

    int get() const noexcept { return fd_; }
    void reset() noexcept {
        if (fd_ >= 0)
            ::close(std::exchange(fd_, -1));
    }
    /// A close that fails can be a write the file system never stored (NFS reports it here).
    void close(const std::string& name);

private:
    int fd_ = -1;
};

/// The new content of `target`, written under a temporary name beside it and renamed over it
/// by commit(): whoever opens `target` sees the old content or the new, never a mix, even
/// across a crash. Removed again when not committed.
class replacement_file {
public:
    /// `mode`: the permissions of the file being replaced; none for a new file, created with
    /// private_file_mode (umask applies).
    replacement_file(std::string target, std::optional<mode_t> mode);
    ~replacement_file();
    replacement_file(const replacement_file&) = delete;
    replacement_file& operator=(const replacement_file&) = delete;

    void append(std::string_view bytes);
    void append_line(std::string_view line);
    /// Copies the first `length` bytes of `from` (the file being replaced).
    void copy_prefix(int from, std::uint64_t length, const std::string& from_name);
    /// Makes the new content the target's, durably: file synced, renamed, directory synced.
    void commit();

    /// Removes the temporary file a crash during an earlier replacement of `target` left
    /// behind; the name is sluice's own, so nothing else is ever removed.
    static void remove_stale(const std::string& target);

private:
    void flush();

    std::string target_;
    std::string temp_;
    file_handle fd_;
    std::string buffer_;
    bool committed_ = false;
};

} // namespace sluice::detail
