#pragma once

#include <cstddef>
#include <new>

namespace sluice::detail {

// A per-thread list of up to `Keep` freed blocks of `Size` bytes, for the next allocation of
// that size. Per thread (as Asio's own handler recycling is) rather than per pool, because a
// block's last owner may be freed in a completion handler running after its pool or
// dispatcher is gone; a block freed on another thread simply joins that thread's list.
template <std::size_t Size, std::size_t Keep>
class block_list {
public:
    // A block from the list, or null when it is empty.
    static void* take() noexcept {
        free_list& l = list();
        return l.count > 0 ? l.blocks[--l.count] : nullptr;
    }
    // Keeps `p` for the next take(); false when the list is full (the caller frees it).
    static bool give(void* p) noexcept {
        free_list& l = list();
        if (l.count == Keep || l.gone)
            return false;
        l.blocks[l.count++] = p;
        return true;
    }

private:
    struct free_list {
        void* blocks[Keep];
        std::size_t count = 0;
        bool gone = false; // set by the destructor: blocks freed later go back to the heap
        ~free_list() {
            gone = true;
            while (count > 0)
                ::operator delete(blocks[--count]);
        }
    };

    static free_list& list() {
        thread_local free_list l;
        return l;
    }
};

// Gives `T` a class-specific operator new/delete that keeps up to `Keep` freed blocks per
// thread for the next `new T`. The engine makes one request_op and one exchange per request
// and frees them when the request ends, on the loop's thread: after the first few hundred
// requests, none of them costs a malloc.
template <class T, std::size_t Keep = 512>
struct recycled {
    static void* operator new(std::size_t size) {
        if (size == sizeof(T))
            if (void* p = block_list<sizeof(T), Keep>::take())
                return p;
        return ::operator new(size);
    }

    static void operator delete(void* p, std::size_t size) noexcept {
        if (size == sizeof(T) && block_list<sizeof(T), Keep>::give(p))
            return;
        ::operator delete(p);
    }
};

} // namespace sluice::detail
