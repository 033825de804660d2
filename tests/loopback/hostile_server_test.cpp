// `sluice run` against servers that misbehave on purpose (tests/support/hostile_server.hpp),
// one mode per misbehaviour: answers that never come or come a byte a second, connections
// closed or reset at every step, broken framing, bodies and headers without end, bodies that
// are not a completion, every kind of 429 and retry hint, 400/401/307, flaky 500s, connections
// closed after each answer or while idle, interim and unsolicited responses, TLS that fails
// before, during and after the handshake, and event streams that are cut, fail, stall or never
// end. Every case runs the built binary on a 10-line batch and checks that each line ends in
// exactly one record, that no record holds another line's answer, the error kind and words,
// how many attempts reached the server, that nothing written holds the key, and that the run
// stays bounded. docs/security.md#misbehaving-servers has the table of modes.
#include "support/hostile_server.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace hostile_server_test {

using namespace sluice::test;

namespace {

constexpr int lines_in_batch = 10;
constexpr const char* api_key = "sk-test-SECRET-0123456789";
constexpr const char* secret = "SECRET-0123456789";

std::string id_of(int n) {
    return numbered("req-", static_cast<std::size_t>(n));
}

std::string write_input(const temp_dir& dir, bool stream = false) {
    std::string text;
    for (int n = 0; n < lines_in_batch; ++n) {
        text += R"({"custom_id":")" + id_of(n) + R"(","body":{"model":"m",)";
        if (stream)
            text += R"("stream":true,)";
        text += R"("messages":[{"role":"user","content":"echo )" + id_of(n) + R"("}]}})";
        text += '\n';
    }
    const std::string path = dir.file("in.jsonl");
    write_file(path, text);
    return path;
}

struct record {
    std::string custom_id;
    std::int64_t status = 0; // 0: response null
    std::string content;     // choices[0].message.content of a 200
    std::string error_code;  // empty: no error
    std::string error_message;
    bool success() const { return status == 200 && error_code.empty(); }
};

std::string text_at(simdjson::dom::element doc, const char* pointer) {
    std::string_view s;
    if (doc.at_pointer(pointer).get(s) != simdjson::SUCCESS)
        return {};
    return std::string(s);
}

std::vector<record> parse_output(const std::string& path) {
    std::vector<record> out;
    simdjson::dom::parser parser;
    for (const std::string& line : read_lines(path)) {
        simdjson::dom::element doc;
        if (parser.parse(line).get(doc) != simdjson::SUCCESS) {
            FAIL_CHECK("not a JSON record: " << line.substr(0, 300));
            continue;
        }
        record rec;
        rec.custom_id = text_at(doc, "/custom_id");
        std::int64_t status = 0;
        if (doc.at_pointer("/response/status_code").get(status) == simdjson::SUCCESS)
            rec.status = status;
        rec.content = text_at(doc, "/response/body/choices/0/message/content");
        rec.error_code = text_at(doc, "/error/code");
        rec.error_message = text_at(doc, "/error/message");
        out.push_back(std::move(rec));
    }
    return out;
}

struct run_result {
    int status = -1;
    double seconds = 0;
};

run_result run_timed(const std::string& command) {
    const auto start = std::chrono::steady_clock::now();
    run_result r;
    r.status = run_shell(command);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

/// `OPENAI_API_KEY=... timeout 60 [wrapper] sluice run in -o out --base-url URL FLAGS`, with
/// stdout and stderr to files in `dir`.
std::string sluice_command(const temp_dir& dir,
                           const std::string& input,
                           const std::string& url,
                           const std::string& flags,
                           const std::string& wrapper = "") {
    return std::string("OPENAI_API_KEY=") + api_key + " timeout 60 " + wrapper + SLUICE_EXE +
           " run " + input + " -o " + dir.file("out.jsonl") + " --base-url " + url + " " + flags +
           " >" + dir.file("stdout.txt") + " 2>" + dir.file("err.txt");
}

std::string tail(const std::string& text, std::size_t n = 3000) {
    return text.size() <= n ? text : text.substr(text.size() - n);
}

/// Exactly one record per input line; every success holds its own line's answer.
void check_one_record_each(const std::vector<record>& recs) {
    CHECK(recs.size() == lines_in_batch);
    std::set<std::string> ids;
    for (const record& r : recs) {
        INFO("custom_id " << r.custom_id << " status " << r.status << " error " << r.error_code
                          << ": " << r.error_message << " content " << r.content);
        ids.insert(r.custom_id);
        if (r.success()) {
            CHECK(r.content == "answer " + r.custom_id);
        }
    }
    CHECK(ids.size() == lines_in_batch);
    for (int n = 0; n < lines_in_batch; ++n)
        CHECK(ids.count(id_of(n)) == 1);
}

/// Every record is an error of kind `code`.
void check_every_code(const std::vector<record>& recs, const std::string& code) {
    for (const record& rec : recs) {
        INFO("custom_id " << rec.custom_id << " error " << rec.error_code << ": "
                          << rec.error_message);
        CHECK(rec.error_code == code);
    }
}

int count_code(const std::vector<record>& recs, const std::string& code) {
    int n = 0;
    for (const record& r : recs)
        n += r.error_code == code ? 1 : 0;
    return n;
}

int count_success(const std::vector<record>& recs) {
    int n = 0;
    for (const record& r : recs)
        n += r.success() ? 1 : 0;
    return n;
}

void check_attempts_each(const hostile_server& server, int expected) {
    for (int n = 0; n < lines_in_batch; ++n) {
        INFO("line " << id_of(n));
        CHECK(server.attempts(n) == expected);
    }
}

// The resume of a stopped run against a server that answers: every line ends in its own answer.
void resume_against_normal_server(const temp_dir& dir, const std::string& input) {
    hostile_server normal(behavior::normal);
    const run_result r = run_timed(sluice_command(dir, input, normal.base_url(), ""));
    INFO("resume stderr:\n" << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 0);
    CHECK(r.seconds < 30);
    CHECK(normal.total() == lines_in_batch);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    CHECK(count_success(recs) == lines_in_batch);
    check_attempts_each(normal, 1);
}

// An unsolicited response never becomes some line's answer. With the default concurrency each
// of the 10 lines may get a fresh connection of its own; with one connection, every request
// after the first goes where a stray response may be waiting (or about to arrive).
void check_unsolicited(behavior how, const std::string& flags) {
    temp_dir dir;
    const std::string input = write_input(dir);
    hostile_server server(how);
    const std::string summary = dir.file("summary.json");
    const run_result r =
        run_timed(sluice_command(dir, input, server.base_url(), flags + " --summary " + summary));
    INFO("flags '" << flags << "': exit " << r.status << " after " << r.seconds << " s, "
                   << server.total() << " requests on " << server.connections()
                   << " connections; stderr:\n"
                   << tail(read_file(dir.file("err.txt"))));
    CHECK((r.status == 0 || r.status == 1));
    CHECK(r.seconds < 30);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    for (const record& r2 : recs) {
        INFO("custom_id " << r2.custom_id << " content " << r2.content << " error "
                          << r2.error_code);
        CHECK(r2.content != "answer stray");
        CHECK((r2.success() || !r2.error_code.empty()));
    }
    CHECK(count_success(recs) >= 1);
    for (int n = 0; n < lines_in_batch; ++n) {
        if (server.attempts(n) != 0)
            continue;
        for (const record& r2 : recs) {
            INFO("line " << id_of(n) << " never reached the server");
            if (r2.custom_id == id_of(n))
                CHECK_FALSE(r2.success());
        }
    }
    CHECK(server.attempts(-1) == 0);
    // On one connection every stray is seen, and the summary counts the connections it cost.
    if (flags.find("--concurrency 1") != std::string::npos) {
        simdjson::dom::parser p;
        simdjson::dom::element doc = p.parse(read_file(summary));
        CHECK(std::int64_t(doc["connections"]["untrusted"]) >= 1);
    }
}

// The key the server echoes back is in no file and no stream sluice writes.
void check_key_never_written(behavior how) {
    temp_dir dir;
    const std::string input = write_input(dir);
    hostile_server server(how);
    const run_result r = run_timed(sluice_command(dir,
                                                  input,
                                                  server.base_url(),
                                                  "--errors " + dir.file("errors.jsonl") +
                                                      " --summary " + dir.file("summary.json")));
    const std::string out = read_file(dir.file("out.jsonl"));
    const std::string err = read_file(dir.file("err.txt"));
    INFO("exit " << r.status << "; stderr:\n" << tail(err) << "\nout.jsonl:\n" << tail(out));
    CHECK(r.seconds < 30);
    const auto recs = parse_output(dir.file("out.jsonl"));
    CHECK(recs.size() == lines_in_batch);
    std::set<std::string> ids;
    for (const record& rec : recs)
        ids.insert(rec.custom_id);
    CHECK(ids.size() == lines_in_batch);
    if (how == behavior::echo_key_200) {
        CHECK(r.status == 0);
        CHECK(count_success(recs) == lines_in_batch);
        for (const record& rec : recs) {
            INFO("custom_id " << rec.custom_id << " content " << rec.content);
            CHECK(rec.content.rfind("answer " + rec.custom_id + ",", 0) == 0);
        }
    } else {
        CHECK(r.status == 1);
        CHECK(count_success(recs) == 0);
    }
    check_attempts_each(server, 1);
    for (const char* name :
         {"out.jsonl", "errors.jsonl", "summary.json", "stdout.txt", "err.txt"}) {
        INFO("file " << name);
        CHECK(read_file(dir.file(name)).find(secret) == std::string::npos);
    }
    CHECK(out.find("[REDACTED]") != std::string::npos);
}

} // namespace

TEST_CASE("hostile: 100 Continue and 103 Early Hints before every answer") {
    temp_dir dir;
    const std::string input = write_input(dir);
    hostile_server server(behavior::early_hints);
    const run_result r = run_timed(sluice_command(dir, input, server.base_url(), ""));
    INFO("exit " << r.status << "; stderr:\n" << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 0);
    CHECK(r.seconds < 30);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    CHECK(count_success(recs) == lines_in_batch);
    check_attempts_each(server, 1);
}

TEST_CASE("hostile: an unsolicited response in the same write as the answer") {
    SECTION("default concurrency") {
        check_unsolicited(behavior::unsolicited_now, "");
    }
    SECTION("one connection: every answer after the first is on a reused connection") {
        check_unsolicited(behavior::unsolicited_now, "--concurrency 1");
    }
}

TEST_CASE("hostile: an unsolicited response 50 ms after the answer") {
    SECTION("default concurrency") {
        check_unsolicited(behavior::unsolicited_late, "");
    }
    SECTION("one connection: every answer after the first is on a reused connection") {
        check_unsolicited(behavior::unsolicited_late, "--concurrency 1");
    }
}

TEST_CASE("hostile: retry-after 999999999 is capped by max_retry_after_ms") {
    temp_dir dir;
    const std::string input = write_input(dir);
    write_file(dir.file("c.toml"), "[retry]\nmax_retry_after_ms = 2000\n");
    hostile_server server(behavior::huge_retry_after);
    const run_result r = run_timed(sluice_command(
        dir, input, server.base_url(), "--config " + dir.file("c.toml") + " --max-attempts 2"));
    INFO("exit " << r.status << " after " << r.seconds << " s; stderr:\n"
                 << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 1);
    CHECK(r.seconds < 20);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    CHECK(count_code(recs, "rate_limited") == lines_in_batch);
    check_attempts_each(server, 2);
}

TEST_CASE("hostile: SIGTERM during a huge retry-after wait stops at once, and a resume finishes") {
    temp_dir dir;
    const std::string input = write_input(dir);
    {
        hostile_server server(behavior::huge_retry_after);
        const std::string cmd = sluice_command(dir, input, server.base_url(), "--concurrency 2") +
                                " & pid=$!; sleep 1.5; kill -TERM $pid; wait $pid; echo $? > " +
                                dir.file("status");
        const run_result r = run_timed(cmd);
        INFO("after " << r.seconds << " s; stderr:\n" << tail(read_file(dir.file("err.txt"))));
        CHECK(read_file(dir.file("status")) == "130\n");
        CHECK(r.seconds < 11.5); // 1.5 s before the signal, then at most 10 s
        const auto recs = parse_output(dir.file("out.jsonl"));
        check_one_record_each(recs);
        for (const record& rec : recs) {
            INFO("custom_id " << rec.custom_id << " error " << rec.error_code << ": "
                              << rec.error_message);
            CHECK((rec.error_code == "stopped" || rec.error_code == "not_attempted"));
        }
        CHECK(server.total() >= 1);
    }
    resume_against_normal_server(dir, input);
}

TEST_CASE("hostile: a 429 'Request too large' fails every line after one request") {
    temp_dir dir;
    const std::string input = write_input(dir);
    hostile_server server(behavior::too_large);
    const run_result r =
        run_timed(sluice_command(dir, input, server.base_url(), "--concurrency 1"));
    INFO("exit " << r.status << " after " << r.seconds << " s; stderr:\n"
                 << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 1);
    CHECK(r.seconds < 30);
    CHECK(server.total() == 1);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    check_every_code(recs, "request_too_large");
}

TEST_CASE("hostile: streaming lines are answered from their event stream, each sent once") {
    temp_dir dir;
    const std::string input = write_input(dir, true);
    hostile_server server(behavior::event_stream);
    const run_result r = run_timed(sluice_command(dir, input, server.base_url(), ""));
    INFO("exit " << r.status << "; stderr:\n" << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 0);
    CHECK(r.seconds < 30);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    CHECK(count_success(recs) == lines_in_batch);
    for (const record& rec : recs) {
        INFO("custom_id " << rec.custom_id << " content " << rec.content);
        CHECK(rec.content == "answer " + rec.custom_id);
    }
    check_attempts_each(server, 1);
}

TEST_CASE("hostile: an event stream to a request that asked for none is not retried") {
    temp_dir dir;
    const std::string input = write_input(dir);
    hostile_server server(behavior::event_stream);
    const run_result r = run_timed(sluice_command(dir, input, server.base_url(), ""));
    INFO("exit " << r.status << " after " << r.seconds << " s; stderr:\n"
                 << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 1);
    CHECK(r.seconds < 30);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    check_every_code(recs, "unexpected_content_type");
    for (const record& rec : recs)
        CHECK(rec.error_message.find("text/event-stream") != std::string::npos);
    check_attempts_each(server, 1); // each generation paid for once, not five times
}

TEST_CASE("hostile: a 401 stops the run after one request, and a resume sends everything") {
    temp_dir dir;
    const std::string input = write_input(dir);
    {
        hostile_server server(behavior::unauthorized);
        const run_result r =
            run_timed(sluice_command(dir, input, server.base_url(), "--concurrency 1"));
        const std::string err = read_file(dir.file("err.txt"));
        INFO("exit " << r.status << " after " << r.seconds << " s; stderr:\n" << tail(err));
        CHECK(r.status == 6);
        CHECK(r.seconds < 30);
        CHECK(server.total() == 1);
        CHECK(err.find("OPENAI_API_KEY") != std::string::npos);
        const auto recs = parse_output(dir.file("out.jsonl"));
        check_one_record_each(recs);
        CHECK(count_code(recs, "unauthorized") == 1);
        CHECK(count_code(recs, "not_attempted") == lines_in_batch - 1);
    }
    resume_against_normal_server(dir, input);
}

TEST_CASE("hostile: a 400 echoing the Authorization header does not leak the key") {
    check_key_never_written(behavior::echo_key_400);
}

TEST_CASE("hostile: a 200 echoing the Authorization header does not leak the key") {
    check_key_never_written(behavior::echo_key_200);
}

TEST_CASE("hostile: a 100 MiB chunked body fails as body_too_large in bounded memory") {
    temp_dir dir;
    const std::string input = write_input(dir);
    hostile_server server(behavior::huge_chunked);
    const std::string rss_file = dir.file("rss.txt");
    const run_result r = run_timed(sluice_command(dir,
                                                  input,
                                                  server.base_url(),
                                                  "--concurrency 16 --max-attempts 3",
                                                  "/usr/bin/time -f %M -o " + rss_file + " "));
    INFO("exit " << r.status << " after " << r.seconds << " s; stderr:\n"
                 << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 1);
    CHECK(r.seconds < 30);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    check_every_code(recs, "body_too_large");
    check_attempts_each(server, 1);
#ifndef SLUICE_SANITIZED
    // GNU time writes "Command exited with non-zero status 1" before the figure.
    const auto rss_lines = read_lines(rss_file);
    INFO("time -f %M wrote: " << read_file(rss_file));
    REQUIRE(!rss_lines.empty());
    REQUIRE(!rss_lines.back().empty());
    REQUIRE(rss_lines.back().find_first_not_of("0123456789") == std::string::npos);
    CHECK(std::stol(rss_lines.back()) < 262144);
#endif
}

TEST_CASE("hostile: a bad chunk-size line is an error naming the chunk, retried once") {
    temp_dir dir;
    const std::string input = write_input(dir);
    hostile_server server(behavior::bad_chunk);
    const run_result r = run_timed(sluice_command(dir, input, server.base_url(), ""));
    INFO("exit " << r.status << " after " << r.seconds << " s; stderr:\n"
                 << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 1);
    CHECK(r.seconds < 30);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    for (const record& rec : recs) {
        INFO("custom_id " << rec.custom_id << " error " << rec.error_code << ": "
                          << rec.error_message);
        CHECK_FALSE(rec.success());
        CHECK(rec.error_message.find("chunk") != std::string::npos);
    }
    check_attempts_each(server, 2); // a garbled answer is retried once, not max_attempts times
}

TEST_CASE("hostile: a TLS handshake that never completes times out") {
    temp_dir dir;
    const std::string input = write_input(dir);
    hostile_server server(behavior::stall_tls);
    const run_result r = run_timed(sluice_command(
        dir, input, server.https_base_url(), "--request-timeout-ms 1500 --max-attempts 1"));
    INFO("exit " << r.status << " after " << r.seconds << " s; stderr:\n"
                 << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 1);
    CHECK(r.seconds < 6);
    CHECK(server.total() == 0);
    CHECK(server.connections() >= 1);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    check_every_code(recs, "timeout");
}

// ---------------------------------------------------------------------------------------------
// One test per misbehaviour (docs/security.md#misbehaving-servers has the table). Each runs the
// built `sluice run` on the 10-line batch with short timeouts and quick backoff, and checks what
// a user relies on: the exit status, a bounded run time, one record per line, every success
// holding its own line's answer, every failure of the expected kind with words naming it, the
// attempts per line the retry rules allow, and the key in nothing written.

namespace {

/// What a run against one misbehaviour must end with.
struct expectation {
    int exit_status = 1;
    /// Every record's error code; empty: every record a success; "*": checked by the caller.
    std::string code;
    /// Words every error message holds.
    std::string words;
    /// Requests the server saw for each line; -1: not checked.
    int attempts = 1;
    /// The run ends within this many seconds.
    double max_seconds = 10;
};

/// Backoff of 10-20 ms and hints capped at 300 ms, so retries cost the test little time
/// (unless the flags name a config file of their own); 3 attempts and a request timeout of
/// 1 s unless the flags say otherwise.
std::string quick_flags(const temp_dir& dir, const std::string& flags) {
    write_file(dir.file("quick.toml"),
               "[retry]\ninitial_backoff_ms = 10\nmax_backoff_ms = 20\n"
               "max_retry_after_ms = 300\n");
    std::string out =
        "--errors " + dir.file("errors.jsonl") + " --summary " + dir.file("summary.json");
    if (flags.find("--config") == std::string::npos)
        out += " --config " + dir.file("quick.toml");
    if (flags.find("--max-attempts") == std::string::npos)
        out += " --max-attempts 3";
    if (flags.find("--request-timeout-ms") == std::string::npos)
        out += " --request-timeout-ms 1000";
    return out + " " + flags;
}

/// Nothing sluice wrote holds the key.
void check_no_key_written(const temp_dir& dir) {
    for (const char* name :
         {"out.jsonl", "errors.jsonl", "summary.json", "stdout.txt", "err.txt"}) {
        INFO("file " << name);
        CHECK(read_file(dir.file(name)).find(secret) == std::string::npos);
    }
}

/// Runs the batch (streaming lines when `stream`) against `url` and checks `want`.
std::vector<record> run_against(const std::string& url,
                                const hostile_server* server,
                                const expectation& want,
                                const std::string& flags = "",
                                bool stream = false) {
    temp_dir dir;
    const std::string input = write_input(dir, stream);
    const run_result r = run_timed(sluice_command(dir, input, url, quick_flags(dir, flags)));
    const std::string err = read_file(dir.file("err.txt"));
    INFO("exit " << r.status << " after " << r.seconds << " s; " << (server ? server->total() : 0)
                 << " requests on " << (server ? server->connections() : 0)
                 << " connections; stderr:\n"
                 << tail(err));
    CHECK(r.status == want.exit_status);
    CHECK(r.seconds < want.max_seconds);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    for (const record& rec : recs) {
        INFO("custom_id " << rec.custom_id << " status " << rec.status << " error "
                          << rec.error_code << ": " << rec.error_message);
        if (want.code.empty()) {
            CHECK(rec.success());
        } else if (want.code != "*") {
            CHECK(rec.error_code == want.code);
            CHECK(rec.error_message.find(want.words) != std::string::npos);
        }
    }
    if (server && want.attempts >= 0)
        check_attempts_each(*server, want.attempts);
    check_no_key_written(dir);
    return recs;
}

std::vector<record> run_mode(behavior how,
                             const expectation& want,
                             const std::string& flags = "",
                             bool stream = false) {
    hostile_server server(how);
    return run_against(server.base_url(), &server, want, flags, stream);
}

// A port nothing listens on: bound, then closed again.
unsigned short closed_port() {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    const unsigned short port = a.local_endpoint().port();
    a.close();
    return port;
}

// A 429 carrying `hint` (or no header at all): retried up to max_attempts, each wait within
// max_retry_after (300 ms here), never a hang, never a hammering.
void check_hint(const std::string& hint) {
    INFO("hint '" << hint << "'");
    hostile_options o;
    o.how = behavior::retry_hint;
    o.hint = hint;
    hostile_server server(o);
    run_against(server.base_url(), &server, {1, "rate_limited", "429", 3, 10});
}

} // namespace

TEST_CASE("hostile: a server that accepts and never answers times out each attempt") {
    run_mode(behavior::never_answer,
             {1, "timeout", "timeout", 2, 8},
             "--request-timeout-ms 400 --max-attempts 2");
}

TEST_CASE("hostile: headers then a stalled body time out each attempt") {
    run_mode(behavior::stalled_body,
             {1, "timeout", "timeout", 2, 8},
             "--request-timeout-ms 400 --max-attempts 2");
}

TEST_CASE("hostile: one byte a second in the head times out within the request timeout") {
    run_mode(behavior::slow_head,
             {1, "timeout", "timeout", 2, 8},
             "--request-timeout-ms 1500 --max-attempts 2");
}

TEST_CASE("hostile: one byte a second in the body times out within the request timeout") {
    run_mode(behavior::slow_body,
             {1, "timeout", "timeout", 2, 8},
             "--request-timeout-ms 1500 --max-attempts 2");
}

TEST_CASE("hostile: a close after the status line is a closed connection, retried") {
    run_mode(behavior::close_after_status, {1, "connection_closed", "", 3});
}

TEST_CASE("hostile: a body shorter than its Content-Length is a closed connection, retried") {
    run_mode(behavior::short_body, {1, "connection_closed", "", 3});
}

TEST_CASE("hostile: a reset before the head is a reset connection, retried") {
    run_mode(behavior::reset_before_head, {1, "connection_reset", "reset", 3});
}

TEST_CASE("hostile: a reset after the head is a reset connection, retried") {
    run_mode(behavior::reset_after_head, {1, "connection_reset", "reset", 3});
}

TEST_CASE("hostile: a chunk size over 64 bits is an error naming the chunk, retried once") {
    run_mode(behavior::chunk_overflow, {1, "bad_http_response", "chunk", 2});
}

TEST_CASE(
    "hostile: an invalid status line is a bad HTTP response naming the status, retried once") {
    run_mode(behavior::bad_status_line, {1, "bad_http_response", "status", 2});
}

TEST_CASE("hostile: an answer that is not HTTP at all is a bad HTTP response, retried once") {
    run_mode(behavior::not_http, {1, "bad_http_response", "version", 2});
}

TEST_CASE("hostile: a 1 MiB header is refused at 8 KiB and not retried") {
    run_mode(behavior::huge_header, {1, "bad_http_response", "header", 1});
}

TEST_CASE("hostile: a Content-Length of 100 MiB is body_too_large before the body is read") {
    run_mode(behavior::huge_length, {1, "body_too_large", "body", 1});
}

TEST_CASE("hostile: 100 MiB of body without a length, ending at the close, is body_too_large") {
    // 8 MiB read for each of 10 requests at once: more than the usual 1 s in a debug or
    // sanitizer build on a loaded machine. What is checked is the verdict, not the speed.
    run_mode(
        behavior::huge_until_close, {1, "body_too_large", "body", 1}, "--request-timeout-ms 10000");
}

TEST_CASE("hostile: JSON that is not a chat completion is malformed, retried once") {
    run_mode(behavior::not_completion, {1, "malformed_response", "", 2});
}

TEST_CASE("hostile: an HTML page with status 200 is not retried and names its type") {
    run_mode(behavior::html, {1, "unexpected_content_type", "text/html", 1});
}

TEST_CASE("hostile: truncated JSON is malformed, retried once") {
    run_mode(behavior::truncated_json, {1, "malformed_response", "", 2});
}

TEST_CASE("hostile: a 429 with no headers is retried with backoff up to max_attempts") {
    check_hint("");
}

TEST_CASE("hostile: retry-after hints in the past, negative, huge, non-numeric or overflowing") {
    for (const char* hint : {"retry-after: Wed, 21 Oct 2015 07:28:00 GMT",
                             "retry-after: -5",
                             "retry-after: 999999999",
                             "retry-after: soon",
                             "retry-after: 1e400",
                             "retry-after: 99999999999999999999999999999"})
        check_hint(hint);
}

TEST_CASE("hostile: retry-after-ms hints negative, huge, non-numeric or overflowing") {
    for (const char* hint : {"retry-after-ms: -100",
                             "retry-after-ms: 999999999999",
                             "retry-after-ms: 0x10",
                             "retry-after-ms: 1e400",
                             "retry-after-ms: 99999999999999999999999999999"})
        check_hint(hint);
}

TEST_CASE("hostile: a quota 429 stops the job after one request, exit 3") {
    hostile_server server(behavior::quota);
    const auto recs =
        run_against(server.base_url(), &server, {3, "*", "", -1, 10}, "--concurrency 1");
    CHECK(server.total() == 1);
    CHECK(count_code(recs, "quota_exhausted") == 1);
    CHECK(count_code(recs, "not_attempted") == lines_in_batch - 1);
}

TEST_CASE("hostile: a 400 is final after one request and carries the server's message") {
    run_mode(behavior::bad_request, {1, "client_error", "Invalid value for 'messages'", 1});
}

TEST_CASE("hostile: flaky 500s are retried and every line ends with its own answer") {
    run_mode(behavior::flaky_500, {0, "", "", 2});
}

TEST_CASE("hostile: Connection close on every answer costs a connection each, nothing else") {
    hostile_server server(behavior::connection_close);
    run_against(server.base_url(), &server, {0, "", "", 1}, "--concurrency 1");
    CHECK(server.connections() == lines_in_batch);
}

TEST_CASE("hostile: a silent close of idle connections loses no line and sends none twice") {
    hostile_server server(behavior::idle_close);
    run_against(server.base_url(), &server, {0, "", "", 1}, "--concurrency 1");
    // Every connection served one answer before it was closed under the client.
    CHECK(server.connections() >= lines_in_batch);
}

TEST_CASE("hostile: a 307 redirect is not followed and the key goes nowhere else") {
    hostile_server elsewhere(behavior::normal);
    hostile_options o;
    o.how = behavior::redirect_307;
    o.location = elsewhere.base_url() + "/chat/completions";
    hostile_server server(o);
    run_against(
        server.base_url(), &server, {1, "client_error", "HTTP 307 (a redirect, not followed)", 1});
    CHECK(elsewhere.connections() == 0);
}

TEST_CASE("hostile: a refused connection fails each line naming it, retried") {
    run_against("http://127.0.0.1:" + std::to_string(closed_port()) + "/v1",
                nullptr,
                {1, "connection_refused", "refused", -1, 10});
}

TEST_CASE("hostile: plain HTTP on the TLS port is a TLS error") {
    hostile_server server(behavior::plain_on_tls);
    run_against(server.https_base_url(), &server, {1, "tls_error", "handshake", 0});
}

TEST_CASE("hostile: a reset during the TLS handshake is retried and named") {
    hostile_server server(behavior::tls_reset);
    run_against(server.https_base_url(), &server, {1, "connection_reset", "handshake", 0});
}

TEST_CASE("hostile: a reset after the TLS handshake, mid-exchange, is retried") {
    hostile_server server(behavior::reset_mid_tls);
    run_against(
        server.https_base_url(), &server, {1, "connection_reset", "reset", 3}, "--insecure");
}

TEST_CASE("hostile: an event stream cut mid-event is retried and named") {
    run_mode(behavior::sse_cut, {1, "event_stream_truncated", "", 3}, "", true);
}

TEST_CASE("hostile: an error event in a stream is a server error, retried") {
    run_mode(behavior::sse_error, {1, "server_error", "The server had an error", 3}, "", true);
}

TEST_CASE("hostile: a stream that stalls between events is cut by stream_idle_timeout") {
    run_mode(behavior::sse_stall,
             {1, "timeout", "timeout", 2, 8},
             "--stream-idle-timeout-ms 300 --max-attempts 2",
             true);
}

TEST_CASE("hostile: an event stream of 100 MiB is refused in bounded time") {
    run_mode(behavior::sse_huge, {1, "body_too_large", "", 1}, "", true);
}

// ---------------------------------------------------------------------------------------------
// Deadlines: --deadline-ms bounds each request's whole life, --max-duration the job's.

TEST_CASE("deadline: an answer that never comes is cut at --deadline-ms, not the request timeout") {
    run_mode(behavior::never_answer,
             {1,
              "deadline_exceeded",
              "the request's deadline of 600 ms passed during the attempt",
              1,
              4},
             "--deadline-ms 600 --request-timeout-ms 20000 --max-attempts 5");
}

TEST_CASE("deadline: a retry hint that would end past the deadline is not waited for") {
    temp_dir conf;
    write_file(conf.file("hints.toml"), "[retry]\nmax_retry_after_ms = 60000\n");
    hostile_options o;
    o.how = behavior::retry_hint;
    o.hint = "retry-after: 5";
    hostile_server server(o);
    run_against(
        server.base_url(),
        &server,
        {1, "deadline_exceeded", "would pass before the next attempt (a wait of 5000 ms", 1, 2.5},
        "--config " + conf.file("hints.toml") + " --deadline-ms 2000 --max-attempts 5");
}

TEST_CASE("deadline: --max-duration stops the job as SIGTERM does, exit 7, and a resume finishes") {
    temp_dir dir;
    const std::string input = write_input(dir);
    hostile_server first(behavior::normal);
    {
        // One request a second: two lines are answered before the job deadline at 1.5 s.
        const run_result r = run_timed(sluice_command(
            dir, input, first.base_url(), "--rpm 60 --max-duration 1.5 --grace-period 5"));
        const std::string err = read_file(dir.file("err.txt"));
        INFO("exit " << r.status << " after " << r.seconds << " s; stderr:\n" << tail(err));
        CHECK(r.status == 7);
        CHECK(r.seconds < 5);
        CHECK(err.find("the job deadline passed (--max-duration 1.5 s); stopping as on SIGTERM") !=
              std::string::npos);
        const auto recs = parse_output(dir.file("out.jsonl"));
        check_one_record_each(recs);
        const int done = count_success(recs);
        CHECK(done >= 1);
        CHECK(done <= 3);
        CHECK(count_code(recs, "not_attempted") == lines_in_batch - done);
    }
    hostile_server second(behavior::normal);
    const run_result r = run_timed(sluice_command(dir, input, second.base_url(), ""));
    INFO("resume: exit " << r.status << "; stderr:\n" << tail(read_file(dir.file("err.txt"))));
    CHECK(r.status == 0);
    const auto recs = parse_output(dir.file("out.jsonl"));
    check_one_record_each(recs);
    CHECK(count_success(recs) == lines_in_batch);
    for (int n = 0; n < lines_in_batch; ++n) {
        INFO("line " << id_of(n));
        CHECK(first.attempts(n) + second.attempts(n) == 1); // each line answered once in all
    }
}

} // namespace hostile_server_test
