#include "sink/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace sluice::detail {
namespace {

constexpr std::size_t write_threshold = std::size_t{1} << 20;
constexpr std::string_view temp_suffix = ".sluice-tmp";

void write_all(int fd, const char* data, std::size_t size, const std::string& name) {
    int err = 0;
    write_fully(fd, data, size, err);
    if (err != 0) {
        errno = err;
        fail_io("write ", name);
    }
}

// A rename is durable only once the directory holding the new name is synced.
void sync_directory_of(const std::string& path) {
    const std::size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    const file_handle fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0)
        fail_io("open directory ", dir);
    const int err = fsync_retrying(fd.get());
    if (err == 0 || err == EINVAL) // file systems that cannot sync a directory order renames anyway
        return;
    errno = err;
    fail_io("fsync directory ", dir);
}

} // namespace

void fail_io(std::string_view what, std::string_view name) {
    const int err = errno;
    throw std::system_error(err, std::generic_category(), std::string(what) + std::string(name));
}

void sync_file(int fd, const std::string& name) {
    if (const int err = fsync_retrying(fd); err != 0) {
        errno = err;
        fail_io("fsync ", name);
    }
}

std::size_t write_fully(int fd, const char* data, std::size_t size, int& err) noexcept {
    err = 0;
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(fd, data + done, size - done);
        if (n >= 0) {
            done += static_cast<std::size_t>(n);
        } else if (errno != EINTR) {
            err = errno;
            break;
        }
    }
    return done;
}

int fsync_retrying(int fd) noexcept {
    while (::fsync(fd) != 0)
        if (errno != EINTR)
            return errno;
    return 0;
}

std::optional<std::string> resolve(const std::string& path) {
    std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr), &std::free);
    if (!real) {
        if (errno == ENOENT)
            return std::nullopt;
        fail_io("cannot resolve ", path);
    }
    return std::string(real.get());
}

void file_handle::close(const std::string& name) {
    if (::close(std::exchange(fd_, -1)) != 0 && errno != EINTR)
        fail_io("close ", name);
}

replacement_file::replacement_file(std::string target, std::optional<mode_t> mode)
    : target_(std::move(target))
    , temp_(target_ + std::string(temp_suffix)) {
    // A stale temporary file from an earlier crash would keep its own mode (an older sluice
    // made them 0644): the name is sluice's own, so it is removed and made afresh.
    remove_stale(target_);
    fd_ = file_handle(::open(
        temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode.value_or(private_file_mode)));
    if (fd_.get() < 0)
        fail_io("cannot create ", temp_);
    // The replaced file's mode exactly, as its owner set it, whatever the umask says.
    if (mode && ::fchmod(fd_.get(), *mode) != 0)
        fail_io("chmod ", temp_);
}

replacement_file::~replacement_file() {
    if (!committed_) {
        fd_.reset();
        ::unlink(temp_.c_str());
    }
}

void replacement_file::append(std::string_view bytes) {
    if (buffer_.size() + bytes.size() > write_threshold) {
        flush();
        if (bytes.size() >= write_threshold) // a huge record goes straight through
            return write_all(fd_.get(), bytes.data(), bytes.size(), temp_);
    }
    buffer_.append(bytes);
}

void replacement_file::append_line(std::string_view line) {
    append(line);
    append("\n");
}

void replacement_file::copy_prefix(int from, std::uint64_t length, const std::string& from_name) {
    flush();
    std::unique_ptr<char[]> chunk = std::make_unique<char[]>(write_threshold);
    for (std::uint64_t at = 0; at < length;) {
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(write_threshold, length - at));
        const ssize_t n = ::pread(from, chunk.get(), want, static_cast<off_t>(at));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail_io("read ", from_name);
        }
        if (n == 0)
            throw std::runtime_error(from_name + " shrank while being read");
        write_all(fd_.get(), chunk.get(), static_cast<std::size_t>(n), temp_);
        at += static_cast<std::uint64_t>(n);
    }
}

void replacement_file::commit() {
    flush();
    sync_file(fd_.get(), temp_);
    fd_.close(temp_);
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
        fail_io("rename to ", target_);
    committed_ = true;
    sync_directory_of(target_);
}

void replacement_file::remove_stale(const std::string& target) {
    const std::string temp = target + std::string(temp_suffix);
    if (::unlink(temp.c_str()) != 0 && errno != ENOENT)
        fail_io("remove ", temp);
}

void replacement_file::flush() {
    write_all(fd_.get(), buffer_.data(), buffer_.size(), temp_);
    buffer_.clear();
}

} // namespace sluice::detail
