#pragma once

#include <sluice/http_response.hpp>

#include "sink/atomic_file.hpp"

#include <cstdint>
#include <string>
#include <string_view>

// The files under the Batch API client: an upload read from a mapping, a download written
// to disk as it arrives.
namespace sluice::detail {

// A whole file mapped read-only, so that an upload of hundreds of megabytes is sent from the
// page cache instead of a copy in memory. Throws std::system_error when it cannot be opened.
class mapped_file {
public:
    explicit mapped_file(const std::string& path);
    ~mapped_file();
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;

    std::string_view view() const noexcept { return {data_, size_}; }

private:
    const char* data_ = nullptr;
    std::size_t size_ = 0;
};

// Takes a download's body piece by piece and writes it to `path` + ".part"; commit() syncs it
// and renames it to `path`. Not committed, the partial file is removed. Memory: nothing is
// held beyond the piece being written.
class file_sink final : public body_observer {
public:
    explicit file_sink(std::string path);
    ~file_sink();
    file_sink(const file_sink&) = delete;
    file_sink& operator=(const file_sink&) = delete;

    error_code on_body(std::string_view piece, std::chrono::steady_clock::time_point) override;
    // Empties the partial file: an attempt starts again from the first byte.
    void restart();
    // A body the transport collected instead of handing over (none of it streamed).
    void take_collected(std::string_view body);
    // Syncs, renames into place and syncs the directory; returns the bytes written.
    std::uint64_t commit();

private:
    std::string path_;
    std::string temp_;
    file_handle fd_;
    std::uint64_t written_ = 0;
    bool committed_ = false;
};

} // namespace sluice::detail
