#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace sluice {

/// A short string held inside the object: the response headers sluice keeps (x-request-id,
/// the rate-limit headers, Content-Type) and a result's request id. A `std::string` keeps 15
/// characters inline, and an OpenAI request id has 36: every response would cost an
/// allocation per header kept. Up to `N` characters are stored in place; a longer value
/// (rare, but a server may send one) goes to the heap, so nothing is ever cut. Reads as a
/// `std::string_view`.
template <std::size_t N>
class inline_string {
public:
    inline_string() noexcept = default;
    inline_string(std::string_view s) { assign(s.data(), s.size()); }
    inline_string(const char* s) { assign(s, std::strlen(s)); }
    // Only the characters in use are copied: cheaper than the whole array, and no read of
    // bytes never written.
    inline_string(const inline_string& o) { assign(o.data(), o.size_); }
    inline_string(inline_string&& o) noexcept
        : size_(o.size_)
        , long_(std::move(o.long_)) {
        if (size_ <= N && size_)
            std::memcpy(chars_, o.chars_, size_);
        o.size_ = 0;
    }
    ~inline_string() = default;
    inline_string& operator=(const inline_string& o) {
        if (this != &o)
            assign(o.data(), o.size_);
        return *this;
    }
    inline_string& operator=(inline_string&& o) noexcept {
        if (this != &o) {
            size_ = o.size_;
            long_ = std::move(o.long_);
            if (size_ <= N && size_)
                std::memcpy(chars_, o.chars_, size_);
            o.size_ = 0;
        }
        return *this;
    }

    inline_string& operator=(std::string_view s) {
        assign(s.data(), s.size());
        return *this;
    }
    inline_string& operator=(const char* s) {
        assign(s, std::strlen(s));
        return *this;
    }

    void assign(const char* p, std::size_t n) {
        if (n <= N) {
            if (n)
                std::memmove(chars_, p, n);
            long_.reset();
        } else {
            auto heap = std::make_unique<char[]>(n);
            std::memcpy(heap.get(), p, n);
            long_ = std::move(heap);
        }
        size_ = n;
    }
    void clear() noexcept {
        size_ = 0;
        long_.reset();
    }

    const char* data() const noexcept { return size_ <= N ? chars_ : long_.get(); }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view view() const noexcept { return {data(), size_}; }
    operator std::string_view() const noexcept { return view(); }
    std::string str() const { return std::string(view()); }

    // Its own overload for two of them: with only the one below, C++20's reversed candidates
    // make `a == b` ambiguous to clang.
    friend bool operator==(const inline_string& a, const inline_string& b) noexcept {
        return a.view() == b.view();
    }
    friend bool operator==(const inline_string& a, std::string_view b) noexcept {
        return a.view() == b;
    }
    friend bool operator==(const inline_string& a, const char* b) noexcept {
        return a.view() == std::string_view(b);
    }
    friend std::string operator+(std::string a, const inline_string& b) {
        a.append(b.data(), b.size());
        return a;
    }
    friend std::ostream& operator<<(std::ostream& os, const inline_string& s) {
        return os << s.view();
    }

private:
    char chars_[N];
    std::size_t size_ = 0;
    std::unique_ptr<char[]> long_; // only for a value longer than N
};

} // namespace sluice
