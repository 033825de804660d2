#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <stdexcept>
#include <utility>

namespace sluice {

/// Puts results that finish in any order back into input order, within a bounded window:
/// each item carries the sequence number it was given when its input line was read
/// (0, 1, 2, ... without gaps), and items come out strictly by that number. The owner stops
/// reading input while `full()`, so at most `window` items are ever held: memory is bounded by
/// the window (times the size of one record), not by the input. This is what
/// `sluice run --ordered` writes through.
///
/// Thread safety: none; the owner serialises access.
template <class T>
class reorder_buffer {
public:
    /// Holds at most `window` items between the oldest unwritten one and the newest one
    /// issued. Throws std::invalid_argument when `window` is zero.
    explicit reorder_buffer(std::size_t window)
        : window_(window) {
        if (window == 0)
            throw std::invalid_argument("reorder window: must be at least 1");
    }

    /// Takes the next sequence number for a line just read. Call only when `!full()`.
    std::uint64_t issue() {
        slots_.emplace_back();
        return next_issue_++;
    }

    /// True when another issue() would exceed the window: wait for the oldest item.
    bool full() const noexcept { return slots_.size() >= window_; }

    /// Places the item for sequence number `seq` (issued and not yet put).
    void put(std::uint64_t seq, T item) {
        if (seq < next_out_ || seq >= next_issue_)
            throw std::logic_error("reorder_buffer: sequence number not outstanding");
        auto& slot = slots_[static_cast<std::size_t>(seq - next_out_)];
        if (slot)
            throw std::logic_error("reorder_buffer: sequence number put twice");
        slot.emplace(std::move(item));
    }

    /// Takes the oldest item when it has arrived, in input order; empty otherwise.
    std::optional<T> pop() {
        if (slots_.empty() || !slots_.front())
            return std::nullopt;
        std::optional<T> out = std::move(slots_.front());
        slots_.pop_front();
        ++next_out_;
        return out;
    }

    /// Items issued and not yet popped.
    std::size_t outstanding() const noexcept { return slots_.size(); }
    std::size_t window() const noexcept { return window_; }

private:
    std::size_t window_;
    std::uint64_t next_issue_ = 0;
    std::uint64_t next_out_ = 0;
    std::deque<std::optional<T>> slots_;
};

} // namespace sluice
