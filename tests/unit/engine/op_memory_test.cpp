#include "detail/op_memory.hpp"

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <thread>
#include <type_traits>

namespace asio = boost::asio;
using sluice::detail::op_allocator;
using sluice::detail::op_memory;
using sluice::detail::with_op_memory;

namespace {

struct alignas(64) wide_op {
    unsigned char bytes[200];
};

} // namespace

// The engine's socket waits, timers and posted functions take their memory back from the
// thread's lists: a block freed is the next one of its size class.
TEST_CASE("a freed operation block is reused by the next of its size class") {
    void* a = op_memory::allocate(200, alignof(std::max_align_t));
    op_memory::deallocate(a, 200, alignof(std::max_align_t));
    void* b = op_memory::allocate(240, alignof(std::max_align_t)); // same 64-byte class
    CHECK(b == a);
    void* c = op_memory::allocate(100, alignof(std::max_align_t)); // a smaller class
    CHECK(c != a);
    op_memory::deallocate(c, 100, alignof(std::max_align_t));
    op_memory::deallocate(b, 240, alignof(std::max_align_t));
}

TEST_CASE("large and over-aligned operations get the heap, aligned as asked") {
    op_allocator<wide_op> alloc;
    wide_op* w = alloc.allocate(1);
    CHECK(reinterpret_cast<std::uintptr_t>(w) % 64 == 0);
    alloc.deallocate(w, 1);
    void* big = op_memory::allocate(4096, alignof(std::max_align_t));
    CHECK(big != nullptr);
    op_memory::deallocate(big, 4096, alignof(std::max_align_t));
    CHECK(op_allocator<int>{} == op_allocator<wide_op>{});
}

TEST_CASE("blocks freed on another thread stay with that thread") {
    void* a = op_memory::allocate(300, alignof(std::max_align_t));
    std::thread([a] { op_memory::deallocate(a, 300, alignof(std::max_align_t)); }).join();
    void* b = op_memory::allocate(300, alignof(std::max_align_t));
    CHECK(b != nullptr);
    op_memory::deallocate(b, 300, alignof(std::max_align_t));
}

// The engine's attempt completions carry the dispatcher's executor (its loop, or a strand):
// bound outside the allocator's wrapper, they still run there, and a post takes the memory.
TEST_CASE("a handler with op memory bound to a strand runs on the strand") {
    asio::io_context ioc;
    auto strand = asio::make_strand(ioc);
    bool on_strand = false, posted_on_strand = false;
    asio::steady_timer t(ioc, std::chrono::milliseconds(1));
    t.async_wait(asio::bind_executor(strand, with_op_memory([&](boost::system::error_code) {
                                         on_strand = strand.running_in_this_thread();
                                     })));
    auto posted = asio::bind_executor(
        strand, with_op_memory([&] { posted_on_strand = strand.running_in_this_thread(); }));
    static_assert(
        std::is_same_v<asio::associated_allocator_t<decltype(posted)>, op_allocator<void>>);
    asio::post(std::move(posted));
    ioc.run();
    CHECK(on_strand);
    CHECK(posted_on_strand);
}
