// Through a real HTTP proxy (Debian's tinyproxy, started by the test on 127.0.0.1) to nginx:
// CONNECT tunnels with TLS verified against the server's name inside them, NO_PROXY and
// --no-proxy bypassing the proxy, Basic proxy authentication, and refusals that stop the job
// with the proxy's status. See docs/endpoints.md#proxies.
#include "support/loopback.hpp"
#include "support/mock_process.hpp"
#include "support/nginx_peer.hpp"
#include "support/tinyproxy_peer.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <string>

// Its own namespace: the files of tests/peer/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace proxy_test {

using namespace sluice;
namespace asio = boost::asio;

namespace {

constexpr const char* api_key = "sk-proj-PROXYLEAK-4b1d8e7c0a9f";

std::string make_lines(const test::temp_dir& dir, int n) {
    std::string text;
    for (int i = 0; i < n; ++i)
        text += R"({"custom_id":"p)" + std::to_string(i) +
                R"(","method":"POST","url":"/v1/chat/completions","body":)" + test::chat_body(i) +
                "}\n";
    const std::string path = dir.file("in.jsonl");
    test::write_file(path, text);
    return path;
}

// `ENV sluice run INPUT -o DIR/NAME.jsonl --base-url NGINX --ca-file ... EXTRA`, stderr into
// DIR/NAME.err; the exit status.
int run_through(const std::string& env,
                const test::nginx_peer& nginx,
                const test::temp_dir& dir,
                const std::string& input,
                const std::string& name,
                const std::string& extra = "") {
    return test::run_shell(env + " OPENAI_API_KEY=" + api_key + " timeout 60 " + SLUICE_EXE +
                           " run " + input + " -o " + dir.file(name + ".jsonl") + " --base-url " +
                           nginx.base_url() + " --ca-file " + nginx.ca_file() +
                           " --concurrency 8 -q " + extra + " 2>" + dir.file(name + ".err"));
}

} // namespace

TEST_CASE("HTTPS_PROXY: every line through tinyproxy's CONNECT to nginx over verified TLS") {
    test::nginx_peer nginx;
    test::tinyproxy_peer proxy;
    test::temp_dir dir;
    const int n = 300;
    const std::string input = make_lines(dir, n);
    CHECK(run_through("HTTPS_PROXY=" + proxy.url(), nginx, dir, input, "via") == 0);
    INFO(test::read_file(dir.file("via.err")));
    test::tally t = test::read_output(dir.file("via.jsonl"));
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    CHECK(t.by_code["ok"] == n);
    // One tunnel per pooled connection (8 at most), to the server named in the URL.
    const std::string log = proxy.log();
    INFO(log);
    CHECK(proxy.connects() >= 1);
    CHECK(proxy.connects() <= 8);
    CHECK(log.find("CONNECT 127.0.0.1:" + std::to_string(nginx.port()) + " HTTP/1.1") !=
          std::string::npos);
    // The key travels inside TLS inside the tunnel: the proxy never sees it.
    CHECK(log.find(api_key) == std::string::npos);
    CHECK(log.find("PROXYLEAK") == std::string::npos);

    // --proxy on the command line does the same without the environment.
    const std::size_t before = proxy.connects();
    CHECK(run_through("", nginx, dir, input, "flag", "--proxy " + proxy.url()) == 0);
    CHECK(proxy.connects() > before);
}

TEST_CASE("NO_PROXY naming the server, or --no-proxy, bypasses the proxy") {
    test::nginx_peer nginx;
    test::tinyproxy_peer proxy;
    test::temp_dir dir;
    const std::string input = make_lines(dir, 50);
    const std::string port = std::to_string(nginx.port());
    for (const std::string& no_proxy : {std::string("127.0.0.1"),
                                        "other.example,127.0.0.1:" + port,
                                        std::string("127.0.0.0/8"),
                                        std::string("*")}) {
        INFO("NO_PROXY=" << no_proxy);
        CHECK(run_through("HTTPS_PROXY=" + proxy.url() + " NO_PROXY='" + no_proxy + "'",
                          nginx,
                          dir,
                          input,
                          "bypass") == 0);
        CHECK(test::read_output(dir.file("bypass.jsonl")).per_id.size() == 50);
        ::unlink(dir.file("bypass.jsonl").c_str());
    }
    CHECK(run_through("https_proxy=" + proxy.url(), nginx, dir, input, "off", "--no-proxy") == 0);
    CHECK(proxy.connects() == 0);
    // Loopback is no exception: a list that names something else goes through the proxy.
    CHECK(run_through("HTTPS_PROXY=" + proxy.url() + " NO_PROXY=localhost,127.0.0.2",
                      nginx,
                      dir,
                      input,
                      "through") == 0);
    CHECK(proxy.connects() >= 1);
}

TEST_CASE("configs/proxy.toml: its no_proxy keeps loopback direct, NO_PROXY overrides it") {
    test::nginx_peer nginx;
    test::tinyproxy_peer proxy;
    test::temp_dir dir;
    const std::string input = make_lines(dir, 30);
    const std::string config = std::string(" --config ") + SLUICE_SOURCE_DIR +
                               "/configs/proxy.toml --proxy " + proxy.url();
    // The file lists 127.0.0.1 in no_proxy: nginx is reached directly.
    CHECK(run_through("", nginx, dir, input, "file", config) == 0);
    CHECK(test::read_output(dir.file("file.jsonl")).by_code["ok"] == 30);
    CHECK(proxy.connects() == 0);
    // The environment's list replaces the file's: now through the proxy.
    CHECK(run_through("NO_PROXY=elsewhere.example", nginx, dir, input, "env", config) == 0);
    CHECK(test::read_output(dir.file("env.jsonl")).by_code["ok"] == 30);
    CHECK(proxy.connects() >= 1);
}

TEST_CASE("a proxy asking for Basic authentication takes the URL's credentials, and a refusal "
          "stops the job naming its status, with the password nowhere") {
    const std::string password = "s3cret-PROXYPASS-91";
    test::nginx_peer nginx;
    test::tinyproxy_peer proxy("sluiceuser", password);
    test::temp_dir dir;
    const std::string input = make_lines(dir, 40);
    CHECK(run_through(
              "HTTPS_PROXY=" + proxy.url("sluiceuser:" + password), nginx, dir, input, "good") ==
          0);
    CHECK(test::read_output(dir.file("good.jsonl")).by_code["ok"] == 40);

    // Wrong password (tinyproxy answers 401) and none at all (407): one refusal stops the job
    // with exit status 2, the lines are kept for a resume, and the message names the proxy's
    // status.
    for (const auto& [userinfo, status] :
         {std::pair<std::string, std::string>{"sluiceuser:wrong-" + password, "401"},
          {"", "407"}}) {
        INFO(status);
        const std::string name = "refused" + status;
        CHECK(run_through("HTTPS_PROXY=" + proxy.url(userinfo), nginx, dir, input, name) == 2);
        const std::string err = test::read_file(dir.file(name + ".err"));
        INFO(err);
        CHECK(err.find("proxy") != std::string::npos);
        CHECK(err.find("HTTP " + status) != std::string::npos);
        test::tally t = test::read_output(dir.file(name + ".jsonl"));
        CHECK(t.per_id.size() == 40);
        CHECK(t.by_code["proxy_refused"] >= 1);
        CHECK(t.by_code["proxy_refused"] + t.by_code["not_attempted"] == 40);
        CHECK(err.find(password) == std::string::npos);
        CHECK(test::read_file(dir.file(name + ".jsonl")).find(password) == std::string::npos);
    }
    CHECK(proxy.log().find(api_key) == std::string::npos);
    // A resume with the right credentials finishes the refused job.
    CHECK(run_through("HTTPS_PROXY=" + proxy.url("sluiceuser:" + password),
                      nginx,
                      dir,
                      input,
                      "refused407") == 0);
    CHECK(test::read_output(dir.file("refused407.jsonl")).by_code["ok"] == 40);
}

TEST_CASE("the library tunnels to an http:// server with CONNECT too") {
    test::nginx_options o;
    o.tls = false;
    test::nginx_peer nginx(o);
    test::tinyproxy_peer proxy;
    asio::io_context ioc;
    dispatcher_options opts;
    opts.base_url = nginx.base_url();
    opts.api_key = api_key;
    opts.proxy.url = proxy.url();
    opts.pool.max_connections = 4;
    dispatcher engine(ioc.get_executor(), opts);
    const int n = 200;
    int ok = 0, remaining = n;
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = "h" + std::to_string(i);
        req.body = test::chat_body(i);
        engine.async_complete(std::move(req), [&](error_code ec, result r) {
            if (!ec && r.completion.choices.size() == 1 &&
                r.completion.choices[0].content == "Hello from nginx.")
                ++ok;
            if (--remaining == 0)
                engine.stop();
        });
    }
    ioc.run();
    CHECK(ok == n);
    CHECK(proxy.connects() >= 1);
    CHECK(proxy.connects() <= 4);
    // CONNECT, not absolute-form: the proxy saw no request line of its own to the server
    // (nor the key, which went through the tunnel).
    CHECK(proxy.log().find("POST") == std::string::npos);
    CHECK(proxy.log().find(api_key) == std::string::npos);
}

} // namespace proxy_test
