#pragma once

#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

/// A sequence that keeps its first `N` elements inside the object and moves to the heap only
/// beyond them: a completion's `choices`, which nearly always holds one element (a request
/// asks for more with `n`), would otherwise cost an allocation on every response. Reads as a
/// contiguous range with the members of `std::vector` that results use (`size`, `[]`, `at`,
/// `front`, `back`, iteration, `push_back`, `emplace_back`, `resize`, `clear`). `T` must be
/// default-constructible: the `N` places always hold an element, reset when not in use.
template <class T, std::size_t N>
class inline_vector {
public:
    using value_type = T;
    using size_type = std::size_t;
    using reference = T&;
    using const_reference = const T&;
    using iterator = T*;
    using const_iterator = const T*;

    inline_vector() = default;
    inline_vector(std::initializer_list<T> values) {
        for (const T& v : values)
            push_back(v);
    }
    inline_vector(const inline_vector&) = default;
    inline_vector& operator=(const inline_vector&) = default;
    inline_vector(inline_vector&& o) noexcept(std::is_nothrow_move_assignable_v<T>)
        : size_(o.size_)
        , heap_(std::move(o.heap_)) {
        for (std::size_t i = 0; i < N && i < size_ && heap_.empty(); ++i)
            inline_[i] = std::move(o.inline_[i]);
        o.heap_.clear();
        o.size_ = 0;
    }
    inline_vector& operator=(inline_vector&& o) noexcept(std::is_nothrow_move_assignable_v<T>) {
        if (this != &o) {
            clear();
            size_ = o.size_;
            heap_ = std::move(o.heap_);
            for (std::size_t i = 0; i < N && i < size_ && heap_.empty(); ++i)
                inline_[i] = std::move(o.inline_[i]);
            o.heap_.clear();
            o.size_ = 0;
        }
        return *this;
    }
    ~inline_vector() = default;

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    T* data() noexcept { return heap_.empty() ? inline_ : heap_.data(); }
    const T* data() const noexcept { return heap_.empty() ? inline_ : heap_.data(); }
    T* begin() noexcept { return data(); }
    T* end() noexcept { return data() + size_; }
    const T* begin() const noexcept { return data(); }
    const T* end() const noexcept { return data() + size_; }
    T& operator[](std::size_t i) noexcept { return data()[i]; }
    const T& operator[](std::size_t i) const noexcept { return data()[i]; }
    T& at(std::size_t i) {
        check(i);
        return data()[i];
    }
    const T& at(std::size_t i) const {
        check(i);
        return data()[i];
    }
    T& front() noexcept { return data()[0]; }
    const T& front() const noexcept { return data()[0]; }
    T& back() noexcept { return data()[size_ - 1]; }
    const T& back() const noexcept { return data()[size_ - 1]; }

    template <class... Args>
    T& emplace_back(Args&&... args) {
        if (heap_.empty() && size_ < N) {
            inline_[size_] = T(std::forward<Args>(args)...);
            return inline_[size_++];
        }
        T value(std::forward<Args>(args)...); // may refer to an element about to move
        if (heap_.empty()) {
            heap_.reserve(2 * N + 1);
            for (std::size_t i = 0; i < size_; ++i) {
                heap_.push_back(std::move(inline_[i]));
                inline_[i] = T();
            }
        }
        heap_.push_back(std::move(value));
        ++size_;
        return heap_.back();
    }
    void push_back(const T& v) { emplace_back(v); }
    void push_back(T&& v) { emplace_back(std::move(v)); }

    void resize(std::size_t n) {
        while (size_ < n)
            emplace_back();
        if (n >= size_)
            return;
        if (!heap_.empty()) {
            heap_.resize(n);
            size_ = n;
            return;
        }
        for (std::size_t i = n; i < size_; ++i)
            inline_[i] = T();
        size_ = n;
    }
    void clear() noexcept(std::is_nothrow_move_assignable_v<T>) {
        if (!heap_.empty())
            heap_.clear();
        else
            for (std::size_t i = 0; i < size_; ++i)
                inline_[i] = T();
        size_ = 0;
    }

    friend bool operator==(const inline_vector& a, const inline_vector& b) {
        if (a.size_ != b.size_)
            return false;
        for (std::size_t i = 0; i < a.size_; ++i)
            if (!(a[i] == b[i]))
                return false;
        return true;
    }

private:
    void check(std::size_t i) const {
        if (i >= size_)
            throw std::out_of_range("inline_vector::at");
    }

    // In use while heap_ is empty; beyond N elements, all of them live in heap_.
    T inline_[N]{};
    std::size_t size_ = 0;
    std::vector<T> heap_;
};

} // namespace sluice
