// Parsing the fast-path fields out of typical responses: sluice's parser against a bare
// simdjson on-demand walk and a full nlohmann::json DOM parse. Every contender's answer is
// checked against sluice's before anything is timed. Prints ns per body and the ratios
// (targets: nlohmann / sluice >= 5, sluice / bare simdjson close to 1).
#include "contenders/nlohmann_dom.hpp"
#include "contenders/simdjson_bare.hpp"
#include "contenders/sluice_fast_path.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Bodies as the transport delivers them: with spare capacity for in-place parsing.
std::vector<std::string> load_bodies() {
    std::vector<std::string> bodies;
    for (const char* name : {"plain.json",
                             "n3.json",
                             "tool_calls.json",
                             "unicode.json",
                             "vllm.json",
                             "llamacpp.json",
                             "no_usage.json"}) {
        std::string b = read(std::string(SLUICE_TEST_FIXTURES) + "/responses/" + name);
        b.reserve(b.size() + sluice::parse_padding);
        bodies.push_back(std::move(b));
    }
    // A typical answer is longer than these fixtures: one copy of the plain answer gets 2,000
    // more characters of content.
    std::string longer = bodies.front();
    const std::string text(2000, 'x');
    const auto at = longer.find("Hello! How can I assist you today?");
    longer.insert(at, text);
    longer.reserve(longer.size() + sluice::parse_padding);
    bodies.push_back(std::move(longer));
    return bodies;
}

template <class Contender>
bool check(Contender& c,
           const std::vector<std::string>& bodies,
           const std::vector<extract>& reference) {
    for (std::size_t i = 0; i < bodies.size(); ++i) {
        if (!c.parse(bodies[i]) || !(c.result() == reference[i])) {
            std::printf("%s gives a different answer on body %zu: not timed\n", Contender::name, i);
            return false;
        }
    }
    return true;
}

struct timing {
    double ns_per_body = 0;
    double mb_per_s = 0;
};

// Runs the contender over all bodies for about 1.5 s (bounded in rounds too).
template <class Contender>
timing time_it(Contender& c, const std::vector<std::string>& bodies) {
    using clock = std::chrono::steady_clock;
    std::size_t rounds = 0, bytes = 0;
    const auto start = clock::now();
    while (clock::now() - start < std::chrono::milliseconds(1500) && rounds < 2'000'000) {
        for (const auto& b : bodies) {
            c.parse(b);
            bytes += b.size();
        }
        ++rounds;
    }
    const double ns = std::chrono::duration<double, std::nano>(clock::now() - start).count();
    return {ns / static_cast<double>(rounds * bodies.size()),
            static_cast<double>(bytes) * 1e3 / ns};
}

} // namespace

int main() {
    const auto bodies = load_bodies();
    sluice_fast_path fast;
    simdjson_bare bare;
    nlohmann_dom dom;

    std::vector<extract> reference(bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) {
        if (!fast.parse(bodies[i])) {
            std::printf("sluice cannot parse body %zu\n", i);
            return 1;
        }
        reference[i] = fast.result();
    }
    if (!check(bare, bodies, reference) || !check(dom, bodies, reference))
        return 1;

    const timing t_fast = time_it(fast, bodies);
    const timing t_bare = time_it(bare, bodies);
    const timing t_dom = time_it(dom, bodies);

    std::printf("%zu fixture bodies, answers checked equal\n", bodies.size());
    std::printf("%-28s %10s %10s\n", "contender", "ns/body", "MB/s");
    auto row = [](const char* name, const timing& t) {
        std::printf("%-28s %10.0f %10.0f\n", name, t.ns_per_body, t.mb_per_s);
    };
    row(sluice_fast_path::name, t_fast);
    row(simdjson_bare::name, t_bare);
    row(nlohmann_dom::name, t_dom);
    std::printf("nlohmann / sluice  = %.1fx (target >= 5x)\n",
                t_dom.ns_per_body / t_fast.ns_per_body);
    std::printf("sluice / bare      = %.2fx (1.0 = as fast as a bare walk)\n",
                t_fast.ns_per_body / t_bare.ns_per_body);
    return 0;
}
