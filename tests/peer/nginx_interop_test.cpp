// Interop with Debian's nginx: `sluice run` and the library against a TLS/HTTP stack this
// project did not write.
#include "support/loopback.hpp"
#include "support/nginx_peer.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <map>
#include <set>

// Its own namespace: the files of tests/peer/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace nginx_interop_test {

using namespace sluice;
namespace asio = boost::asio;

namespace {

std::string make_input(const test::temp_dir& dir, int n) {
    std::string text;
    for (int i = 0; i < n; ++i)
        text += R"({"custom_id":"n)" + std::to_string(i) +
                R"(","method":"POST","url":"/v1/chat/completions","body":)" + test::chat_body(i) +
                "}\n";
    const std::string path = dir.file("in.jsonl");
    test::write_file(path, text);
    return path;
}

} // namespace

TEST_CASE("sluice run against nginx over verified TLS writes every canned answer once") {
    test::nginx_peer nginx;
    test::temp_dir dir;
    const int n = 2000;
    const std::string input = make_input(dir, n), output = dir.file("out.jsonl");
    const int status = test::run_shell(std::string(SLUICE_EXE) + " run " + input + " -o " + output +
                                       " --base-url " + nginx.base_url() + " --ca-file " +
                                       nginx.ca_file() + " --concurrency 16 -q");
    CHECK(status == 0);
    const auto lines = test::read_lines(output);
    REQUIRE(lines.size() == static_cast<std::size_t>(n));
    std::set<std::string> ids;
    simdjson::dom::parser p;
    for (const auto& line : lines) {
        auto doc = p.parse(line);
        ids.insert(std::string(std::string_view(doc["custom_id"])));
        CHECK(std::int64_t(doc["response"]["status_code"]) == 200);
        CHECK(doc["error"].is_null());
        // The body is embedded exactly as nginx sent it.
        CHECK(line.find(R"("body":)" + test::canned_completion) != std::string::npos);
    }
    CHECK(ids.size() == static_cast<std::size_t>(n));
}

TEST_CASE("sluice run refuses nginx's certificate when it is not trusted, and stops") {
    test::nginx_peer nginx;
    test::temp_dir dir;
    const std::string input = make_input(dir, 50), output = dir.file("out.jsonl");
    const std::string run = std::string(SLUICE_EXE) + " run " + input + " -o " + output +
                            " --base-url " + nginx.base_url() + " --concurrency 1 -q";
    const int status = test::run_shell(run + " 2>" + dir.file("err.txt"));
    CHECK(status == 2); // the setup is wrong, as a bad flag: exit status 2
    auto lines = test::read_lines(output);
    REQUIRE(lines.size() == 50);
    // One handshake, not five per line: the first refusal stops the job, the rest wait for a
    // resume with the right CA.
    int rejected = 0, not_attempted = 0;
    for (const auto& line : lines) {
        rejected += line.find(R"("code":"certificate_rejected")") != std::string::npos;
        not_attempted += line.find(R"("code":"not_attempted")") != std::string::npos;
    }
    CHECK(rejected == 1);
    CHECK(not_attempted == 49);
    const std::string err = test::read_file(dir.file("err.txt"));
    CHECK(err.find("certificate was rejected") != std::string::npos);
    CHECK(err.find("self-signed") != std::string::npos);

    CHECK(test::run_shell(run + " --ca-file " + nginx.ca_file() + " 2>/dev/null") == 0);
    lines = test::read_lines(output);
    CHECK(lines.size() == 50);
    for (const auto& line : lines)
        CHECK(line.find(R"("status_code":200)") != std::string::npos);
}

TEST_CASE("the library against nginx closing every 50th connection loses nothing") {
    test::nginx_options o;
    o.tls = false;
    o.keepalive_requests = 50;
    test::nginx_peer nginx(o);
    asio::io_context ioc;
    dispatcher_options opts;
    opts.base_url = nginx.base_url();
    opts.pool.max_connections = 8;
    dispatcher engine(ioc.get_executor(), opts);
    const int n = 3000;
    std::map<std::string, int> seen;
    int ok = 0, remaining = n;
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = "k" + std::to_string(i);
        req.body = test::chat_body(i);
        engine.async_complete(std::move(req), [&](error_code ec, result r) {
            ++seen[r.custom_id];
            if (!ec && r.completion.choices.size() == 1 &&
                r.completion.choices[0].content == "Hello from nginx.")
                ++ok;
            if (--remaining == 0)
                engine.stop();
        });
    }
    ioc.run();
    CHECK(ok == n);
    CHECK(seen.size() == static_cast<std::size_t>(n));
    CHECK(engine.stats().retries == 0); // closed connections were replaced, not retried
}

} // namespace nginx_interop_test
