#include "detail/recycled.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <thread>
#include <vector>

namespace {

struct op : sluice::detail::recycled<op, 4> {
    int payload[16] = {};
};

} // namespace

// The engine's per-request objects come back from the thread's free list instead of malloc.
TEST_CASE("a freed object's block is handed to the next one made on the thread") {
    auto first = std::make_unique<op>();
    const void* block = first.get();
    first.reset();
    auto second = std::make_unique<op>();
    CHECK(static_cast<const void*>(second.get()) == block);
    CHECK(second->payload[0] == 0); // constructed afresh
}

TEST_CASE("the free list keeps at most its bound, and frees made elsewhere are fine") {
    std::vector<std::unique_ptr<op>> many;
    for (int i = 0; i < 10; ++i)
        many.push_back(std::make_unique<op>());
    many.clear(); // 4 kept, 6 back to the heap
    std::vector<std::unique_ptr<op>> again;
    for (int i = 0; i < 10; ++i)
        again.push_back(std::make_unique<op>());
    for (const auto& p : again)
        CHECK(p != nullptr);
    // Freed on another thread: that thread keeps the blocks, and frees them when it ends.
    std::thread([moved = std::move(again)]() mutable { moved.clear(); }).join();
    auto after = std::make_unique<op>();
    CHECK(after != nullptr);
}
