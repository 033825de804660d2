// Providers as they are, through the `sluice` binary (docs/endpoints.md): custom headers on
// every request and never in anything written; Azure OpenAI's key header, api-version and
// deployment route against the mock's Azure-shaped route, with configs/azure.toml.
#include "support/mock_process.hpp"
#include "support/read_request.hpp"
#include "support/script_server.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

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
