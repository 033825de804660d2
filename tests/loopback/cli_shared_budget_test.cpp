// Four `sluice run` processes sharing one account's limits through a real redis-server,
// against one `sluice mock` process that enforces them (it plays the account): the budget is
// used together (>= 95% of the limit, < 0.5% 429s), a killed member's share goes to the
// others, and Redis stopped and restarted mid-run loses no line. Each load is scaled to end
// in about 10-20 seconds.
#include "support/mock_process.hpp"
#include "support/redis_peer.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <optional>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace cli_shared_budget_test {

using namespace sluice;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int members = 4;

// `sluice ARGS` in the background (quiet, its stderr in `err`); waited for or killed by PID.
class sluice_process {
public:
    sluice_process(const std::string& args, const std::string& err) {
        pid_ = ::fork();
        if (pid_ == 0) {
            const std::string cmd = "exec " + std::string(SLUICE_EXE) + " " + args + " 2> " + err;
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~sluice_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            wait();
        }
    }
    sluice_process(const sluice_process&) = delete;
    sluice_process& operator=(const sluice_process&) = delete;

    /// The exit status once the process has ended, else nullopt (no waiting).
    std::optional<int> try_wait() {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) != pid_)
            return std::nullopt;
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

    int wait() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    void kill() {
        ::kill(pid_, SIGKILL);
        wait();
    }

private:
    pid_t pid_ = -1;
};

struct member_files {
    std::string input, output, summary, err;
};

std::vector<member_files> make_members(const test::temp_dir& dir, int lines) {
    std::vector<member_files> m;
    for (int k = 0; k < members; ++k) {
        const std::string name = "m" + std::to_string(k);
        m.push_back({test::make_input(dir, lines, name + ".jsonl"),
                     dir.file(name + ".out.jsonl"),
                     dir.file(name + ".summary.json"),
                     dir.file(name + ".err")});
    }
    return m;
}

std::string run_args(const member_files& f,
                     const test::mock_process& mock,
                     const std::string& redis_url,
                     const std::string& limits) {
    return "run " + f.input + " -o " + f.output + " --base-url " + mock.base_url() + " --ca-file " +
           mock.ca_file() + " " + limits + " --redis " + redis_url +
           " --budget-key shared-test --summary " + f.summary + " -q";
}

// A number field of a summary file.
double summary_number(const std::string& path, const std::string& field) {
    const std::string text = test::read_file(path);
    const auto at = text.find("\"" + field + "\":");
    if (at == std::string::npos)
        return -1;
    return std::stod(text.substr(at + field.size() + 3));
}

struct outcome {
    /// Records per second written by all members together, from the moment `skip` records were
    /// written (past the processes' start-up and the first burst) to the last record.
    double steady_rate = 0;
    double ok = 0;
    double rate_limited = 0;
    double prompt_tokens = 0;
    double completion_tokens = 0;
};

// Runs the four members together; every line must end in exactly one successful record.
// Complete lines of a file being written.
std::size_t records_in(const std::string& path) {
    const std::string text = test::read_file(path);
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Runs the four members together; every line must end in exactly one successful record.
outcome run_members(const std::vector<member_files>& m,
                    const test::mock_process& mock,
                    const std::string& redis_url,
                    const std::string& limits,
                    int lines,
                    std::size_t skip) {
    std::vector<std::unique_ptr<sluice_process>> procs;
    for (const auto& f : m)
        procs.push_back(
            std::make_unique<sluice_process>(run_args(f, mock, redis_url, limits), f.err));
    const std::size_t total = static_cast<std::size_t>(members * lines);
    std::optional<std::pair<clock_type::time_point, std::size_t>> from;
    std::optional<clock_type::time_point> all_written;
    std::size_t running = procs.size();
    std::vector<bool> done(procs.size(), false);
    const auto give_up = clock_type::now() + 60s; // bounded whatever happens
    while (running > 0 && clock_type::now() < give_up) {
        std::this_thread::sleep_for(20ms);
        std::size_t written = 0;
        for (const auto& f : m)
            written += records_in(f.output);
        const auto now = clock_type::now();
        if (!from && written >= skip)
            from.emplace(now, written);
        if (!all_written && written >= total)
            all_written = now; // at most a poll after the last record: a rate measured low
        for (std::size_t k = 0; k < procs.size(); ++k)
            if (!done[k])
                if (auto status = procs[k]->try_wait()) {
                    CHECK(*status == 0);
                    done[k] = true;
                    --running;
                }
    }
    outcome o;
    REQUIRE(from);
    const auto end = all_written.value_or(clock_type::now());
    o.steady_rate = static_cast<double>(total - from->second) /
                    std::chrono::duration<double>(end - from->first).count();
    for (const auto& f : m) {
        INFO(test::read_file(f.err));
        const test::tally t = test::read_output(f.output);
        CHECK(t.per_id.size() == static_cast<std::size_t>(lines));
        for (const auto& [id, n] : t.per_id)
            CHECK(n == 1);
        o.ok += t.by_code.count("ok") ? t.by_code.at("ok") : 0;
        o.rate_limited += summary_number(f.summary, "rate_limited");
        o.prompt_tokens += summary_number(f.summary, "prompt_tokens");
        o.completion_tokens += summary_number(f.summary, "completion_tokens");
    }
    return o;
}

std::size_t lines_of(const std::string& path) {
    return test::read_lines(path).size();
}

} // namespace

TEST_CASE("four processes share an RPM-bound budget: the limit used together, no 429s") {
    test::temp_dir dir;
    test::redis_peer redis;
    // 2,400 RPM: 40 a second. 4 x 150 requests: about 14 s at the limit. The members' budget
    // holds a burst of 1 s, the server's of 2 s (`--bucket-seconds 2`): what the members were
    // granted while their first requests were still connecting arrives late, in one bunch,
    // after a start-up in which the server's full bucket could not fill any further. A server
    // with the same 1 s bucket refuses about as many requests as the slowest start-up took
    // refill intervals (9 of 600 under the sanitizer build, with CI's next build beside it).
    test::mock_process mock(dir, "--rpm 2400 --bucket-seconds 2");
    const int lines = 150;
    const auto m = make_members(dir, lines);
    // Measured from the 80th record: past the first burst of 40 and the processes' start-up.
    const outcome o = run_members(m, mock, redis.url(), "--rpm 2400", lines, 80);
    CHECK(o.ok == members * lines);
    CHECK(o.steady_rate >= 0.95 * 40);
    // Nearly none. Without the shared budget each member would send at the whole limit: four
    // times what the server takes.
    CHECK(o.rate_limited < 0.01 * members * lines);
}

TEST_CASE("four processes share a TPM-bound budget: the limit used together, no 429s") {
    test::temp_dir dir;
    test::redis_peer redis;
    // 30,000 TPM: 500 tokens a second. Each request is charged its prompt and its 16-token
    // completion budget (about 24 tokens): about 20 requests a second, 4 x 75 in about 14 s.
    test::mock_process mock(dir, "--tpm 30000 --bucket-seconds 2"); // 2 s: as above
    const int lines = 75;
    const auto m = make_members(dir, lines);
    const outcome o = run_members(m, mock, redis.url(), "--tpm 30000", lines, 40);
    CHECK(o.ok == members * lines);
    // Tokens as the mock charged them (its answers' usage), per record.
    const double per_request = (o.prompt_tokens + o.completion_tokens) / o.ok;
    CHECK(o.steady_rate * per_request >= 0.95 * 500);
    CHECK(o.rate_limited < 0.005 * members * lines);
}

TEST_CASE("a member killed mid-run: the others take up its share within 2 s") {
    test::temp_dir dir;
    test::redis_peer redis;
    test::mock_process mock(dir, "--rpm 2400");
    const int lines = 200; // more than the test lets them finish before it measures
    const auto m = make_members(dir, lines);
    std::vector<std::unique_ptr<sluice_process>> procs;
    for (const auto& f : m)
        procs.push_back(
            std::make_unique<sluice_process>(run_args(f, mock, redis.url(), "--rpm 2400"), f.err));
    std::this_thread::sleep_for(3s);
    procs[0]->kill(); // holding its lease: no goodbye
    // From 2 s after the kill, the three survivors together run at the whole limit.
    std::this_thread::sleep_for(2s);
    auto survivors = [&] {
        std::size_t n = 0;
        for (int k = 1; k < members; ++k)
            n += lines_of(m[k].output);
        return n;
    };
    const std::size_t before = survivors();
    const auto from = clock_type::now();
    std::this_thread::sleep_for(4s);
    const std::size_t after = survivors();
    const double seconds = std::chrono::duration<double>(clock_type::now() - from).count();
    const double rate = static_cast<double>(after - before) / seconds;
    INFO("survivors' rate " << rate << "/s over " << seconds << " s");
    CHECK(after < 3u * lines); // still busy when measured
    CHECK(rate >= 0.9 * 40);
    for (int k = 1; k < members; ++k)
        CHECK(procs[k]->wait() == 0);
    double rate_limited = 0;
    for (int k = 1; k < members; ++k)
        rate_limited += summary_number(m[k].summary, "rate_limited");
    // Usually none. The shared buckets' headroom absorbs about 0.1 s of delay between a grant
    // and its request's arrival (budget_lease.cpp); a process descheduled for longer, as under
    // ASan beside a compiler in CI, can meet a bucket a request short (3 in 600 seen once).
    // Members that did not share would meet hundreds.
    CHECK(rate_limited < 0.01 * 3 * lines);
}

TEST_CASE("Redis stopped and restarted mid-run: every line one record, few 429s") {
    test::temp_dir dir;
    test::redis_peer redis;
    test::mock_process mock(dir, "--rpm 2400");
    const int lines = 150;
    const auto m = make_members(dir, lines);
    std::vector<std::unique_ptr<sluice_process>> procs;
    const auto start = clock_type::now();
    for (const auto& f : m)
        procs.push_back(
            std::make_unique<sluice_process>(run_args(f, mock, redis.url(), "--rpm 2400"), f.err));
    std::this_thread::sleep_for(4s);
    redis.stop();
    std::this_thread::sleep_for(3s);
    redis.start(); // empty: the budget's state is gone
    double rate_limited = 0;
    for (int k = 0; k < members; ++k) {
        INFO(test::read_file(m[k].err));
        CHECK(procs[k]->wait() == 0);
        const test::tally t = test::read_output(m[k].output);
        CHECK(t.per_id.size() == static_cast<std::size_t>(lines));
        for (const auto& [id, n] : t.per_id)
            CHECK(n == 1);
        CHECK(t.by_code.at("ok") == lines);
        rate_limited += summary_number(m[k].summary, "rate_limited");
        // Each said it lost Redis and came back.
        const std::string err = test::read_file(m[k].err);
        CHECK(err.find("Redis lost") != std::string::npos);
        CHECK(err.find("Redis is back") != std::string::npos);
    }
    CHECK(rate_limited < 0.02 * members * lines);
    // And it kept going meanwhile: not much slower than the limit allows.
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    CHECK(seconds < (members * lines - 40) / 40.0 * 1.3);
}

TEST_CASE("Redis unreachable at start: a clear error, or the local limits with --redis-optional") {
    test::temp_dir dir;
    std::uint16_t port = 0;
    {
        test::redis_peer redis; // a port that was Redis' a moment ago, now closed
        port = redis.port();
    }
    test::mock_process mock(dir, "--rpm 6000");
    const std::string input = test::make_input(dir, 20);
    const std::string url = "redis://:pw-secret-4242@127.0.0.1:" + std::to_string(port);
    const std::string err = dir.file("err.txt");
    const std::string out = dir.file("out.jsonl");
    CHECK(test::run_sluice(mock, input, out, "--rpm 6000 --redis " + url + " 2> " + err) == 2);
    std::string said = test::read_file(err);
    INFO(said);
    CHECK(said.find("shared budget: cannot connect to 127.0.0.1:" + std::to_string(port)) !=
          std::string::npos);
    CHECK(said.find("--redis-optional") != std::string::npos);
    CHECK(said.find("pw-secret-4242") == std::string::npos);
    CHECK(test::read_lines(out).empty()); // nothing sent

    CHECK(test::run_sluice(
              mock, input, out, "--rpm 6000 --redis-optional --redis " + url + " 2> " + err) == 0);
    said = test::read_file(err);
    CHECK(said.find("warning: shared budget") != std::string::npos);
    CHECK(said.find("Redis lost") != std::string::npos);
    CHECK(said.find("pw-secret-4242") == std::string::npos);
    CHECK(test::read_output(out).by_code["ok"] == 20);
}

} // namespace cli_shared_budget_test
