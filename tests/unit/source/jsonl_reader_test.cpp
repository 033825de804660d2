// The Batch API input reader: one record per non-blank line, bad lines named precisely,
// streaming from files and pipes, lines of several MiB.
#include "support/random_jsonl.hpp"
#include "support/temp_dir.hpp"

#include <sluice/source/jsonl_reader.hpp>
#include <sluice/source/token_estimate.hpp>

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace sluice;
using sluice::test::temp_dir;

namespace {

std::vector<input_record> read_all(int fd, const reader_options& opts = {}) {
    jsonl_reader reader(fd, opts);
    std::vector<input_record> records;
    input_record rec;
    while (reader.next(rec))
        records.push_back(rec);
    return records;
}

std::vector<input_record> read_path(const std::string& path, const reader_options& opts = {}) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    test::scoped_fd guard{fd};
    return read_all(fd, opts);
}

std::vector<input_record> read_fixture(const std::string& name) {
    return read_path(std::string(SLUICE_TEST_FIXTURES) + "/batch/" + name);
}

std::vector<input_record> read_text(const std::string& text, const reader_options& opts = {}) {
    temp_dir dir;
    const std::string path = dir.file("in.jsonl");
    sluice::test::write_file(path, text);
    return read_path(path, opts);
}

// A prompt line's body read back by a real parser: (role, content) of each message, in order.
struct built_body {
    std::string model;
    std::vector<std::pair<std::string, std::string>> messages;
    std::size_t fields = 0;
};

built_body parse_body(const std::string& body) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    REQUIRE_FALSE(parser.parse(body).get(root));
    simdjson::dom::object object;
    REQUIRE_FALSE(root.get_object().get(object));
    built_body out;
    out.fields = object.size();
    std::string_view model;
    REQUIRE_FALSE(object["model"].get_string().get(model));
    out.model = std::string(model);
    simdjson::dom::array messages;
    REQUIRE_FALSE(object["messages"].get_array().get(messages));
    for (simdjson::dom::element m : messages) {
        std::string_view role;
        std::string_view content;
        REQUIRE_FALSE(m["role"].get_string().get(role));
        REQUIRE_FALSE(m["content"].get_string().get(content));
        out.messages.emplace_back(std::string(role), std::string(content));
    }
    return out;
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

TEST_CASE("jsonl_reader takes streaming lines as written and refuses a stream that is no boolean") {
    temp_dir dir;
    const std::string path = dir.file("stream.jsonl");
    test::write_file(path,
                     R"({"custom_id":"s1","body":{"model":"m","messages":[],"stream":true}})"
                     "\n"
                     R"({"model":"m","messages":[],"stream":true})"
                     "\n"
                     R"({"custom_id":"s3","body":{"messages":[],"stream":"yes"}})"
                     "\n"
                     R"({"custom_id":"s4","body":{"messages":[],"stream":false}})"
                     "\n");
    const auto records = read_path(path);
    REQUIRE(records.size() == 4);
    CHECK_FALSE(records[0].ec);
    CHECK(records[0].request.custom_id == "s1");
    // The engine, not the reader, asks for the usage chunk (stream_request_test).
    CHECK(records[0].request.body == R"({"model":"m","messages":[],"stream":true})");
    CHECK_FALSE(records[1].ec);
    CHECK(records[1].request.body == R"({"model":"m","messages":[],"stream":true})");
    CHECK(records[2].ec == errc::bad_input_line);
    CHECK(records[2].message == "stream must be true or false");
    CHECK(records[2].request.body.empty()); // nothing left that could be sent
    CHECK_FALSE(records[3].ec);
    CHECK(records[3].request.body == R"({"messages":[],"stream":false})");
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
    test::scoped_fd read_end{fds[0]};
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
    test::scoped_fd guard{fd};
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

TEST_CASE("jsonl_reader builds a chat body from a prompt line") {
    reader_options opts;
    opts.model = "gpt-4o-mini";
    const auto records = read_text(R"({"prompt":"hi"})"
                                   "\n"
                                   R"({"custom_id":"p2","prompt":"there"})"
                                   "\n",
                                   opts);
    REQUIRE(records.size() == 2);
    CHECK_FALSE(records[0].ec);
    CHECK(records[0].message.empty());
    CHECK(records[0].request.custom_id == "line-1");
    // Without --system the user message is the only one.
    CHECK(records[0].request.body ==
          R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})");
    // The model is known before sending, so per-model limits apply to prompt lines too.
    CHECK(records[0].request.model == "gpt-4o-mini");
    CHECK_FALSE(records[1].ec);
    CHECK(records[1].request.custom_id == "p2");
    CHECK(records[1].request.body ==
          R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"there"}]})");
}

TEST_CASE("jsonl_reader prompt lines round-trip escapes and unicode") {
    // Every kind of escape JSON has, a surrogate pair, raw UTF-8 and an escaped NUL: what the
    // server reads must be the text the user meant, not the text the user typed.
    const std::string line =
        R"({"prompt":"q\"uote\\ back\/slash\n\r\t\b\f ctl\u001f nul\u0000 \u00e9 \ud83d\ude00 )"
        "\xE6\x97\xA5\xE6\x9C\xAC"
        R"(","custom_id":"u\u00e9","model":"m\"odel"})";
    const std::string prompt = std::string("q\"uote\\ back/slash\n\r\t\b\f ctl\x1f nul") + '\0' +
                               " \xC3\xA9 \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC";
    reader_options opts;
    opts.system = "Be \"brief\"\n\xE2\x80\x94 and kind";
    const auto records = read_text(line + "\n", opts);
    REQUIRE(records.size() == 1);
    REQUIRE_FALSE(records[0].ec);
    CHECK(records[0].request.custom_id == "u\xC3\xA9");
    CHECK(records[0].request.model == "m\"odel");
    const built_body body = parse_body(records[0].request.body);
    CHECK(body.fields == 2);
    CHECK(body.model == "m\"odel");
    REQUIRE(body.messages.size() == 2);
    CHECK(body.messages[0].first == "system");
    CHECK(body.messages[0].second == opts.system);
    CHECK(body.messages[1].first == "user");
    CHECK(body.messages[1].second == prompt);
    // One line of JSON: the control characters are escaped, not written raw.
    CHECK(records[0].request.body.find('\n') == std::string::npos);
    CHECK(records[0].request.body.find('\0') == std::string::npos);
}

TEST_CASE("jsonl_reader puts the system message first only when one is set") {
    reader_options opts;
    opts.model = "m";
    const std::string text = R"({"prompt":"p"})"
                             "\n";
    const auto without = read_text(text, opts);
    REQUIRE(without.size() == 1);
    const built_body a = parse_body(without[0].request.body);
    REQUIRE(a.messages.size() == 1);
    CHECK(a.messages[0] == std::pair<std::string, std::string>("user", "p"));

    opts.system = "You are terse.";
    const auto with = read_text(text + text, opts);
    REQUIRE(with.size() == 2);
    CHECK(with[1].request.body == R"({"model":"m","messages":[{"role":"system","content":)"
                                  R"("You are terse."},{"role":"user","content":"p"}]})");
    CHECK(with[0].request.body == with[1].request.body);
}

TEST_CASE("jsonl_reader takes a prompt line's own model over --model") {
    reader_options opts;
    opts.model = "from-flag";
    const auto records = read_text(R"({"prompt":"a","model":"from-line"})"
                                   "\n"
                                   R"({"prompt":"b","model":""})"
                                   "\n"
                                   R"({"prompt":"c"})"
                                   "\n",
                                   opts);
    REQUIRE(records.size() == 3);
    CHECK(records[0].request.model == "from-line");
    CHECK(parse_body(records[0].request.body).model == "from-line");
    // An empty model names none: the flag's applies.
    CHECK(records[1].request.model == "from-flag");
    CHECK(records[2].request.model == "from-flag");
    CHECK(parse_body(records[2].request.body).model == "from-flag");
}

TEST_CASE("jsonl_reader names what is wrong with a bad prompt line") {
    const auto records = read_text(R"({"custom_id":"n1","prompt":"no model anywhere"})"
                                   "\n"
                                   R"({"prompt":42,"model":"m"})"
                                   "\n"
                                   R"({"prompt":"x","model":7})"
                                   "\n"
                                   R"({"prompt":"x","model":"m","max_tokens":5})"
                                   "\n"
                                   R"({"prompt":"fine","model":"m"})"
                                   "\n");
    REQUIRE(records.size() == 5);
    CHECK(records[0].ec == errc::bad_input_line);
    CHECK(records[0].message == "prompt line needs a model (--model)");
    CHECK(records[0].request.custom_id == "n1");
    CHECK(records[0].request.body.empty());
    CHECK(records[0].request.model.empty());
    CHECK(records[1].ec == errc::bad_input_line);
    CHECK(records[1].message == "prompt must be a string");
    CHECK(records[2].ec == errc::bad_input_line);
    CHECK(records[2].message == "model must be a string");
    // A field the prompt form cannot carry is not dropped silently.
    CHECK(records[3].ec == errc::bad_input_line);
    CHECK(records[3].message.find("\"max_tokens\"") != std::string::npos);
    CHECK_FALSE(records[4].ec);
    CHECK(records[4].message.empty());
    CHECK(records[4].request.model == "m");
}

TEST_CASE("jsonl_reader options leave Batch API and chat-body lines as written") {
    reader_options opts;
    opts.model = "flag-model";
    opts.system = "never added";
    const std::string batch = R"({"custom_id":"b","body":{"messages":[]}})";
    const std::string chat = R"({"messages":[],"prompt":"ignored: this is a body"})";
    const auto records = read_text(batch + "\n" + chat + "\n", opts);
    REQUIRE(records.size() == 2);
    CHECK(records[0].request.body == R"({"messages":[]})");
    CHECK(records[0].request.model.empty());
    CHECK(records[1].request.body == chat);
    CHECK(records[1].request.model.empty());
}

TEST_CASE("jsonl_reader with ids_only gives every line the same verdict and id, and no body") {
    // Every bad form, each good form (Batch API, chat body, prompt), and a repeated id.
    const std::string text =
        std::string(R"({"custom_id":"a","body":{"model":"m","messages":[]}})") + "\n" +
        R"({"model":"m","messages":[{"role":"user","content":"hi"}]})" + "\n" +
        R"({"prompt":"say \"hi\"","custom_id":"p"})" + "\n" + R"({"prompt":"no model"})" + "\n" +
        R"({"custom_id":"a","body":[]})" + "\n" +
        R"({"custom_id":"s","body":{"stream":1,"messages":[]}})" + "\n" +
        R"({"custom_id":"t","body":{"model":"m"}} x)" + "\n";
    const std::string with_bad = text + "not json\n[1]\n";
    reader_options full;
    full.model = "fallback";
    reader_options ids = full;
    ids.ids_only = true;
    const auto a = read_text(with_bad, full);
    const auto b = read_text(with_bad, ids);
    REQUIRE(a.size() == 9);
    REQUIRE(b.size() == a.size());
    std::size_t good = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("line " << a[i].line_number << ": " << a[i].message);
        CHECK(b[i].line_number == a[i].line_number);
        CHECK(b[i].ec == a[i].ec);
        CHECK(b[i].message == a[i].message);
        CHECK(b[i].request.custom_id == a[i].request.custom_id);
        CHECK(b[i].request.body.empty());
        CHECK(b[i].request.model.empty());
        if (!a[i].ec) {
            ++good;
            CHECK_FALSE(a[i].request.body.empty());
        }
    }
    CHECK(good == 4); // the Batch API line, the chat body and both prompt lines (--model)
}

TEST_CASE(
    "jsonl_reader with an estimate fills each request's token cost as estimate_tokens would") {
    // One line of each form, with text, an image part, tools and budgets the estimate reads.
    const std::string batch =
        R"({"custom_id":"b","body":{"model":"m","messages":[{"role":"user","content":[)"
        R"({"type":"text","text":"héllo wörld"},{"type":"image_url","image_url":{"url":"x"}}]}],)"
        R"("tools":[{"type":"function","function":{"name":"f"}}],"max_tokens":50,"n":2}})";
    const std::string chat =
        R"({"model":"m","messages":[{"role":"system","content":"be brief"},)"
        R"({"role":"user","content":"a\u00e9b","name":"ann"}],"max_completion_tokens":7})";
    const std::string prompt = R"({"prompt":"Say \"hi\" in Grüße","custom_id":"p"})";
    // The shape of `messages` is wrong: sent as written, estimated from its length.
    const std::string odd = R"({"custom_id":"o","body":{"model":"m","messages":"hi"}})";
    reader_options opts;
    opts.model = "fallback";
    opts.system = "Be brief.";
    opts.estimate = estimate_options{};
    opts.estimate->chars_per_token = 3.0;
    opts.estimate->default_max_tokens = 77;
    const auto records = read_text(batch + "\n" + chat + "\n" + prompt + "\n" + odd + "\n", opts);
    REQUIRE(records.size() == 4);
    for (const input_record& r : records) {
        INFO(r.request.custom_id << ": " << r.message);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.request.token_cost);
        CHECK(*r.request.token_cost == estimate_tokens(r.request.body, *opts.estimate).total());
    }
    // Worked by hand for the first: "héllo wörld" is 11 characters, the tools' JSON 45 bytes:
    // ceil(56 / 3) = 19, one image 85, one message 4, the request 3; completion 50 x 2.
    CHECK(*records[0].request.token_cost == 19 + 85 + 4 + 3 + 100);
    CHECK(*records[3].request.token_cost ==
          estimate_tokens(R"({"model":"m","messages":"hi"})", *opts.estimate).total());

    // Without the option the dispatcher estimates: nothing is filled in.
    opts.estimate.reset();
    for (const input_record& r : read_text(batch + "\n" + prompt + "\n", opts))
        CHECK_FALSE(r.request.token_cost);
}

TEST_CASE("jsonl_reader takes a body and the tool calls in it as written, wherever they stand") {
    const std::string first_body =
        R"({ "messages" : [ {"role":"user","content":"a]}\""} ] , "tools":[ {"x":"}{"} ] })";
    const std::string lines[] = {
        // Not the last member; brackets and an escaped quote inside strings.
        R"({"custom_id":"s1", "body" : )" + first_body + R"( , "url":"/v1/chat/completions"})",
        // The last member, blanks before the line's brace.
        R"({"custom_id":"s2","body":{"messages":[]}   } )",
        // Two bodies: the first is sent.
        R"({"custom_id":"s3","body":{"messages":[],"n":1},"body":{"messages":[],"n":2}})",
        // Tool calls in a later message, tools after the messages, with blanks inside.
        R"({"custom_id":"s4","body":{"messages":[{"role":"user","content":"ab"},)"
        R"({"role":"assistant","content":null,"tool_calls": [ {"id":"c1"} ] },)"
        R"({"role":"assistant","tool_calls":[{"id":"c2"}],"content":"x"}],"tools" :[1, [2]] }})",
    };
    std::string text;
    for (const auto& line : lines)
        text += line + "\n";
    reader_options opts;
    opts.estimate = estimate_options{};
    opts.estimate->chars_per_token = 1.0; // the estimate is then the characters counted
    opts.estimate->per_message_overhead = 0;
    opts.estimate->per_request_overhead = 0;
    opts.estimate->default_max_tokens = 0;
    const auto records = read_text(text, opts);
    REQUIRE(records.size() == 4);
    for (const auto& r : records) {
        INFO(r.request.custom_id << ": " << r.message);
        REQUIRE_FALSE(r.ec);
    }
    CHECK(records[0].request.body == first_body);
    CHECK(records[1].request.body == R"({"messages":[]})");
    CHECK(records[2].request.body == R"({"messages":[],"n":1})");
    // "ab" 2 + `[ {"id":"c1"} ]` 15 + `[{"id":"c2"}]` 13 + "x" 1 + `[1, [2]]` 8.
    CHECK(*records[3].request.token_cost == 39);
    // "a]}\"" 4 + `[ {"x":"}{"} ]` 14.
    CHECK(*records[0].request.token_cost == 18);

    // The first of `sluice run`'s passes gives the same verdicts and ids.
    opts.ids_only = true;
    const auto ids = read_text(text, opts);
    REQUIRE(ids.size() == 4);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        CHECK_FALSE(ids[i].ec);
        CHECK(ids[i].request.custom_id == records[i].request.custom_id);
    }
}

TEST_CASE("jsonl_reader calls a line JSON exactly when simdjson's DOM parser does") {
    // Lines a one-pass reader could get wrong: the verdict of each is the DOM parser's.
    const std::vector<std::string> lines = {
        R"([[[[[[)",                                     // unclosed, at the root
        R"({"custom_id":"a","body":{"messages":[[[[}})", // unclosed, inside
        R"({"custom_id":"a","body":{"messages":[]},"n":123456789012345678901234567890})",
        R"({"custom_id":"a","body":{"messages":[],"seed":1e400}})", // no double holds it
        R"({"custom_id":"a","body":{"messages":[],"x":"\uZZZZ"}})", // a bad escape, unread
        R"({"custom_id":"a","body":{"messages":[],"x":tru}})",      // a bad literal, unread
        R"({"custom_id":"a","body":{"messages":[],}})",             // trailing comma
        R"({"custom_id":"a" "body":{"messages":[]}})",              // missing comma
        R"({"custom_id":"a","body":{"messages":[]}}})",             // one brace too many
        R"({"custom_id":"a","b\u006fdy":{"messages":[]}})",         // an escaped key: good
        R"({"custom_id":"a","body":{"messages":[{"content":"ok"}]},"x":[1,{"y":null}]})",
        R"("just a string")",
        R"(42)",
        R"({"custom_id":"a","body":{"messages":[]}} [)",
    };
    // Nesting at simdjson's depth limit and one past it, inside a body the reader walks.
    std::vector<std::string> deep = lines;
    for (const std::size_t levels : {1021, 1022, 1023}) {
        deep.push_back(R"({"custom_id":"a","body":{"messages":[],"x":)" + std::string(levels, '[') +
                       std::string(levels, ']') + "}}");
    }
    std::string text;
    for (const std::string& l : deep)
        text += l + "\n";
    const auto records = read_text(text);
    REQUIRE(records.size() == deep.size());
    simdjson::dom::parser dom;
    std::size_t deep_ok = 0;
    for (std::size_t i = 0; i < deep.size(); ++i) {
        INFO(deep[i].substr(0, 100) << " -> " << records[i].message);
        const bool json = !dom.parse(deep[i]).error();
        deep_ok += i >= lines.size() && json;
        CHECK(json == (records[i].message.rfind("not JSON", 0) != 0));
    }
    CHECK_FALSE(records[9].ec); // `b\u006fdy` is the key body
    CHECK(records[9].request.body == R"({"messages":[]})");
    CHECK(records[12].message == "not a JSON object");
    CHECK(deep_ok == 2); // the limit is where the DOM parser has it: the last line is past it
}

TEST_CASE(
    "jsonl_reader says a request does not stream when its body does not, else leaves it open") {
    const std::string text =
        std::string(R"({"custom_id":"b","body":{"model":"m","messages":[]}})") + "\n" +
        R"({"custom_id":"f","body":{"model":"m","messages":[],"stream":false}})" + "\n" +
        R"({"model":"m","messages":[]})" + "\n" + R"({"prompt":"p","model":"m"})" + "\n" +
        R"({"custom_id":"s","body":{"model":"m","messages":[],"stream":true}})" + "\n" +
        R"({"model":"m","messages":[],"stream":true})" + "\n";
    const auto records = read_text(text);
    REQUIRE(records.size() == 6);
    for (std::size_t i = 0; i < 4; ++i) {
        INFO("line " << i + 1);
        REQUIRE(records[i].request.streams);
        CHECK_FALSE(*records[i].request.streams);
    }
    // A streaming body is the dispatcher's to prepare (it adds stream_options.include_usage).
    CHECK_FALSE(records[4].request.streams);
    CHECK_FALSE(records[5].request.streams);
}

TEST_CASE("jsonl_reader with unchecked_ids: a good line's id is its checked id, and a bad "
          "line's first_pass_id is what the unchecked pass took it for") {
    const std::uint64_t seed = GENERATE(1, 2, 3, 4);
    test::random_jsonl gen(seed);
    const std::string text = gen.text(3000);
    reader_options checked;
    checked.model = seed % 2 ? "fallback" : "";
    reader_options unchecked = checked;
    unchecked.unchecked_ids = true;
    const auto a = read_text(text, checked);
    const auto b = read_text(text, unchecked);
    REQUIRE(a.size() == 3000);
    REQUIRE(b.size() == a.size());
    std::size_t good = 0, bad_read = 0, bad_checked = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("line " << a[i].line_number << ": " << a[i].message);
        CHECK(b[i].line_number == a[i].line_number);
        CHECK(b[i].request.body.empty());
        if (!a[i].ec) {
            ++good;
            CHECK(a[i].first_pass_id.empty());
            CHECK_FALSE(b[i].ec); // a good line is never called bad
            CHECK(b[i].request.custom_id == a[i].request.custom_id);
        } else if (!b[i].ec) {
            ++bad_read; // not checked: its id went to the index, and comes back in pass 2
            CHECK(a[i].first_pass_id == b[i].request.custom_id);
        } else {
            ++bad_checked; // checked by the unchecked pass too: the same verdict, no id
            CHECK(b[i].message == a[i].message);
            CHECK(b[i].request.custom_id == a[i].request.custom_id);
            CHECK(a[i].first_pass_id.empty());
        }
    }
    // Every case in quantity.
    CHECK(good > 600);
    CHECK(bad_read > 300);
    CHECK(bad_checked > 100);
}

TEST_CASE("jsonl_reader with unchecked_ids and a shard of several checks every line") {
    const std::string text = std::string(R"({"custom_id":"a","body":[]})") + "\nnot json\n";
    reader_options opts;
    opts.unchecked_ids = true;
    opts.shard = shard_spec::parse("1/1");
    auto one = read_text(text, opts);
    REQUIRE(one.size() == 2);
    CHECK_FALSE(one[0].ec); // read, not checked
    CHECK(one[1].ec);       // the scan could not read it: checked
    std::size_t bad = 0;
    for (const char* k : {"1/2", "2/2"}) {
        opts.shard = shard_spec::parse(k);
        for (const auto& r : read_text(text, opts))
            bad += r.ec ? 1 : 0;
    }
    CHECK(bad == 2);
}
