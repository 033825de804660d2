// Parsing typical HTTP/1.1 answers (tests/support/http1_answers.hpp: nginx with
// Content-Length, OpenAI's head with x-ratelimit-* fields with Content-Length and chunked):
// Beast's basic_parser against sluice's http1_parser, each answer checked equal first. Prints
// ns per response (best of 5 interleaved rounds of about 0.3 s each) and the ratio.
//
//   http1_bench                      the table
//   http1_bench --only beast|sluice N   parse each answer N times in run_many(), nothing else:
//                                    for instructions per response under callgrind
//                                    (--toggle-collect='*run_many*'), docs/benchmarks.md
#include "contenders/http1_contenders.hpp"
#include "support/http1_answers.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace http1_bench;

std::vector<std::string> answers() {
    namespace a = ::sluice::test::http1_answers;
    return {a::nginx_answer(), a::openai_answer(), a::openai_chunked()};
}

template <class Contender>
[[gnu::noinline]] std::size_t
run_many(Contender& c, const std::vector<std::string>& in, std::size_t rounds) {
    std::size_t ok = 0;
    for (std::size_t r = 0; r < rounds; ++r)
        for (const auto& bytes : in)
            ok += c.c.parse(bytes);
    return ok;
}

template <class Contender>
double ns_per_response(Contender& c, const std::vector<std::string>& in) {
    using clock = std::chrono::steady_clock;
    std::size_t rounds = 0;
    const auto start = clock::now();
    while (clock::now() - start < std::chrono::milliseconds(300)) {
        run_many(c, in, 1000);
        rounds += 1000;
    }
    const double ns = std::chrono::duration<double, std::nano>(clock::now() - start).count();
    return ns / static_cast<double>(rounds * in.size());
}

} // namespace

int main(int argc, char** argv) {
    const auto in = answers();
    http1_bench::beast b;
    http1_bench::sluice s;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (!b.c.parse(in[i]) || !s.c.parse(in[i]) || !(b.c.s.a == s.c.s.a)) {
            std::printf("answer %zu: the parsers disagree, nothing timed\n", i);
            return 1;
        }
    }
    if (argc == 4 && std::strcmp(argv[1], "--only") == 0) {
        const auto n = static_cast<std::size_t>(std::strtoull(argv[3], nullptr, 10));
        const std::size_t ok =
            std::strcmp(argv[2], "beast") == 0 ? run_many(b, in, n) : run_many(s, in, n);
        std::printf("%zu responses parsed\n", ok);
        return ok == n * in.size() ? 0 : 1;
    }
    double tb = 1e18, ts = 1e18;
    for (int round = 0; round < 5; ++round) {
        tb = std::min(tb, ns_per_response(b, in));
        ts = std::min(ts, ns_per_response(s, in));
    }
    std::printf("%zu answers (%zu, %zu, %zu bytes), checked equal\n",
                in.size(),
                in[0].size(),
                in[1].size(),
                in[2].size());
    std::printf("%-22s %10s\n", "contender", "ns/response");
    std::printf("%-22s %10.0f\n", http1_bench::beast::name, tb);
    std::printf("%-22s %10.0f\n", http1_bench::sluice::name, ts);
    std::printf("Beast / sluice = %.2fx\n", tb / ts);
    return 0;
}
