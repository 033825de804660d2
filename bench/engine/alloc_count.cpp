// Heap allocations per request, steady state: every operator new, every aligned_alloc (Asio
// takes the memory of its operations and handlers from it, through a small per-thread cache
// that does not always hold a block to reuse) and every OpenSSL allocation made outside the
// mock server's thread is counted, for two runs of different lengths; the
// difference divided by the difference in requests is the marginal cost of one request, free of
// start-up (connections, handshakes, parsers, buffers that grow to their working size).
//
//   alloc_count [--requests N] [--connections C] [--buffered B] [--mode MODE]...
//
// --buffered B sets pool_options::tls_buffered_connections (0: every connection reads as
// those beyond the first 256 do, 4 KiB at a time, giving its buffer back between events).
//
// Modes: engine-http, engine-tls, engine-stream (the dispatcher's async_complete, requests made
// before counting starts, as a service that owns its requests would) and batch-tls (the whole
// `sluice run` path: JSONL in, output records out, through batch_run). Target (the performance
// issue): at most 2 allocations per request in steady state, none per response header.
#include <sluice/batch/batch_run.hpp>
#include <sluice/dispatcher.hpp>
#include <sluice/mock/mock_server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <openssl/crypto.h>

#include <cxxabi.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

std::atomic<std::uint64_t> g_news{0};
std::atomic<std::uint64_t> g_new_bytes{0};
std::atomic<std::uint64_t> g_ssl{0};
std::atomic<std::uint64_t> g_ssl_bytes{0};
// The mock server's thread is not the client's cost.
thread_local bool t_excluded = false;

// SLUICE_ALLOC_SITES=1 prints where the allocations come from: OpenSSL's by its file and line,
// the others (operator new, aligned_alloc) by their call stacks. heaptrack mixes in the mock
// server's thread, which allocates more than the client.
bool g_sites = std::getenv("SLUICE_ALLOC_SITES") != nullptr;

// Call stacks of the client's allocations, recorded only while a measured run counts.
constexpr std::size_t stack_depth = 10;
constexpr std::size_t stack_slots = 1024;
struct stack_site {
    std::atomic<bool> used{false};
    void* frames[stack_depth]{};
    int depth = 0;
    std::atomic<std::uint64_t> count{0};
};
stack_site g_stacks[stack_slots];
std::atomic<bool> g_record_stacks{false};
thread_local bool t_in_backtrace = false;

void note_stack() {
    if (!g_record_stacks.load(std::memory_order_relaxed) || t_in_backtrace)
        return;
    t_in_backtrace = true;
    void* frames[stack_depth + 2];
    const int n = ::backtrace(frames, static_cast<int>(stack_depth + 2));
    t_in_backtrace = false;
    // Skip note_stack and the counting allocator itself.
    void* const* f = frames + 2;
    const int depth = n > 2 ? n - 2 : 0;
    std::size_t h = 0;
    for (int i = 0; i < depth; ++i)
        h = h * 1099511628211ULL ^ reinterpret_cast<std::uintptr_t>(f[i]);
    for (std::size_t k = 0; k < stack_slots; ++k) {
        stack_site& s = g_stacks[(h + k) % stack_slots];
        if (!s.used.load(std::memory_order_acquire)) {
            // The client records from one thread; no other writer races for a slot.
            std::copy(f, f + depth, s.frames);
            s.depth = depth;
            s.used.store(true, std::memory_order_release);
        }
        if (s.depth == depth && std::equal(f, f + depth, s.frames)) {
            s.count.fetch_add(1, std::memory_order_relaxed);
            return;
        }
    }
}

void print_stacks(std::size_t n) {
    std::vector<const stack_site*> top;
    for (const stack_site& s : g_stacks)
        if (s.used.load() && s.count.load() * 20 >= n)
            top.push_back(&s);
    std::sort(top.begin(), top.end(), [](const stack_site* a, const stack_site* b) {
        return a->count.load() > b->count.load();
    });
    for (const stack_site* s : top) {
        std::printf("    new %.2f per request from\n",
                    static_cast<double>(s->count.load()) / static_cast<double>(n));
        for (int i = 0; i < s->depth; ++i) {
            Dl_info info{};
            const char* name = "?";
            char* demangled = nullptr;
            std::uintptr_t offset = 0;
            if (::dladdr(s->frames[i], &info) != 0) {
                offset = reinterpret_cast<std::uintptr_t>(s->frames[i]) -
                         reinterpret_cast<std::uintptr_t>(info.dli_fbase);
                if (info.dli_sname != nullptr) {
                    int st = 0;
                    demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &st);
                    name = demangled != nullptr ? demangled : info.dli_sname;
                }
            }
            // The object and offset resolve with `addr2line -f -C -e OBJECT OFFSET` when the
            // symbol is not exported.
            std::printf("      %s+0x%zx %.150s\n",
                        info.dli_fname != nullptr ? info.dli_fname : "?",
                        static_cast<std::size_t>(offset),
                        name);
            std::free(demangled);
        }
    }
}
constexpr std::size_t site_slots = 256;
struct site {
    const char* file;
    int line;
    std::atomic<std::uint64_t> count;
};
site g_site[site_slots];
void note_site(const char* file, int line) {
    if (!g_sites || !file)
        return;
    const std::size_t h =
        (std::hash<const char*>{}(file) ^ static_cast<std::size_t>(line) * 31) % site_slots;
    for (std::size_t k = 0; k < site_slots; ++k) {
        site& s = g_site[(h + k) % site_slots];
        if (s.file == nullptr) {
            s.file = file;
            s.line = line;
        }
        if (s.file == file && s.line == line) {
            s.count.fetch_add(1, std::memory_order_relaxed);
            return;
        }
    }
}

void* counted_new(std::size_t n) {
    if (!t_excluded) {
        note_stack();
        g_news.fetch_add(1, std::memory_order_relaxed);
        g_new_bytes.fetch_add(n, std::memory_order_relaxed);
    }
    if (void* p = std::malloc(n == 0 ? 1 : n))
        return p;
    throw std::bad_alloc();
}

void* counted_new_aligned(std::size_t n, std::align_val_t al) {
    if (!t_excluded) {
        note_stack();
        g_news.fetch_add(1, std::memory_order_relaxed);
        g_new_bytes.fetch_add(n, std::memory_order_relaxed);
    }
    const auto a = static_cast<std::size_t>(al);
    if (void* p = ::memalign(a, (n + a - 1) / a * a))
        return p;
    throw std::bad_alloc();
}

void* ssl_malloc(std::size_t n, const char* file, int line) {
    if (!t_excluded) {
        note_site(file, line);
        g_ssl.fetch_add(1, std::memory_order_relaxed);
        g_ssl_bytes.fetch_add(n, std::memory_order_relaxed);
    }
    return std::malloc(n);
}
void* ssl_realloc(void* p, std::size_t n, const char* file, int line) {
    if (!t_excluded) {
        note_site(file, line);
        g_ssl.fetch_add(1, std::memory_order_relaxed);
        g_ssl_bytes.fetch_add(n, std::memory_order_relaxed);
    }
    return std::realloc(p, n);
}
void ssl_free(void* p, const char*, int) {
    std::free(p);
}

struct counts {
    std::uint64_t news = 0, new_bytes = 0, ssl = 0, ssl_bytes = 0;
};
counts now() {
    return {g_news.load(), g_new_bytes.load(), g_ssl.load(), g_ssl_bytes.load()};
}

} // namespace

// Asio's aligned_new calls aligned_alloc: defined here, it takes the place of the C library's
// for the whole program, and hands on to memalign (the same allocator in glibc).
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
    if (!t_excluded) {
        note_stack();
        g_news.fetch_add(1, std::memory_order_relaxed);
        g_new_bytes.fetch_add(n, std::memory_order_relaxed);
    }
    return ::memalign(alignment, n);
}

void* operator new(std::size_t n) {
    return counted_new(n);
}
void* operator new[](std::size_t n) {
    return counted_new(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return counted_new_aligned(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return counted_new_aligned(n, a);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept try {
    return counted_new(n);
} catch (...) {
    return nullptr;
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept try {
    return counted_new(n);
} catch (...) {
    return nullptr;
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}

namespace asio = boost::asio;
using namespace sluice;

namespace {

std::string body(std::size_t i, bool stream) {
    std::string b = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Question )";
    b += std::to_string(i);
    b += R"(: say something short."}],"max_tokens":16)";
    if (stream)
        b += R"(,"stream":true)";
    b += "}";
    return b;
}

// The mock on its own thread, excluded from the counts.
struct server {
    asio::io_context ioc;
    std::optional<mock_server> mock;
    std::thread thread;

    explicit server(bool tls) {
        mock_options mo;
        mo.tls = tls;
        mo.answer_tokens = 16;
        mock.emplace(ioc.get_executor(), mo);
        mock->start();
        thread = std::thread([this] {
            t_excluded = true;
            ioc.run();
        });
    }
    ~server() {
        asio::post(ioc, [this] { mock->stop(); });
        ioc.stop();
        thread.join();
    }
};

// pool_options::tls_buffered_connections for the runs (--buffered).
std::optional<std::size_t> g_buffered;

dispatcher_options engine_options(const server& s, std::size_t connections) {
    dispatcher_options o;
    if (g_buffered)
        o.pool.tls_buffered_connections = *g_buffered;
    o.base_url = s.mock->base_url();
    o.api_key = "sk-alloc-count";
    o.tls.ca_pem = s.mock->certificate_pem();
    o.pool.max_connections = connections;
    return o;
}

// One closed-loop run of n requests through async_complete; returns what it allocated.
counts engine_run(const server& s, std::size_t n, std::size_t connections, bool stream) {
    std::vector<request> reqs(n);
    for (std::size_t i = 0; i < n; ++i) {
        // Appended, not `"r" + to_string(i)`: GCC 12 warns falsely (-Wrestrict) on that.
        reqs[i].custom_id = "r";
        reqs[i].custom_id += std::to_string(i);
        reqs[i].body = body(i, stream);
        reqs[i].model = "gpt-4o-mini";
    }
    asio::io_context ioc(1);
    dispatcher engine(ioc.get_executor(), engine_options(s, connections));
    std::size_t next = 0, done = 0, failed = 0;
    std::function<void()> send_one;
    send_one = [&] {
        engine.async_complete(std::move(reqs[next++]), [&](error_code ec, result) {
            failed += ec ? 1 : 0;
            if (++done == n)
                engine.stop();
            else if (next < n)
                send_one();
        });
    };
    const counts before = now();
    for (std::size_t i = 0; i < std::min(connections, n); ++i)
        send_one();
    ioc.run();
    const counts after = now();
    if (failed)
        std::fprintf(stderr, "alloc_count: %zu of %zu requests failed\n", failed, n);
    return {after.news - before.news,
            after.new_bytes - before.new_bytes,
            after.ssl - before.ssl,
            after.ssl_bytes - before.ssl_bytes};
}

counts batch_run_once(const server& s, std::size_t n, std::size_t connections) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("sluice-alloc-" + std::to_string(::getpid()) + "-" + std::to_string(n));
    std::filesystem::create_directories(dir);
    batch_files files;
    files.input = (dir / "in.jsonl").string();
    files.output = (dir / "out.jsonl").string();
    files.errors = (dir / "errors.jsonl").string();
    {
        std::ofstream in(files.input);
        for (std::size_t i = 0; i < n; ++i)
            in << R"({"custom_id":"r)" << i
               << R"(","method":"POST","url":"/v1/chat/completions","body":)" << body(i, false)
               << "}\n";
    }
    batch_options bo;
    bo.engine = engine_options(s, connections);
    counts c;
    {
        asio::io_context ioc(1);
        const counts before = now();
        batch_run run(ioc, files, bo);
        run.start([] {});
        ioc.run();
        const counts after = now();
        const auto rep = run.report();
        if (rep.stats.failed)
            std::fprintf(stderr,
                         "alloc_count: %llu of %zu lines failed\n",
                         static_cast<unsigned long long>(rep.stats.failed),
                         n);
        c = {after.news - before.news,
             after.new_bytes - before.new_bytes,
             after.ssl - before.ssl,
             after.ssl_bytes - before.ssl_bytes};
    }
    std::filesystem::remove_all(dir);
    return c;
}

void report(const char* mode,
            const counts& small,
            const counts& large,
            std::size_t n_small,
            std::size_t n_large) {
    const double dn = static_cast<double>(n_large - n_small);
    auto per = [&](std::uint64_t a, std::uint64_t b) {
        return (static_cast<double>(b) - static_cast<double>(a)) / dn;
    };
    std::printf("%-14s %10.2f %12.0f %10.2f %12.0f %10.2f\n",
                mode,
                per(small.news, large.news),
                per(small.new_bytes, large.new_bytes),
                per(small.ssl, large.ssl),
                per(small.ssl_bytes, large.ssl_bytes),
                per(small.news + small.ssl, large.news + large.ssl));
}

} // namespace

int main(int argc, char** argv) {
    // Before anything touches OpenSSL, so that every one of its allocations is seen.
    if (g_sites) {
        // backtrace() loads its unwinder on first use; not inside a counted allocation.
        void* warm[4];
        ::backtrace(warm, 4);
    }
    if (!CRYPTO_set_mem_functions(ssl_malloc, ssl_realloc, ssl_free)) {
        std::fprintf(stderr, "alloc_count: CRYPTO_set_mem_functions refused\n");
        return 1;
    }
    std::size_t n = 20'000, connections = 8;
    std::vector<std::string> modes;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--requests" && i + 1 < argc)
            n = std::stoul(argv[++i]);
        else if (a == "--connections" && i + 1 < argc)
            connections = std::stoul(argv[++i]);
        else if (a == "--buffered" && i + 1 < argc)
            g_buffered = std::stoul(argv[++i]);
        else if (a == "--mode" && i + 1 < argc)
            modes.emplace_back(argv[++i]);
        else {
            std::fprintf(
                stderr,
                "usage: alloc_count [--requests N] [--connections C] [--buffered B] [--mode "
                "engine-http|engine-tls|engine-stream|batch-tls]...\n");
            return 2;
        }
    }
    if (modes.empty())
        modes = {"engine-http", "engine-tls", "engine-stream", "batch-tls"};
    const std::size_t n_small = n / 4;
    std::printf("marginal allocations per request between runs of %zu and %zu requests, "
                "%zu connections\n",
                n_small,
                n,
                connections);
    std::printf("%-14s %10s %12s %10s %12s %10s\n",
                "mode",
                "new/req",
                "new B/req",
                "ssl/req",
                "ssl B/req",
                "total/req");
    for (const auto& m : modes) {
        const bool tls = m != "engine-http";
        server s(tls);
        const bool batch = m == "batch-tls", stream = m == "engine-stream";
        auto run = [&](std::size_t count) {
            return batch ? batch_run_once(s, count, connections)
                         : engine_run(s, count, connections, stream);
        };
        const counts a = run(n_small);
        for (site& st : g_site)
            st.count = 0;
        g_record_stacks = g_sites;
        const counts b = run(n);
        g_record_stacks = false;
        report(m.c_str(), a, b, n_small, n);
        // Start-up allocations of the second run show too, at well under one per request.
        for (site& st : g_site)
            if (st.file && st.count.load() >= n / 2)
                std::printf("    openssl %s:%d %.2f per request\n",
                            st.file,
                            st.line,
                            static_cast<double>(st.count.load()) / static_cast<double>(n));
        if (g_sites)
            print_stacks(n);
        for (stack_site& st : g_stacks) {
            st.count = 0;
            st.used = false;
        }
    }
}
