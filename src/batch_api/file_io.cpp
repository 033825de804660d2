#include "batch_api/file_io.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>

namespace sluice::detail {

mapped_file::mapped_file(const std::string& path) {
    file_handle fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0)
        fail_io("open ", path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        fail_io("stat ", path);
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ == 0)
        return; // mmap refuses a zero length; an empty view needs no mapping
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED)
        fail_io("mmap ", path);
    data_ = static_cast<const char*>(p);
    ::madvise(p, size_, MADV_SEQUENTIAL);
}

mapped_file::~mapped_file() {
    if (data_)
        ::munmap(const_cast<char*>(data_), size_);
}

file_sink::file_sink(std::string path)
    : path_(std::move(path))
    , temp_(path_ + ".part") {
    fd_ = file_handle(
        ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, private_file_mode));
    if (fd_.get() < 0)
        fail_io("create ", temp_);
}

file_sink::~file_sink() {
    if (!committed_) {
        fd_.reset();
        ::unlink(temp_.c_str());
    }
}

error_code file_sink::on_body(std::string_view piece, std::chrono::steady_clock::time_point) {
    int err = 0;
    write_fully(fd_.get(), piece.data(), piece.size(), err);
    if (err)
        return error_code(err, boost::system::generic_category());
    written_ += piece.size();
    return {};
}

void file_sink::restart() {
    if (::ftruncate(fd_.get(), 0) != 0 || ::lseek(fd_.get(), 0, SEEK_SET) != 0)
        fail_io("truncate ", temp_);
    written_ = 0;
}

void file_sink::take_collected(std::string_view body) {
    restart();
    if (on_body(body, {}))
        fail_io("write ", temp_);
}

std::uint64_t file_sink::commit() {
    sync_file(fd_.get(), temp_);
    fd_.close(temp_);
    if (::rename(temp_.c_str(), path_.c_str()) != 0)
        fail_io("rename ", temp_);
    committed_ = true;
    const auto dir = std::filesystem::path(path_).parent_path();
    file_handle d(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.get() >= 0)
        fsync_retrying(d.get());
    return written_;
}

} // namespace sluice::detail
