// The Batch API input reader: one record per non-blank line, bad lines named precisely,
// streaming from files and pipes, lines of several MiB.
#include "support/temp_dir.hpp"

#include <sluice/source/jsonl_reader.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace sluice;
using sluice::test::temp_dir;

namespace {

// Closes a descriptor at scope end.
struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0)
            ::close(fd);
    }
};

std::vector<input_record> read_all(int fd) {
    jsonl_reader reader(fd);
    std::vector<input_record> records;
    input_record rec;
    while (reader.next(rec))
        records.push_back(rec);
    return records;
}

std::vector<input_record> read_path(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    fd_guard guard{fd};
    return read_all(fd);
}

std::vector<input_record> read_fixture(const std::string& name) {
    return read_path(std::string(SLUICE_TEST_FIXTURES) + "/batch/" + name);
}

std::vector<input_record> read_text(const std::string& text) {
    temp_dir dir;
    const std::string path = dir.file("in.jsonl");
    sluice::test::write_file(path, text);
    return read_path(path);
}

} // namespace

TEST_CASE("jsonl_reader yields one request per non-blank line with its line number") {
    const auto records = read_fixture("good.jsonl");
    REQUIRE(records.size() == 5);
    for (const auto& r : records) {
        CHECK_FALSE(r.ec);
        CHECK(r.message.empty());
        CHECK_FALSE(r.request.token_cost);
    }

    CHECK(records[0].line_number == 1);
    CHECK(records[0].request.custom_id == "req-1");
    CHECK(records[0].request.model == "gpt-4o-mini");
    CHECK(
        records[0].request.body ==
        R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}],"max_tokens":16})");

    // The body is sent byte for byte: escapes, inner spacing and UTF-8 as the user wrote them.
    CHECK(records[1].line_number == 3);
    CHECK(records[1].request.custom_id == "req-2");
    CHECK(records[1].request.model == "m2");
    CHECK(records[1].request.body ==
          "{\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9llo \\\"quoted\\\" "
          "\xE6\x97\xA5\xE6\x9C\xAC\"}], \"model\":\"m2\"}");

    // A line that is itself a chat body: the whole line is the body, the id is made up.
    CHECK(records[2].line_number == 5);
    CHECK(records[2].request.custom_id == "line-5");
    CHECK(records[2].request.model == "gpt-4o");
    CHECK(
        records[2].request.body ==
        R"({"model":"gpt-4o","messages":[{"role":"user","content":"a chat body on its own"}],"max_tokens":5})");

    CHECK(records[3].line_number == 6);
    CHECK(records[3].request.custom_id == "req-6");
    CHECK(records[3].request.body == R"({"model":"x","messages":[]})");

    // method and url may be left out: there is only one endpoint they could name.
    CHECK(records[4].line_number == 7);
    CHECK(records[4].request.custom_id == "req-7");
    CHECK(records[4].request.model.empty());
}

TEST_CASE("jsonl_reader names what is wrong with each bad line") {
    const auto records = read_fixture("bad.jsonl");
    REQUIRE(records.size() == 12);
    struct expected {
        std::string custom_id;
        std::string message; // prefix of the message
    };
    const std::vector<expected> want = {
        {"line-1", "not JSON: "},
        {"line-2", "not a JSON object"},
        {"b3", "missing body"},
        {"b4", "body is not an object"},
        {"b5", "unsupported method GET"},
        {"b6", "unsupported url /v1/embeddings"},
        {"line-7", "custom_id must be a string"},
        {"line-8", "not JSON: "}, // trailing garbage after the object
        {"line-9", "not JSON: "}, // invalid value deep inside the body
        {"ok-10", ""},
        {"line-11", "not JSON: "}, // truncated
        {"line-12", "custom_id is empty"},
    };
    for (std::size_t i = 0; i < want.size(); ++i) {
        INFO("line " << i + 1 << ": " << records[i].message);
        CHECK(records[i].line_number == i + 1);
        CHECK(records[i].request.custom_id == want[i].custom_id);
        if (want[i].message.empty()) {
            CHECK_FALSE(records[i].ec);
            CHECK(records[i].request.body == R"({"messages":[]})");
        } else {
            CHECK(records[i].ec == errc::bad_input_line);
            CHECK(records[i].message.rfind(want[i].message, 0) == 0);
            CHECK(records[i].request.body.empty());
        }
    }
    // The exact texts a user reads in the error file.
    CHECK(records[4].message == "unsupported method GET");
    CHECK(records[5].message == "unsupported url /v1/embeddings");
    CHECK(records[0].message.size() > std::string("not JSON: ").size());
}

TEST_CASE("jsonl_reader strips CRLF line endings and skips blank lines") {
    temp_dir dir;
    const std::string fixture = std::string(SLUICE_TEST_FIXTURES) + "/batch/crlf.jsonl";
    // Guard against the fixture losing its CR bytes to a line-ending conversion.
    REQUIRE(sluice::test::read_file(fixture).find("\r\n") != std::string::npos);
    const auto records = read_fixture("crlf.jsonl");
    REQUIRE(records.size() == 3);
    CHECK(records[0].line_number == 1);
    CHECK(records[0].request.custom_id == "c1");
    CHECK(records[0].request.body == R"({"messages":[{"role":"user","content":"one"}]})");
    CHECK(records[1].line_number == 3);
    CHECK(records[1].request.custom_id == "line-3");
    CHECK(records[1].request.body == R"({"messages":[{"role":"user","content":"three"}]})");
    // The last line has no line break at all.
    CHECK(records[2].line_number == 5);
    CHECK(records[2].request.custom_id == "c5");
    for (const auto& r : records) {
        CHECK_FALSE(r.ec);
        CHECK(r.request.body.find('\r') == std::string::npos);
    }
}

TEST_CASE("jsonl_reader handles empty input, blank-only input and a byte-order mark") {
    CHECK(read_text("").empty());
    CHECK(read_text("\n\n  \r\n\t\n").empty());
    const auto records =
        read_text("\xEF\xBB\xBF{\"custom_id\":\"bom\",\"body\":{\"messages\":[]}}\n");
    REQUIRE(records.size() == 1);
    CHECK_FALSE(records[0].ec);
    CHECK(records[0].request.custom_id == "bom");
}

TEST_CASE("jsonl_reader reads a 5 MiB line between ordinary ones") {
    std::string content(5 << 20, 'x');
    for (std::size_t i = 0; i < content.size(); i += 997)
        content[i] = 'a' + static_cast<char>(i % 26); // not one repeated byte throughout
    const std::string big_body =
        R"({"model":"big","messages":[{"role":"user","content":")" + content + R"("}]})";
    const std::string small = R"({"custom_id":"s","body":{"messages":[]}})";
    const std::string text =
        small + "\n" + R"({"custom_id":"big","body":)" + big_body + "}\n" + small + "\n";
    const auto records = read_text(text);
    REQUIRE(records.size() == 3);
    CHECK_FALSE(records[1].ec);
    CHECK(records[1].line_number == 2);
    CHECK(records[1].request.custom_id == "big");
    CHECK(records[1].request.model == "big");
    CHECK(records[1].request.body == big_body);
    CHECK(records[2].line_number == 3);
    CHECK_FALSE(records[2].ec);
}

TEST_CASE("jsonl_reader streams from a pipe written in small pieces") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    fd_guard read_end{fds[0]};
    constexpr int lines = 2000;
    std::string text;
    for (int i = 0; i < lines; ++i)
        text += R"({"custom_id":"p)" + std::to_string(i) +
                R"(","body":{"messages":[{"role":"user","content":"pipe"}]}})" + "\n";
    text.pop_back(); // the last line ends at end of input, not at a newline

    std::thread writer([fd = fds[1], &text] {
        // Odd-sized pieces split lines at arbitrary points.
        for (std::size_t at = 0; at < text.size();) {
            const std::size_t n = std::min<std::size_t>(4093, text.size() - at);
            const ssize_t written = ::write(fd, text.data() + at, n);
            if (written <= 0)
                break;
            at += static_cast<std::size_t>(written);
        }
        ::close(fd);
    });
    const auto records = read_all(fds[0]);
    writer.join();

    REQUIRE(records.size() == static_cast<std::size_t>(lines));
    for (int i = 0; i < lines; ++i) {
        CHECK_FALSE(records[i].ec);
        CHECK(records[i].line_number == static_cast<std::uint64_t>(i + 1));
        CHECK(records[i].request.custom_id == test::numbered("p", i));
    }
}

TEST_CASE("jsonl_reader reports a read error of its descriptor") {
    const int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC); // read(2) fails: EISDIR
    REQUIRE(fd >= 0);
    fd_guard guard{fd};
    jsonl_reader reader(fd);
    input_record rec;
    CHECK_THROWS_AS(reader.next(rec), std::system_error);
}

TEST_CASE("jsonl_reader reuses one record without leaking fields between lines") {
    const auto records = read_text(R"({"custom_id":"a","body":{"model":"m","messages":[]}})"
                                   "\nnot json\n"
                                   R"({"custom_id":"c","body":{"messages":[]}})"
                                   "\n");
    REQUIRE(records.size() == 3);
    CHECK(records[0].request.model == "m");
    CHECK(records[1].ec == errc::bad_input_line);
    CHECK(records[1].request.custom_id == "line-2");
    CHECK(records[1].request.model.empty());
    CHECK_FALSE(records[2].ec);
    CHECK(records[2].message.empty());
    CHECK(records[2].request.model.empty());
}
