// Providers as they are, through the `sluice` binary (docs/endpoints.md): custom headers on
// every request and never in anything written; Azure OpenAI's key header, api-version and
// deployment route against the mock's Azure-shaped route, with configs/azure.toml; several
// endpoints (configs/endpoints.toml, --endpoint) with failover and a retired endpoint.
#include "support/mock_process.hpp"
#include "support/read_request.hpp"
#include "support/script_server.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace endpoints_test {

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

constexpr const char* header_secret = "tok-HEADER-LEAKPROBE-7c21e9";

// Every regular file under `dir` that holds `needle`; also checks that something was scanned.
void check_nowhere_under(const temp_dir& dir, const std::string& needle) {
    std::size_t files = 0;
    for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
        if (!entry.is_regular_file())
            continue;
        ++files;
        INFO("file " << entry.path().filename().string() << " holds " << needle);
        CHECK(read_file(entry.path().string()).find(needle) == std::string::npos);
    }
    CHECK(files > 0);
}

} // namespace

TEST_CASE("custom headers from --header and [headers] reach every request, and their values are "
          "written nowhere") {
    temp_dir dir;
    const std::string input = make_input(dir, 12);
    // Odd requests are answered 400 with the header echoed, as servers that quote a request
    // back in their error do; the output has it redacted.
    script_server server([](int n, std::string_view request) {
        if (n % 2 == 0)
            return http_answer("200 OK", "", completion_with_usage(5));
        const std::string echoed = header_value(request, "x-gateway-token");
        return http_answer("400 Bad Request",
                           "",
                           R"({"error":{"message":"bad token )" + echoed +
                               R"(","type":"invalid_request_error","param":null,"code":null}})");
    });
    // configs/gateway.toml as documented, pointed at the test server.
    const std::string cmd = std::string("GATEWAY_TOKEN=") + header_secret + " " + SLUICE_EXE +
                            " run " + input + " -o " + dir.file("out.jsonl") + " --errors " +
                            dir.file("errors.jsonl") + " --summary " + dir.file("summary.json") +
                            " --config " + SLUICE_SOURCE_DIR + "/configs/gateway.toml" +
                            " --base-url " + server.base_url() +
                            " --max-attempts 1 --concurrency 2 --header 'X-Route: eu-1' "
                            "-H 'x-tenant: green' >" +
                            dir.file("stdout.txt") + " 2>" + dir.file("stderr.txt");
    CHECK(run_shell(cmd) == 1); // the 400s are error records
    REQUIRE(server.requests() == 12);
    for (int n = 0; n < server.requests(); ++n) {
        const std::string r = server.request(n);
        INFO(r);
        CHECK(header_value(r, "x-tenant") == "green"); // the flag over the file
        CHECK(header_value(r, "x-route") == "eu-1");
        CHECK(header_value(r, "x-gateway-token") == header_secret);
        CHECK(header_value(r, "user-agent").rfind("sluice", 0) == 0);
    }
    tally t = read_output(dir.file("out.jsonl"));
    CHECK(t.by_code["ok"] == 6);
    CHECK(read_file(dir.file("out.jsonl")).find("bad token [REDACTED]") != std::string::npos);
    check_nowhere_under(dir, header_secret);
}

TEST_CASE("a header that would replace the key's, or holds a line end, stops the run unsent") {
    temp_dir dir;
    const std::string input = make_input(dir, 3);
    script_server server([](int, std::string_view) { return http_answer("200 OK", "", "{}"); });
    const std::string run = std::string(SLUICE_EXE) + " run " + input + " -o " +
                            dir.file("out.jsonl") + " --base-url " + server.base_url();
    CHECK(run_shell("OPENAI_API_KEY=sk-test-0123456789 " + run +
                    " --header 'Authorization: Bearer other' 2>" + dir.file("auth.txt")) == 2);
    CHECK(read_file(dir.file("auth.txt")).find("Authorization would replace the API key") !=
          std::string::npos);
    CHECK(run_shell(run + " --header \"X-Token: $(printf '" + header_secret +
                    "\\r\\nX-Injected: 1')\" 2>" + dir.file("crlf.txt")) == 2);
    const std::string crlf = read_file(dir.file("crlf.txt"));
    CHECK(crlf.find("--header X-Token") != std::string::npos);
    CHECK(crlf.find(header_secret) == std::string::npos);
    CHECK(run_shell(run + " --header 'Content-Length: 0' 2>/dev/null") == 2);
    CHECK(server.requests() == 0);
    CHECK_FALSE(fs::exists(dir.file("out.jsonl")));
}

TEST_CASE("sluice bench sends --header too") {
    temp_dir dir;
    script_server server(
        [](int, std::string_view) { return http_answer("200 OK", "", completion_with_usage(5)); });
    CHECK(run_shell(std::string(SLUICE_EXE) + " bench --model m --requests 4 -c 2 " +
                    "--input-tokens 8 --output-tokens 4 --no-stream -q --base-url " +
                    server.base_url() + " --header 'X-Tenant: bench' >/dev/null 2>&1") == 0);
    REQUIRE(server.requests() >= 4);
    for (int n = 0; n < server.requests(); ++n)
        CHECK(header_value(server.request(n), "x-tenant") == "bench");
}

namespace {

// The mock's root URL ("https://127.0.0.1:PORT"), without its "/v1".
std::string root_of(const mock_process& mock) {
    const std::string& url = mock.base_url();
    return url.substr(0, url.rfind("/v1"));
}

} // namespace

TEST_CASE("configs/azure.toml runs against the mock's Azure route: api-key, api-version, "
          "deployment path") {
    temp_dir dir;
    mock_process mock(dir, "");
    const std::string input = make_input(dir, 20);
    const std::string deployment = root_of(mock) + "/openai/deployments/gpt-4o-mini";
    // OPENAI_API_KEY is set too: an Azure endpoint reads AZURE_OPENAI_API_KEY and never
    // sends the OpenAI key.
    const std::string status_line =
        "OPENAI_API_KEY=sk-openai-0123456789 AZURE_OPENAI_API_KEY=azure-key-0123456789 " +
        std::string(SLUICE_EXE) + " run " + input + " -o " + dir.file("out.jsonl") + " --config " +
        SLUICE_SOURCE_DIR + "/configs/azure.toml --base-url " + deployment + " --ca-file " +
        mock.ca_file() + " --rpm 0 --tpm 0 -q 2>" + dir.file("err.txt");
    CHECK(run_shell(status_line) == 0);
    INFO(read_file(dir.file("err.txt")));
    tally t = read_output(dir.file("out.jsonl"));
    CHECK(t.per_id.size() == 20);
    CHECK(t.by_code["ok"] == 20);

    // No config: the base URL says Azure by its path and carries the api-version.
    CHECK(run_shell("AZURE_OPENAI_API_KEY=azure-key-0123456789 " + std::string(SLUICE_EXE) +
                    " run " + input + " -o " + dir.file("url.jsonl") + " --base-url '" +
                    deployment + "?api-version=2024-10-21' --ca-file " + mock.ca_file() + " -q") ==
          0);
    t = read_output(dir.file("url.jsonl"));
    CHECK(t.by_code["ok"] == 20);

    // An api-version Azure does not know: the mock's 400, a client error per line.
    CHECK(run_shell("AZURE_OPENAI_API_KEY=azure-key-0123456789 " + std::string(SLUICE_EXE) +
                    " run " + input + " -o " + dir.file("bad.jsonl") + " --base-url " + deployment +
                    " --api-version latest --ca-file " + mock.ca_file() + " -q") == 1);
    t = read_output(dir.file("bad.jsonl"));
    CHECK(t.by_code["client_error"] == 20);
}

TEST_CASE("an Azure endpoint without api-version is refused before sending, and without its "
          "key gets Azure's 401") {
    temp_dir dir;
    mock_process mock(dir, "");
    const std::string input = make_input(dir, 5);
    const std::string deployment = root_of(mock) + "/openai/deployments/gpt-4o-mini";
    const std::string run = "AZURE_OPENAI_API_KEY=azure-key-0123456789 " + std::string(SLUICE_EXE) +
                            " run " + input + " --ca-file " + mock.ca_file() + " -q";
    CHECK(run_shell(run + " -o " + dir.file("none.jsonl") + " --base-url " + deployment + " 2>" +
                    dir.file("none.txt")) == 2);
    const std::string why = read_file(dir.file("none.txt"));
    INFO(why);
    CHECK(why.find("api_version: Azure OpenAI needs an api-version") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.file("none.jsonl")));
    // The same with --api-style azure on a URL that does not look like Azure's.
    CHECK(run_shell(run + " -o " + dir.file("style.jsonl") + " --api-style azure --base-url " +
                    root_of(mock) + "/v1 2>/dev/null") == 2);
    CHECK_FALSE(fs::exists(dir.file("style.jsonl")));

    // Told it is OpenAI, sluice sends Bearer and no api-key: Azure's 401 stops the job.
    CHECK(run_shell("OPENAI_API_KEY=sk-openai-0123456789 " + run + " -o " +
                    dir.file("bearer.jsonl") + " --api-style openai --base-url '" + deployment +
                    "?api-version=2024-10-21' 2>/dev/null") == 6);
    tally t = read_output(dir.file("bearer.jsonl"));
    CHECK(t.by_code["unauthorized"] >= 1);
    CHECK(t.per_id.size() == 5);
}

namespace {

// `text` with every `from` replaced by `to`.
std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos;
         at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

// The scheme, host and port of a mock's base URL ("https://127.0.0.1:PORT").
std::string origin_of(const std::string& base_url) {
    return base_url.substr(0, base_url.find('/', base_url.find("//") + 2));
}

// One certificate for 127.0.0.1 that both mocks serve: two self-signed certificates of the
// same name would not both verify from one CA file (OpenSSL finds an issuer by its name).
std::string shared_certificate(const temp_dir& dir) {
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " +
                            dir.file("key.pem") + " -out " + dir.file("cert.pem") +
                            " -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
                            " >/dev/null 2>&1";
    REQUIRE(run_shell(cmd) == 0);
    return " --cert " + dir.file("cert.pem") + " --key " + dir.file("key.pem");
}

constexpr const char* key_one = "sk-ONE-LEAKPROBE-1a2b3c";
constexpr const char* key_two = "sk-TWO-LEAKPROBE-4d5e6f";
constexpr const char* key_azure = "az-THREE-LEAKPROBE-7a8b9c";

} // namespace

TEST_CASE("configs/endpoints.toml against two mock servers: one killed mid-run, every line "
          "still ends in exactly one record, served by the others") {
    temp_dir dir, dir_a, dir_b;
    const int n = 800;
    const std::string input = make_input(dir, n);
    const std::string cert = shared_certificate(dir);
    mock_process a(dir_a, cert);
    mock_process b(dir_b, cert);
    // The example as documented, its endpoints pointed at the mocks: "primary" at a,
    // "second-key" and the Azure deployment at b (the mock answers Azure's route too).
    std::string config = read_file(std::string(SLUICE_SOURCE_DIR) + "/configs/endpoints.toml");
    const std::string openai = "https://api.openai.com/v1";
    const auto first = config.find(openai);
    REQUIRE(first != std::string::npos);
    config.replace(first, openai.size(), a.base_url());
    config = replace_all(config, openai, b.base_url());
    config = replace_all(config, "https://YOUR-RESOURCE.openai.azure.com", origin_of(b.base_url()));
    // A short cool-down, so that the dead endpoint is probed (and fails) during the run.
    config = replace_all(config, "cool_down_ms = 5000", "cool_down_ms = 500");
    write_file(dir.file("endpoints.toml"), config);

    const std::string cmd =
        std::string("OPENAI_API_KEY=") + key_one + " OPENAI_API_KEY_2=" + key_two +
        " AZURE_OPENAI_API_KEY=" + key_azure + " " + SLUICE_EXE + " run " + input + " -o " +
        dir.file("out.jsonl") + " --config " + dir.file("endpoints.toml") + " --ca-file " +
        dir.file("cert.pem") + " --summary " + dir.file("summary.json") + " --concurrency 8 >" +
        dir.file("stdout.txt") + " 2>" + dir.file("stderr.txt");
    int status = -1;
    std::thread run([&] { status = run_shell(cmd); });
    // Kill a once a quarter of the lines are written (bounded: 60 s).
    for (int i = 0; i < 6000 && read_lines(dir.file("out.jsonl")).size() < n / 4; ++i)
        ::usleep(10'000);
    a.kill();
    run.join();
    INFO(read_file(dir.file("stderr.txt")));
    CHECK(status == 0);
    tally t = read_output(dir.file("out.jsonl"));
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    for (const auto& [id, count] : t.per_id)
        CHECK(count == 1);
    CHECK(t.by_code["ok"] == n);
    // The summary names each endpoint: the killed one taken out, the others serving.
    const std::string summary = read_file(dir.file("summary.json"));
    INFO(summary);
    CHECK(summary.find("\"primary\":{") != std::string::npos);
    CHECK(summary.find("\"second-key\":{") != std::string::npos);
    CHECK(summary.find("\"azure\":{") != std::string::npos);
    CHECK(summary.find("\"state\":\"closed\",\"opened\":0}") != std::string::npos);
    const std::string primary = summary.substr(summary.find("\"primary\":{"));
    const std::string own = primary.substr(0, primary.find('}'));
    CHECK(own.find("\"state\":\"closed\"") == std::string::npos);
    CHECK(own.find("\"opened\":0") == std::string::npos);
    const std::string stderr_text = read_file(dir.file("stderr.txt"));
    CHECK(stderr_text.find("endpoint primary taken out") != std::string::npos);
    CHECK(stderr_text.find("endpoint primary:") != std::string::npos); // the summary's line
    for (const char* key : {key_one, key_two, key_azure})
        check_nowhere_under(dir, key);
}

TEST_CASE("endpoint flags: an endpoint whose quota runs out is retired while the other "
          "finishes the job") {
    temp_dir dir, dir_a, dir_b;
    const int n = 200;
    const std::string input = make_input(dir, n);
    const std::string cert = shared_certificate(dir);
    mock_process a(dir_a, "--quota-after 30" + cert);
    mock_process b(dir_b, cert);
    const std::string cmd =
        std::string("KEY_A=") + key_one + " KEY_B=" + key_two + " " + SLUICE_EXE + " run " + input +
        " -o " + dir.file("out.jsonl") + " --endpoint 'a=" + a.base_url() +
        ",api_key_env=KEY_A,weight=3'" + " --endpoint 'b=" + b.base_url() + ",api_key_env=KEY_B'" +
        " --ca-file " + dir.file("cert.pem") + " --concurrency 4 --summary " +
        dir.file("summary.json") + " >" + dir.file("stdout.txt") + " 2>" + dir.file("stderr.txt");
    const int status = run_shell(cmd);
    const std::string stderr_text = read_file(dir.file("stderr.txt"));
    INFO(stderr_text);
    CHECK(status == 0);
    tally t = read_output(dir.file("out.jsonl"));
    CHECK(t.per_id.size() == static_cast<std::size_t>(n));
    CHECK(t.by_code["ok"] == n);
    CHECK(stderr_text.find("endpoint a retired for the run") != std::string::npos);
    const std::string summary = read_file(dir.file("summary.json"));
    INFO(summary);
    CHECK(summary.find("\"state\":\"retired\"") != std::string::npos);
    for (const char* key : {key_one, key_two})
        check_nowhere_under(dir, key);
}

} // namespace endpoints_test
