#pragma once

// What every libFuzzer target of tests/fuzz shares: a check that stops the run with a message
// (an invariant broken is a finding, as a crash is), the split points derived from the input,
// and a scratch directory for the targets whose code under test reads files.

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace sluice::fuzz {

// An invariant that failed: libFuzzer saves the input as a crash, as for any abort.
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    std::abort();
}

#define SLUICE_FUZZ_CHECK(cond)                                                                    \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ::sluice::fuzz::fail(#cond, __FILE__, __LINE__);                                       \
    } while (0)

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// A split point in [0, size] taken from the data itself, so that one input always splits the
// same way (a crash replays) while the fuzzer still explores every point.
inline std::size_t split_point(std::string_view data, unsigned salt = 0) {
    if (data.empty())
        return 0;
    std::uint32_t h = 2166136261u ^ salt; // FNV-1a over a few bytes: cheap and spread out
    for (std::size_t i = 0; i < data.size() && i < 16; ++i)
        h = (h ^ static_cast<unsigned char>(data[i])) * 16777619u;
    return h % (data.size() + 1);
}

// A private directory under $TMPDIR (or /tmp) for the process, removed at exit: the targets
// that read files write each input there, never into the repository.
inline const std::filesystem::path& scratch_dir() {
    // Never destroyed, so that the exit handler below still finds it.
    static const std::filesystem::path* const dir = [] {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base && *base ? base : "/tmp") + "/sluice-fuzz-XXXXXX";
        if (!::mkdtemp(pattern.data()))
            throw std::system_error(errno, std::generic_category(), "mkdtemp");
        auto* path = new std::filesystem::path(pattern);
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(*dir, ec);
        });
        return path;
    }();
    return *dir;
}

} // namespace sluice::fuzz
