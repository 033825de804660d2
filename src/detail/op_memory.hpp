#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/system_executor.hpp>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace sluice::detail {

// Memory for the Asio operations of the engine's hot path: the socket waits, timers, posted
// functions and type-erased completions each request makes. Asio takes that memory from the
// handler's associated allocator, by default a per-thread cache of two blocks that a block of
// another size evicts: with the engine's mix of sizes, three or four of them went to malloc on
// every request. Here each size class (64-byte steps up to 1 KiB) keeps its own per-thread list
// of freed blocks, so the next operation of that size takes one back. Per thread, as Asio's own
// cache and `recycled` are, because an operation's memory is freed on whichever thread runs its
// completion, possibly after the pool or dispatcher that started it is gone.
class op_memory {
public:
    static constexpr std::size_t step = 64;
    static constexpr std::size_t classes = 16; // up to 1 KiB
    static constexpr std::size_t keep = 64;    // blocks kept per class and thread

    static void* allocate(std::size_t size, std::size_t align) {
        const std::size_t c = class_of(size);
        if (c < classes && align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
            lists& l = per_thread();
            if (l.count[c] > 0)
                return l.blocks[c][--l.count[c]];
            return ::operator new((c + 1) * step);
        }
        return ::operator new(size, std::align_val_t(align));
    }

    static void deallocate(void* p, std::size_t size, std::size_t align) noexcept {
        const std::size_t c = class_of(size);
        if (c < classes && align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
            lists& l = per_thread();
            if (l.count[c] < keep && !l.gone) {
                l.blocks[c][l.count[c]++] = p;
                return;
            }
            ::operator delete(p);
            return;
        }
        ::operator delete(p, std::align_val_t(align));
    }

private:
    static constexpr std::size_t class_of(std::size_t size) noexcept {
        return size == 0 ? 0 : (size - 1) / step;
    }

    struct lists {
        void* blocks[classes][keep];
        std::size_t count[classes] = {};
        bool gone = false; // set by the destructor: blocks freed later go back to the heap
        ~lists() {
            gone = true;
            for (std::size_t c = 0; c < classes; ++c)
                while (count[c] > 0)
                    ::operator delete(blocks[c][--count[c]]);
        }
    };

    static lists& per_thread() {
        thread_local lists l;
        return l;
    }
};

// The allocator Asio sees on a handler bound with `with_op_memory`; stateless, so every copy
// and rebinding is equal and a block may be freed through any of them.
template <class T>
struct op_allocator {
    using value_type = T;

    op_allocator() noexcept = default;
    template <class U>
    op_allocator(const op_allocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        return static_cast<T*>(op_memory::allocate(n * sizeof(T), alignof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        op_memory::deallocate(p, n * sizeof(T), alignof(T));
    }

    template <class U>
    bool operator==(const op_allocator<U>&) const noexcept {
        return true;
    }
};

// A handler whose operations take their memory from op_memory: Asio finds the allocator
// through the nested `allocator_type`. Not `asio::bind_allocator`: Asio takes a handler whose
// associators are specialised (as the binder's are) to have an executor of its own, and
// wraps every post of it in a work-tracking dispatcher. A handler with an executor is bound
// to it outside: `bind_executor(ex, with_op_memory(h))` (the executor binder passes the
// allocator on). Built in place from a lambda (`op_memory_handler{[...] {...}}`), it moves
// the lambda's captures no more often than the lambda alone.
template <class Handler>
struct op_memory_handler {
    Handler handler;

    using allocator_type = op_allocator<void>;
    allocator_type get_allocator() const noexcept { return {}; }

    template <class... Args>
    decltype(auto) operator()(Args&&... args) {
        return std::move(handler)(std::forward<Args>(args)...);
    }
};
template <class Handler>
op_memory_handler(Handler) -> op_memory_handler<Handler>;

template <class Handler>
op_memory_handler<std::decay_t<Handler>> with_op_memory(Handler&& h) {
    static_assert(
        std::is_same_v<
            boost::asio::associated_executor_t<std::decay_t<Handler>, boost::asio::system_executor>,
            boost::asio::system_executor>,
        "the wrapper would hide this handler's executor: bind it outside, "
        "bind_executor(ex, with_op_memory(h))");
    return {std::forward<Handler>(h)};
}

} // namespace sluice::detail
