// `sluice run --metrics-listen`: Prometheus scrapes the run over HTTP while it works, and sees
// the counters move; other paths and methods are refused.
#include "support/temp_dir.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <sstream>
#include <string>
#include <thread>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace cli_metrics_test {

using namespace sluice::test;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

// `sluice run ARGS` in the background, stderr to a file; killed by its PID if the test leaves
// before it ended.
class run_process {
public:
    run_process(const std::string& args, const std::string& err) {
        pid_ = ::fork();
        if (pid_ == 0) {
            const std::string cmd =
                "exec " + std::string(SLUICE_EXE) + " run " + args + " 2>" + err;
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~run_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    bool running() {
        int status = 0;
        if (pid_ <= 0 || ::waitpid(pid_, &status, WNOHANG) == 0)
            return pid_ > 0;
        pid_ = -1;
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return false;
    }
    // Waits at most `limit` for the exit; its status, or -1.
    int wait(std::chrono::seconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (running() && std::chrono::steady_clock::now() < end)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return pid_ > 0 ? -1 : status_;
    }

private:
    pid_t pid_ = -1;
    int status_ = -1;
};

struct scrape {
    unsigned status = 0;
    std::string content_type;
    std::string body;
};

scrape get(unsigned short port, http::verb method, const std::string& target) {
    asio::io_context ioc;
    tcp::socket socket(ioc);
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    http::request<http::empty_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(socket, req);
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.skip(method == http::verb::head); // a HEAD answer has a length but no body
    http::read(socket, buffer, parser);
    const auto& res = parser.get();
    return {res.result_int(), std::string(res[http::field::content_type]), res.body()};
}

// The value of the sample line `name` (no labels), or -1.
double sample(const std::string& text, const std::string& name) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(name + " ", 0) == 0)
            return std::stod(line.substr(name.size() + 1));
    return -1;
}

} // namespace

TEST_CASE("a run serves /metrics while it works, and the counters move") {
    temp_dir dir;
    std::string text;
    for (int i = 0; i < 120; ++i)
        text += R"({"custom_id":"m)" + std::to_string(i) +
                R"(","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}})" + "\n";
    const std::string input = dir.file("in.jsonl"), output = dir.file("out.jsonl");
    write_file(input, text);
    const std::string err = dir.file("err.txt");
    // 120 answers of 50 ms on 2 connections: about 3 s of work, however fast the machine.
    run_process run(input + " -o " + output +
                        " --mock --mock-latency-ms 50 --concurrency 2 --rpm 6000 -q "
                        "--metrics-listen 127.0.0.1:0",
                    err);

    // The port chosen is printed before the job starts.
    unsigned short port = 0;
    for (int i = 0; i < 1000 && port == 0; ++i) {
        const std::string said = read_file(err);
        const std::string mark = "metrics on http://127.0.0.1:";
        const auto at = said.find(mark);
        if (at != std::string::npos && said.find("/metrics", at + mark.size()) != std::string::npos)
            port = static_cast<unsigned short>(std::stoul(said.substr(at + mark.size())));
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    INFO(read_file(err));
    REQUIRE(port != 0);

    const scrape first = get(port, http::verb::get, "/metrics");
    CHECK(first.status == 200);
    CHECK(first.content_type == "text/plain; version=0.0.4; charset=utf-8");
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    const scrape second = get(port, http::verb::get, "/metrics");
    const bool mid_run = run.running();
    CHECK(mid_run); // scraped while the job was still working
    INFO(second.body);
    CHECK(sample(first.body, "sluice_requests_submitted_total") >= 0);
    CHECK(sample(second.body, "sluice_requests_succeeded_total") >
          sample(first.body, "sluice_requests_succeeded_total"));
    CHECK(sample(second.body, "sluice_attempts_total") > 0);
    CHECK(sample(second.body, "sluice_batch_input_lines") == 120);
    CHECK(sample(second.body, "sluice_batch_lines_read_total") > 0);
    CHECK(sample(second.body, "sluice_request_duration_seconds_count") > 0);
    CHECK(second.body.find("sluice_results_total{status=\"200\"}") != std::string::npos);
    CHECK(second.body.find("sluice_requests_in_flight ") != std::string::npos);
    CHECK(sample(second.body, "sluice_admission_wait_seconds_count") > 0);
    CHECK(second.body.find("sluice_scope_limit_requests_per_minute{scope=\"(endpoint)\"} 6000\n") !=
          std::string::npos);

    // Only GET (and HEAD) of /metrics.
    CHECK(get(port, http::verb::get, "/").status == 404);
    CHECK(get(port, http::verb::get, "/metrics/x").status == 404);
    CHECK(get(port, http::verb::post, "/metrics").status == 405);
    const scrape head = get(port, http::verb::head, "/metrics");
    CHECK(head.status == 200);
    CHECK(head.body.empty());

    // A live scrape passes Prometheus' own check too.
    if (run_shell("command -v promtool >/dev/null 2>&1") == 0) {
        write_file(dir.file("live.txt"), second.body);
        CHECK(run_shell("promtool check metrics < " + dir.file("live.txt") + " >" +
                        dir.file("promtool.txt") + " 2>&1") == 0);
        INFO(read_file(dir.file("promtool.txt")));
        CHECK(read_file(dir.file("promtool.txt")).empty());
    }

    // The listener does not keep the finished run alive.
    CHECK(run.wait(std::chrono::seconds(60)) == 0);
    CHECK(read_lines(output).size() == 120);
}

TEST_CASE("a --metrics-listen that is not IP:PORT or cannot be bound fails before any file") {
    temp_dir dir;
    const std::string input = dir.file("in.jsonl");
    write_file(input,
               R"({"custom_id":"a","body":{"model":"m","messages":[]}})"
               "\n");
    for (const char* bad : {"localhost:9464", "127.0.0.1", "127.0.0.1:99999", "10.0.0.1:x"}) {
        INFO(bad);
        const std::string err = dir.file("err.txt");
        CHECK(run_shell(std::string(SLUICE_EXE) + " run " + input + " -o " + dir.file("o.jsonl") +
                        " --mock --metrics-listen " + bad + " 2>" + err) == 2);
        CHECK(read_file(err).find("--metrics-listen") != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(dir.file("o.jsonl")));
    }
    // A port already taken.
    asio::io_context ioc;
    tcp::acceptor taken(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    const std::string addr = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
    CHECK(run_shell(std::string(SLUICE_EXE) + " run " + input + " -o " + dir.file("o.jsonl") +
                    " --mock --metrics-listen " + addr + " 2>" + dir.file("err.txt")) == 2);
    CHECK(read_file(dir.file("err.txt")).find("--metrics-listen") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.file("o.jsonl")));
}

} // namespace cli_metrics_test
