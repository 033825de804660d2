#pragma once

#include <cstddef>
#include <new>

namespace sluice::detail {

// Gives `T` a class-specific operator new/delete that keeps up to `Keep` freed blocks per
// thread for the next `new T`. The engine makes one request_op and one exchange per request
// and frees them when the request ends, on the loop's thread: after the first few hundred
// requests, none of them costs a malloc. Per thread (as Asio's own handler recycling is)
// rather than per pool, because a request's last owner may be freed in a completion handler
// running after its pool or dispatcher is gone; a block freed on another thread simply joins
// that thread's list.
template <class T, std::size_t Keep = 512>
struct recycled {
    static void* operator new(std::size_t size) {
        free_list& l = list();
        if (size == sizeof(T) && l.count > 0)
            return l.blocks[--l.count];
        return ::operator new(size);
    }

    static void operator delete(void* p, std::size_t size) noexcept {
        free_list& l = list();
        if (size == sizeof(T) && l.count < Keep && !l.gone) {
            l.blocks[l.count++] = p;
            return;
        }
        ::operator delete(p);
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

} // namespace sluice::detail
