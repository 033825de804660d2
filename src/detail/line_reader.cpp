#include "detail/line_reader.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace sluice::detail {

line_reader::line_reader(int fd,
                         std::size_t padding,
                         std::string read_error,
                         std::size_t initial_capacity)
    : fd_(fd)
    , padding_(padding)
    , read_error_(std::move(read_error))
    , capacity_(initial_capacity) {
    // Growth doubles the capacity: from zero it would never make room.
    if (initial_capacity == 0)
        throw std::invalid_argument("line_reader: initial_capacity must be at least 1");
    buffer_ = std::make_unique<char[]>(capacity_ + padding_);
}

bool line_reader::next(std::string_view& line) {
    for (;;) {
        const char* base = buffer_.get();
        if (const void* nl = std::memchr(base + scanned_, '\n', end_ - scanned_)) {
            const auto stop = static_cast<std::size_t>(static_cast<const char*>(nl) - base);
            line = std::string_view(base + begin_, stop - begin_);
            line_offset_ = base_offset_ + begin_;
            newline_ended_ = true;
            begin_ = scanned_ = stop + 1;
            return true;
        }
        scanned_ = end_;
        if (eof_) {
            if (begin_ == end_)
                return false;
            line = std::string_view(base + begin_, end_ - begin_);
            line_offset_ = base_offset_ + begin_;
            newline_ended_ = false;
            begin_ = scanned_ = end_;
            return true;
        }
        read_more();
    }
}

void line_reader::read_more() {
    if (begin_ > 0) {
        // Keep only the partial line: the buffer holds one line's worth, never the file.
        std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
        base_offset_ += begin_;
        end_ -= begin_;
        scanned_ -= begin_;
        begin_ = 0;
    }
    if (end_ == capacity_) {
        const std::size_t grown = capacity_ * 2;
        auto bigger = std::make_unique<char[]>(grown + padding_);
        std::memcpy(bigger.get(), buffer_.get(), end_);
        buffer_ = std::move(bigger);
        capacity_ = grown;
    }
    for (;;) {
        const ssize_t n = ::read(fd_, buffer_.get() + end_, capacity_ - end_);
        if (n > 0) {
            end_ += static_cast<std::size_t>(n);
            return;
        }
        if (n == 0) {
            eof_ = true;
            return;
        }
        if (errno != EINTR)
            throw std::system_error(errno, std::generic_category(), read_error_);
    }
}

} // namespace sluice::detail
