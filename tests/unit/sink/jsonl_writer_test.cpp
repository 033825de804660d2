// Batch API output records: parsed back with an independent JSON parser, bodies embedded
// byte for byte when they are JSON, escaping that survives hostile ids, whole-line writes.
#include "support/temp_dir.hpp"

#include <sluice/sink/jsonl_writer.hpp>

#include <boost/asio/error.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <set>
#include <string>
#include <system_error>
#include <thread>

using namespace sluice;
using json = nlohmann::json;
using sluice::test::temp_dir;

namespace {

result success(std::string custom_id, std::string body) {
    result r;
    r.custom_id = std::move(custom_id);
    r.status = 200;
    r.request_id = "req_abc123";
    r.body = std::move(body);
    r.completion.body_is_json = true; // as the parser finds the bodies these tests embed
    r.attempts = 1;
    return r;
}

std::string record_of(const result& r) {
    std::string out;
    append_output_record(out, r, "batch_req_test");
    return out;
}

// One record is one line: a single trailing newline and no other line break.
json parse_line(const std::string& line) {
    REQUIRE(!line.empty());
    REQUIRE(line.back() == '\n');
    REQUIRE(line.find('\n') == line.size() - 1);
    return json::parse(line);
}

} // namespace

TEST_CASE("a success record has the Batch API shape with the body embedded byte for byte") {
    const std::string body =
        R"({"id":"chatcmpl-1","object":"chat.completion","choices":)"
        R"([{"index":0,"message":{"role":"assistant","content":"h\u00e9 )"
        "\xE6\x97\xA5\"}}],\"usage\":{\"prompt_tokens\":3, \"total_tokens\":5}}";
    const std::string line = record_of(success("r1", body));
    CHECK(line.find("\"body\":" + body + "}") != std::string::npos);

    const json j = parse_line(line);
    CHECK(j["id"] == "batch_req_test");
    CHECK(j["custom_id"] == "r1");
    CHECK(j["response"]["status_code"] == 200);
    CHECK(j["response"]["request_id"] == "req_abc123");
    CHECK(j["response"]["body"]["id"] == "chatcmpl-1");
    CHECK(j["response"]["body"]["usage"]["total_tokens"] == 5);
    CHECK(j["error"].is_null());
}

TEST_CASE("a failed request with a response carries both the response and the error") {
    result r = success("r2", R"({"error":{"message":"bad","type":"invalid_request_error"}})");
    r.status = 400;
    r.ec = errc::client_error;
    r.message = "HTTP 400: bad";
    const json j = parse_line(record_of(r));
    CHECK(j["response"]["status_code"] == 400);
    CHECK(j["response"]["body"]["error"]["message"] == "bad");
    CHECK(j["error"]["code"] == "client_error");
    CHECK(j["error"]["message"] == "HTTP 400: bad");
}

TEST_CASE("a request that got no response has response null and the error's own message") {
    result r;
    r.custom_id = "r3";
    r.ec = boost::asio::error::connection_refused;
    const json j = parse_line(record_of(r));
    CHECK(j["response"].is_null());
    CHECK(j["error"]["code"] == "connection_refused");
    CHECK(j["error"]["message"] == r.ec.message());
}

// Whether a body is JSON is the parser's finding (completion_parser_test checks it); the
// writer trusts it, so a body it was told is not JSON is quoted even when it looks like JSON.
TEST_CASE("a body that is not JSON is embedded as a string") {
    const std::vector<std::string> bodies = {
        "<html>\r\n<b>502 Bad Gateway</b>\n</html>",
        R"({"a":1} x)",
        R"({"a":"\ud800"})",
        "",
        "   ",
    };
    for (const auto& body : bodies) {
        INFO(body);
        result r = success("s", body);
        r.completion.body_is_json = false;
        r.status = 502;
        r.ec = errc::server_error;
        const json j = parse_line(record_of(r));
        REQUIRE(j["response"]["body"].is_string());
        CHECK(j["response"]["body"] == body);
    }
}

TEST_CASE("a JSON body of any shape is embedded as written") {
    const std::vector<std::string> bodies = {
        R"({})",
        R"([])",
        R"("just a string")",
        R"(-0.5e+10)",
        R"(null)",
        R"({"a":[true,false,null,0,1.5,-2E-3,"x\"\\\/\b\f\n\r\t\u00E9\ud83d\ude00"]})",
        "{\"emoji\":\"\xF0\x9F\x98\x80\",\"deep\":" + std::string(100, '[') +
            std::string(100, ']') + "}",
    };
    for (const auto& body : bodies) {
        INFO(body);
        const std::string line = record_of(success("v", body));
        CHECK(line.find("\"body\":" + body + "}") != std::string::npos);
        const json j = parse_line(line);
        CHECK(j["response"]["body"] == json::parse(body));
    }
}

TEST_CASE("a pretty-printed body stays on one line and keeps its content") {
    const std::string body = "\n{\r\n  \"id\": \"x\",\n  \"n\": [1,\n 2]\n}\n";
    const json j = parse_line(record_of(success("p", body)));
    CHECK(j["response"]["body"] == json::parse(body));
}

TEST_CASE("custom_ids and messages with quotes, controls and bad UTF-8 are escaped") {
    const std::string nasty = "a\"b\\c\n\t\x01\x1f\x7f é 日本 \xff end";
    result r;
    r.custom_id = nasty;
    r.ec = errc::stopped;
    r.message = "why:\n\"" + nasty;
    const std::string line = record_of(r);
    for (const char c : line.substr(0, line.size() - 1))
        CHECK(static_cast<unsigned char>(c) >= 0x20);
    const json j = parse_line(line);
    const std::string expected = "a\"b\\c\n\t\x01\x1f\x7f é 日本 \xEF\xBF\xBD end"; // U+FFFD
    CHECK(j["custom_id"] == expected);
    CHECK(j["error"]["message"] == "why:\n\"" + expected);
    CHECK(j["error"]["code"] == "stopped");
}

TEST_CASE("an input error record names the line") {
    bad_line bad;
    bad.line_number = 7;
    bad.ec = errc::bad_input_line;
    bad.message = "not JSON: TAPE_ERROR";
    std::string out;
    append_input_error_record(out, bad, "batch_req_x");
    json j = parse_line(out);
    CHECK(j["id"] == "batch_req_x");
    CHECK(j["custom_id"] == "line-7");
    CHECK(j["response"].is_null());
    CHECK(j["error"]["code"] == "invalid_input");
    CHECK(j["error"]["message"] == "line 7: not JSON: TAPE_ERROR");
    CHECK(j["line"] == 7);

    bad.custom_id = "dup\"1";
    bad.ec = errc::duplicate_custom_id;
    bad.message = {};
    out.clear();
    append_input_error_record(out, bad, "batch_req_y");
    j = parse_line(out);
    CHECK(j["custom_id"] == "dup\"1");
    CHECK(j["error"]["message"] ==
          "line 7: " + make_error_code(errc::duplicate_custom_id).message());
}

TEST_CASE("jsonl_writer buffers whole records and writes them on flush") {
    temp_dir dir;
    const std::string path = dir.file("out.jsonl");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    {
        jsonl_writer writer(fd); // 1 MiB threshold: nothing reaches the file yet
        for (int i = 0; i < 100; ++i)
            writer.write(success(test::numbered("c", i), R"({"ok":true})"));
        bad_line bad;
        bad.line_number = 101;
        bad.ec = errc::bad_input_line;
        bad.message = "missing body";
        writer.write(bad);
        CHECK(writer.records() == 101);
        CHECK(sluice::test::read_file(path).empty());
        writer.sync();
    }
    ::close(fd);
    const auto lines = sluice::test::read_lines(path);
    REQUIRE(lines.size() == 101);
    std::set<std::string> ids;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const json j = json::parse(lines[i]);
        const std::string id = j["id"];
        CHECK(id.rfind("batch_req_", 0) == 0);
        CHECK(id.size() == 10 + 16 + 8);
        ids.insert(id);
        if (i < 100)
            CHECK(j["custom_id"] == "c" + std::to_string(i));
    }
    CHECK(ids.size() == 101);
    CHECK(json::parse(lines[100])["line"] == 101);
}

TEST_CASE("jsonl_writer flushes at its threshold and when destroyed") {
    temp_dir dir;
    const std::string path = dir.file("out.jsonl");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    std::string first_id;
    {
        jsonl_writer writer(fd, 0); // a threshold of 0 writes every record at once
        writer.write(success("a", "{}"));
        const auto lines = sluice::test::read_lines(path);
        REQUIRE(lines.size() == 1);
        first_id = json::parse(lines[0])["id"];
    }
    {
        jsonl_writer writer(fd, 1 << 20);
        writer.write(success("b", "{}"));
    } // destructor flushes
    ::close(fd);
    const auto lines = sluice::test::read_lines(path);
    REQUIRE(lines.size() == 2);
    // Two writers appending to one file (a resumed run) do not repeat ids.
    CHECK(json::parse(lines[1])["id"] != first_id);
}

TEST_CASE("jsonl_writer streams to a pipe and reports a failed write") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::string received;
    std::thread reader([fd = fds[0], &received] {
        char buf[4096];
        for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
            received.append(buf, static_cast<std::size_t>(n));
        ::close(fd);
    });
    {
        jsonl_writer writer(fds[1], 64 << 10);
        // More than a pipe holds, so writes block and resume while the reader drains.
        const std::string body = R"({"text":")" + std::string(3000, 'z') + R"("})";
        for (int i = 0; i < 200; ++i)
            writer.write(success(test::numbered("p", i), body));
        writer.sync(); // fsync of a pipe is not an error
    }
    ::close(fds[1]);
    reader.join();
    std::size_t count = 0;
    for (std::size_t at = 0, nl; (nl = received.find('\n', at)) != std::string::npos; at = nl + 1) {
        const json j = json::parse(received.substr(at, nl - at));
        CHECK(j["custom_id"] == test::numbered("p", count));
        ++count;
    }
    CHECK(count == 200);

    const int ro = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(ro >= 0);
    {
        jsonl_writer writer(ro);
        writer.write(success("x", "{}"));
        CHECK_THROWS_AS(writer.flush(), std::system_error);
    }
    ::close(ro);
}
