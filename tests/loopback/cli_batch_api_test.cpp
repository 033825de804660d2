// `sluice batch submit|status|collect|cancel` as real processes against the mock's Batch API
// over verified TLS: a job split into parts and collected into one output with exactly one
// record per custom_id; submit killed with SIGKILL at every step and resumed without an upload
// or a batch made twice (the mock counts them); collect killed in the middle of a download;
// an expired part finished live or resubmitted; a split by size; bad lines never uploaded.
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace cli_batch_api_test {

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A command run through the shell, stopped by its PID.
class child_process {
public:
    explicit child_process(const std::string& command) {
        pid_ = ::fork();
        if (pid_ == 0) {
            ::execl(
                "/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~child_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            wait();
        }
    }
    void kill() { ::kill(pid_, SIGKILL); }
    int wait() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        if (WIFSIGNALED(status))
            return 128 + WTERMSIG(status);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    pid_t pid_ = -1;
};

// The mock on its own thread, its certificate in a file for --ca-file.
struct job_fixture {
    explicit job_fixture(mock_options o)
        : mock((o.tls = true, o)) {
        std::ofstream(dir.file("ca.pem")) << mock.server().certificate_pem();
    }

    std::string sluice(const std::string& args) {
        return "env OPENAI_API_KEY=sk-test " + std::string(SLUICE_EXE) + " batch " + args +
               " --base-url " + mock.server().base_url() + " --ca-file " + dir.file("ca.pem") +
               " --state " + dir.file("job.json") + " -q >/dev/null";
    }

    int run(const std::string& args) {
        child_process p(sluice(args));
        return p.wait();
    }

    mock_stats stats() { return mock.server().stats(); }

    temp_dir dir;
    loopback_mock mock;
};

// Chat-body lines with ids r1..rn.
void write_input(const std::string& path, int n, const std::string& extra_lines = "") {
    std::ofstream out(path);
    for (int i = 1; i <= n; ++i)
        out << R"({"custom_id":"r)" << i
            << R"(","body":{"model":"gpt-4o-mini","max_tokens":4,"messages":[{"role":"user","content":"q)"
            << i << "\"}]}}\n";
    out << extra_lines;
}

// custom_id -> records in the output; every line must be a record.
std::map<std::string, int> records(const std::string& path, int* successes = nullptr) {
    std::map<std::string, int> ids;
    simdjson::dom::parser parser;
    std::ifstream in(path);
    int ok = 0;
    for (std::string line; std::getline(in, line);) {
        simdjson::dom::element doc;
        REQUIRE(parser.parse(line).get(doc) == simdjson::SUCCESS);
        std::string_view id;
        REQUIRE(doc["custom_id"].get(id) == simdjson::SUCCESS);
        ++ids[std::string(id)];
        ok += doc["error"].is_null() ? 1 : 0;
    }
    if (successes)
        *successes = ok;
    return ids;
}

void require_each_once(const std::map<std::string, int>& ids, int n) {
    REQUIRE(ids.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : ids) {
        INFO(id);
        REQUIRE(count == 1);
    }
}

template <class Pred>
bool wait_until(Pred pred, std::chrono::seconds limit = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

} // namespace

TEST_CASE("batch api: 120,000 lines in 3 parts collected into one record per custom_id",
          "[batch_api]") {
    mock_options o;
    o.answer_tokens = 2;
    o.batch.processing_time = 200ms;
    job_fixture f(o);
    const int n = 120'000;
    write_input(f.dir.file("in.jsonl"), n);
    REQUIRE(f.run("submit " + f.dir.file("in.jsonl")) == 0);
    CHECK(f.stats().files_uploaded == 3);
    CHECK(f.stats().batches_created == 3);
    REQUIRE(f.run("collect -o " + f.dir.file("out.jsonl") + " --wait --poll-interval 0.1") == 0);
    int ok = 0;
    require_each_once(records(f.dir.file("out.jsonl"), &ok), n);
    CHECK(ok == n);
    CHECK(f.stats().batch_requests == n);
    // Collecting again changes nothing and downloads nothing.
    const auto downloads = f.stats().file_downloads;
    REQUIRE(f.run("collect -o " + f.dir.file("out.jsonl")) == 0);
    require_each_once(records(f.dir.file("out.jsonl")), n);
    CHECK(f.stats().file_downloads == downloads);
}

TEST_CASE("batch api: submit killed at every step resumes without uploading or creating twice",
          "[batch_api]") {
    mock_options o;
    o.batch.processing_time = 100ms;
    // Each answer is held after its effect: the kill lands after the provider did the step
    // and before the client heard of it, the case that would make a naive resume repeat it.
    o.batch.api_delay = 400ms;
    job_fixture f(o);
    const int n = 30;
    write_input(f.dir.file("in.jsonl"), n);
    const std::string submit = "submit " + f.dir.file("in.jsonl") + " --max-batch-requests 10";
    // 3 parts: upload 1, create 1, upload 2, create 2, upload 3, create 3.
    for (std::uint64_t step = 1; step <= 6; ++step) {
        child_process p(f.sluice(submit));
        REQUIRE(wait_until([&] {
            const auto s = f.stats();
            return s.files_uploaded + s.batches_created >= step;
        }));
        p.kill();
        CHECK(p.wait() == 128 + SIGKILL);
    }
    REQUIRE(f.run(submit) == 0);
    CHECK(f.stats().files_uploaded == 3);
    CHECK(f.stats().batches_created == 3);
    REQUIRE(f.run("collect -o " + f.dir.file("out.jsonl") + " --wait --poll-interval 0.05") == 0);
    require_each_once(records(f.dir.file("out.jsonl")), n);
}

TEST_CASE("batch api: collect killed in the middle of a download resumes to one record each",
          "[batch_api]") {
    mock_options o;
    o.batch.processing_time = 100ms;
    o.batch.download_piece_interval = 20ms; // a 64 KiB piece every 20 ms
    job_fixture f(o);
    const int n = 3000; // about 1.5 MB of output: more than a second to download
    write_input(f.dir.file("in.jsonl"), n);
    REQUIRE(f.run("submit " + f.dir.file("in.jsonl")) == 0);
    const std::string dir = f.dir.file("job.json.d");
    {
        child_process p(
            f.sluice("collect -o " + f.dir.file("out.jsonl") + " --wait --poll-interval 0.05"));
        REQUIRE(wait_until([&] {
            for (const auto& e : fs::directory_iterator(dir))
                if (e.path().extension() == ".part" && fs::file_size(e.path()) > 100'000)
                    return true;
            return false;
        }));
        p.kill();
        p.wait();
    }
    const auto downloads = f.stats().file_downloads;
    REQUIRE(f.run("collect -o " + f.dir.file("out.jsonl") + " --wait --poll-interval 0.05") == 0);
    CHECK(f.stats().file_downloads == downloads + 1); // the cut download, again from its start
    int ok = 0;
    require_each_once(records(f.dir.file("out.jsonl"), &ok), n);
    CHECK(ok == n);
}

TEST_CASE("batch api: an expired part is finished live, once per line", "[batch_api]") {
    mock_options o;
    o.batch.processing_time = 100ms;
    o.batch.expire_every = 2; // the second part expires with half its requests done
    o.batch.fail_every = 7;   // and some requests fail inside the batches
    job_fixture f(o);
    const int n = 40;
    write_input(f.dir.file("in.jsonl"), n);
    REQUIRE(f.run("submit " + f.dir.file("in.jsonl") + " --max-batch-requests 20") == 0);
    const std::string out = f.dir.file("out.jsonl");
    // Without a choice, the unfinished lines are listed and not written.
    CHECK(f.run("collect -o " + out + " --wait --poll-interval 0.05") == 1);
    CHECK(records(out).size() == 30);
    CHECK(f.stats().ok == 0);
    CHECK(f.run("collect -o " + out + " --finish-live") == 1); // the batch failures stay
    CHECK(f.stats().ok == 10); // exactly the ten the expired part left, live
    int ok = 0;
    require_each_once(records(out, &ok), n);
    // The failures of the batches stay failures: r7 and r14 of part 1, r27 of part 2 (its
    // 7th request, in the half done before it expired).
    CHECK(ok == n - 3);
    // Again: nothing more is sent.
    CHECK(f.run("collect -o " + out + " --finish-live") == 1);
    CHECK(f.stats().ok == 10);
}

TEST_CASE("batch api: an expired part is resubmitted as a new part", "[batch_api]") {
    mock_options o;
    o.batch.processing_time = 100ms;
    o.batch.expire_every = 2;
    job_fixture f(o);
    const int n = 40;
    write_input(f.dir.file("in.jsonl"), n);
    REQUIRE(f.run("submit " + f.dir.file("in.jsonl") + " --max-batch-requests 20") == 0);
    const std::string out = f.dir.file("out.jsonl");
    REQUIRE(f.run("collect -o " + out + " --wait --poll-interval 0.05 --resubmit") == 0);
    CHECK(f.stats().batches_created == 3); // the third (a resubmission) does not expire
    CHECK(f.stats().ok == 0);              // nothing went live
    int ok = 0;
    require_each_once(records(out, &ok), n);
    CHECK(ok == n);
}

TEST_CASE("batch api: resubmission stops after 3 rounds, and live finishes the rest",
          "[batch_api]") {
    mock_options o;
    o.batch.processing_time = 50ms;
    o.batch.expire_every = 1; // every batch expires with half its requests done
    job_fixture f(o);
    write_input(f.dir.file("in.jsonl"), 20);
    REQUIRE(f.run("submit " + f.dir.file("in.jsonl")) == 0);
    const std::string out = f.dir.file("out.jsonl");
    // 20 -> 10 left -> 5 -> 3 -> 2: the original batch and three resubmissions.
    CHECK(f.run("collect -o " + out + " --wait --poll-interval 0.05 --resubmit") == 1);
    CHECK(f.stats().batches_created == 4);
    CHECK(records(out).size() == 18);
    CHECK(f.run("collect -o " + out + " --finish-live") == 0);
    CHECK(f.stats().ok == 2);
    int ok = 0;
    require_each_once(records(out, &ok), 20);
    CHECK(ok == 20);
}

TEST_CASE("batch api: split by size, bad lines recorded and never uploaded", "[batch_api]") {
    // The issue's 300 MB input against the 200 MB limit, scaled down a hundredfold: the split
    // is the same code whatever the sizes, and the mock refuses nothing it should accept.
    mock_options o;
    o.batch.processing_time = 100ms;
    job_fixture f(o);
    const int n = 15'000; // about 3 MB
    const std::string big_line =
        R"({"custom_id":"huge","body":{"model":"m","messages":[{"role":"user","content":")" +
        std::string(2'100'000, 'x') + "\"}]}}\n";
    write_input(f.dir.file("in.jsonl"),
                n,
                "not json\n" + big_line +
                    R"({"custom_id":"r1","body":{"model":"m","messages":[]}})" + "\n");
    REQUIRE(f.run("submit " + f.dir.file("in.jsonl") + " --max-batch-bytes 2000000") == 0);
    const auto uploads = f.stats().files_uploaded;
    CHECK(uploads == 2);
    for (const auto& e : fs::directory_iterator(f.dir.file("job.json.d")))
        if (e.path().filename().string().rfind("part-", 0) == 0)
            CHECK(fs::file_size(e.path()) <= 2'000'000);
    const std::string out = f.dir.file("out.jsonl");
    CHECK(f.run("collect -o " + out + " --wait --poll-interval 0.05") == 1); // bad lines
    CHECK(f.stats().batch_requests == n); // nothing but the good lines went to the provider
    const auto ids = records(out);
    CHECK(ids.size() == static_cast<std::size_t>(n) + 2); // + line-15001 and huge
    CHECK(ids.count("huge") == 1);
    CHECK(ids.count("line-" + std::to_string(n + 1)) == 1);
    CHECK(ids.at("r1") == 2); // its answer, and the repeat's duplicate_custom_id record
}

TEST_CASE("batch api: status and cancel", "[batch_api]") {
    mock_options o;
    o.batch.processing_time = 20s;
    job_fixture f(o);
    write_input(f.dir.file("in.jsonl"), 10);
    REQUIRE(f.run("submit " + f.dir.file("in.jsonl")) == 0);
    CHECK(f.run("status") == 8); // not final yet
    REQUIRE(f.run("cancel") == 0);
    CHECK(f.stats().batches_cancelled == 1);
    REQUIRE(wait_until([&] { return f.run("status") == 0; }, 10s)); // cancelled: final
    const std::string out = f.dir.file("out.jsonl");
    CHECK(f.run("collect -o " + out + " --finish-live") == 0);
    require_each_once(records(out), 10);
}

} // namespace cli_batch_api_test
