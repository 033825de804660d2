// Resume from an existing output: torn tails cut, unfinished requests dropped for the run to
// redo, final records reported by the right key, foreign files refused untouched, the error
// file rebuilt, and a crash during compaction leaving the old file or the new one.
#include "support/temp_dir.hpp"

#include <sluice/sink/journal.hpp>
#include <sluice/sink/jsonl_writer.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using sluice::test::read_file;
using sluice::test::temp_dir;
using sluice::test::write_file;

namespace {

// Records made by the real writer, so the journal is tested against what sluice writes.
std::string success_line(const std::string& id, const std::string& body = R"({"ok":true})") {
    result r;
    r.custom_id = id;
    r.status = 200;
    r.request_id = "req_1";
    r.body = body;
    std::string out;
    append_output_record(out, r, "batch_req_" + id);
    return out;
}

std::string failure(const std::string& id, errc e, unsigned status = 0) {
    result r;
    r.custom_id = id;
    r.ec = e;
    r.status = status;
    if (status != 0)
        r.body = R"({"error":{"message":"no"}})";
    std::string out;
    append_output_record(out, r, "batch_req_" + id);
    return out;
}

std::string bad_line_text(std::uint64_t line, const std::string& custom_id = "") {
    sluice::bad_line bad;
    bad.line_number = line;
    bad.custom_id = custom_id;
    bad.ec = custom_id.empty() ? errc::bad_input_line : errc::duplicate_custom_id;
    bad.message = custom_id.empty() ? "not JSON" : "";
    std::string out;
    append_input_error_record(out, bad, "batch_req_line");
    return out;
}

// What one recovery reported through its handlers.
struct reported {
    std::vector<std::string> ids;
    std::vector<std::uint64_t> lines;
};

journal_recovery recover(const std::string& path, reported& seen, journal_options opts = {}) {
    return recover_journal(
        path,
        opts,
        [&](std::string_view id) { seen.ids.emplace_back(id); },
        [&](std::uint64_t line) { seen.lines.push_back(line); });
}

journal_recovery recover(const std::string& path, journal_options opts = {}) {
    reported ignored;
    return recover(path, ignored, std::move(opts));
}

bool exists(const std::string& path) {
    return std::filesystem::exists(path);
}

} // namespace

TEST_CASE("a missing or empty output needs nothing and creates no file") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    reported seen;
    journal_recovery rec = recover(out, seen);
    CHECK(rec.records == 0);
    CHECK_FALSE(rec.rewritten);
    CHECK_FALSE(exists(out));

    write_file(out, "");
    rec = recover(out, seen);
    CHECK(rec.records == 0);
    CHECK(read_file(out).empty());
    CHECK(seen.ids.empty());
    CHECK(seen.lines.empty());
}

TEST_CASE("an unfinished last line is cut off and appending continues on a fresh line") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const std::string whole = success_line("r1") + failure("r2", errc::server_error, 503);
    const std::string r3 = success_line("r3");
    const std::string torn = r3.substr(0, r3.size() / 2);
    write_file(out, whole + torn);

    reported seen;
    const journal_recovery rec = recover(out, seen);
    CHECK(rec.records == 2);
    CHECK(rec.torn_bytes == torn.size());
    CHECK_FALSE(rec.rewritten);
    CHECK(read_file(out) == whole);
    CHECK(seen.ids == std::vector<std::string>{"r1", "r2"});

    // The run appends with O_APPEND after recovery: the redone record is a whole line.
    const int fd = ::open(out.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    REQUIRE(fd >= 0);
    {
        jsonl_writer writer(fd);
        result r;
        r.custom_id = "r3";
        r.status = 200;
        r.body = "{}";
        writer.write(r);
    }
    ::close(fd);
    reported again;
    const journal_recovery second = recover(out, again);
    CHECK(second.records == 3);
    CHECK(second.torn_bytes == 0);
    CHECK(again.ids == std::vector<std::string>{"r1", "r2", "r3"});
}

TEST_CASE("a record cut just before its newline is still unfinished") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const std::string r2 = success_line("r2");
    write_file(out, success_line("r1") + r2.substr(0, r2.size() - 1));
    reported seen;
    const journal_recovery rec = recover(out, seen);
    CHECK(rec.torn_bytes == r2.size() - 1);
    CHECK(read_file(out) == success_line("r1"));
    CHECK(seen.ids == std::vector<std::string>{"r1"}); // r2 is redone, never reported
}

TEST_CASE("unfinished requests are dropped, the file compacted and final records reported") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const std::vector<std::string> lines = {
        success_line("a"),
        failure("b", errc::not_attempted),
        failure("c", errc::server_error, 500),
        failure("d", errc::stopped),
        bad_line_text(5),
        failure("e", errc::quota_exhausted, 429),
        failure("f", errc::client_error, 400),
        success_line("g"),
        failure("h", errc::unauthorized, 401), // the key is fixed before the resume
    };
    std::string all;
    for (const auto& l : lines)
        all += l;
    write_file(out, all);
    ::chmod(out.c_str(), 0600);

    reported seen;
    const journal_recovery rec = recover(out, seen);
    CHECK(rec.records == 9);
    CHECK(rec.dropped == 4);
    CHECK(rec.kept_successes == 2);
    CHECK(rec.kept_errors == 2);
    CHECK(rec.kept_bad_lines == 1);
    CHECK(rec.rewritten);
    CHECK(seen.ids == std::vector<std::string>{"a", "c", "f", "g"});
    CHECK(seen.lines == std::vector<std::uint64_t>{5});
    CHECK(read_file(out) == lines[0] + lines[2] + lines[4] + lines[6] + lines[7]);

    struct stat st {};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600); // the replacement keeps the output's permissions
    CHECK_FALSE(exists(out + ".sluice-tmp"));

    // Recovery is idempotent: a second resume finds nothing to do.
    const journal_recovery again = recover(out);
    CHECK(again.records == 5);
    CHECK(again.dropped == 0);
    CHECK_FALSE(again.rewritten);
}

TEST_CASE("compaction also cuts an unfinished last line") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    write_file(
        out, success_line("a") + failure("b", errc::stopped) + success_line("c") + "{\"id\":\"bat");
    const journal_recovery rec = recover(out);
    CHECK(rec.rewritten);
    CHECK(rec.torn_bytes == 10);
    CHECK(read_file(out) == success_line("a") + success_line("c"));
}

TEST_CASE("retry_failed drops every error record, bad lines included") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    write_file(out,
               success_line("a") + failure("b", errc::server_error, 502) + bad_line_text(3) +
                   bad_line_text(4, "a") + failure("c", errc::client_error, 400) +
                   success_line("d"));
    reported seen;
    journal_options opts;
    opts.retry_failed = true;
    const journal_recovery rec = recover(out, seen, opts);
    CHECK(rec.dropped == 4);
    CHECK(rec.kept_successes == 2);
    CHECK(rec.kept_errors == 0);
    CHECK(rec.kept_bad_lines == 0);
    CHECK(seen.ids == std::vector<std::string>{"a", "d"});
    CHECK(seen.lines.empty());
    CHECK(read_file(out) == success_line("a") + success_line("d"));
}

TEST_CASE("a bad-line record is reported by its line, not by its custom_id") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    // Line 2 repeated r1's custom_id: its record carries "r1" but is about line 2 only.
    write_file(out, success_line("r1") + bad_line_text(2, "r1") + bad_line_text(3));
    reported seen;
    const journal_recovery rec = recover(out, seen);
    CHECK(rec.kept_bad_lines == 2);
    CHECK(rec.kept_successes == 1);
    CHECK(seen.ids == std::vector<std::string>{"r1"});
    CHECK(seen.lines == std::vector<std::uint64_t>{2, 3});
}

TEST_CASE("only top-level fields count: a body's line, error or custom_id is not the record's") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const std::string body =
        R"({"line":9,"custom_id":"evil","error":{"code":"not_attempted"},"choices":[]})";
    const std::string record = success_line("r1", body);
    write_file(out, record);
    reported seen;
    const journal_recovery rec = recover(out, seen);
    CHECK(rec.kept_successes == 1);
    CHECK(rec.dropped == 0);
    CHECK(seen.ids == std::vector<std::string>{"r1"});
    CHECK(seen.lines.empty());
    CHECK(read_file(out) == record);
}

TEST_CASE("a file sluice did not write is refused with its line number and left unchanged") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const std::string errors = dir.file("errors.jsonl");
    const std::string prefix = success_line("a") + failure("b", errc::not_attempted) +
                               failure("c", errc::server_error, 500);
    const std::string errors_before = "an old error file\n";

    struct foreign_case {
        std::string text;
        std::string where;
    };
    const std::vector<foreign_case> cases = {
        {"name,age\nann,3\n", ":1:"},
        {prefix + "{\"id\":\"batch_req_x\",\"custom_id\":\"d\",\"response\":null,\"err\n" +
             success_line("e") + "{\"id\":",
         ":4:"},
        // The input file given as the output: custom_id but no response or error.
        {R"({"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{}})"
         "\n",
         ":1:"},
        {prefix + "\n" + success_line("e"), ":4:"}, // an empty line
        {prefix + R"({"id":"x","custom_id":7,"response":null,"error":null})"
                  "\n",
         ":4:"},
        {prefix + R"({"id":"x","custom_id":"d","response":null,"error":"oops"})"
                  "\n",
         ":4:"},
        {prefix + R"({"id":"x","custom_id":"d","response":null,"error":null,"line":-1})"
                  "\n",
         ":4:"},
        // Valid JSON that lacks only its final newline is not a torn record.
        {prefix + R"({"name":"not a record"})", ":4:"},
        {R"({"custom_id":"r1"})", ":1:"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        write_file(out, c.text);
        write_file(errors, errors_before);
        journal_options opts;
        opts.errors_path = errors;
        reported seen;
        try {
            recover(out, seen, opts);
            FAIL("accepted a foreign file");
        } catch (const std::runtime_error& e) {
            const std::string what = e.what();
            CHECK(what.find(out + c.where) != std::string::npos);
            CHECK(what.find("not a sluice output record") != std::string::npos);
        }
        CHECK(read_file(out) == c.text);
        CHECK(read_file(errors) == errors_before);
        CHECK_FALSE(exists(out + ".sluice-tmp"));
        CHECK_FALSE(exists(errors + ".sluice-tmp"));
    }
}

TEST_CASE("the error file is rebuilt to hold exactly the kept error records, in order") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const std::string errors = dir.file("errors.jsonl");
    const std::string c = failure("c", errc::server_error, 500);
    const std::string bad = bad_line_text(4);
    const std::string f = failure("f", errc::client_error, 400);
    write_file(out,
               success_line("a") + failure("b", errc::not_attempted) + c + bad + success_line("e") +
                   f + failure("g", errc::stopped));
    // Left behind by a run killed between its two appends: stale and partly missing.
    write_file(errors, f + failure("b", errc::not_attempted) + "{\"id\":\"batch_");

    journal_options opts;
    opts.errors_path = errors;
    journal_recovery rec = recover(out, opts);
    CHECK(rec.errors_rewritten);
    CHECK(read_file(errors) == c + bad + f);
    CHECK_FALSE(exists(errors + ".sluice-tmp"));

    // Nothing changed in the output: the error file is still made to match it.
    write_file(errors, "");
    rec = recover(out, opts);
    CHECK_FALSE(rec.rewritten);
    CHECK(read_file(errors) == c + bad + f);

    // With every failure redone, no error record is kept: the error file is emptied.
    opts.retry_failed = true;
    rec = recover(out, opts);
    CHECK(rec.errors_rewritten);
    CHECK(exists(errors));
    CHECK(read_file(errors).empty());
}

TEST_CASE("an error file is created only when there are error records to keep") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const std::string errors = dir.file("errors.jsonl");
    journal_options opts;
    opts.errors_path = errors;

    recover(out, opts); // no output at all
    CHECK_FALSE(exists(errors));
    write_file(out, success_line("a"));
    recover(out, opts);
    CHECK_FALSE(exists(errors));

    write_file(out, success_line("a") + failure("b", errc::server_error, 500));
    const journal_recovery rec = recover(out, opts);
    CHECK(rec.errors_rewritten);
    CHECK(read_file(errors) == failure("b", errc::server_error, 500));

    // A fresh job (no output yet) must not inherit an old job's error records.
    std::filesystem::remove(out);
    recover(out, opts);
    CHECK(read_file(errors).empty());
}

TEST_CASE("the error file must not be the output file") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    write_file(out, success_line("a") + failure("b", errc::server_error, 500));
    journal_options opts;
    opts.errors_path = out;
    CHECK_THROWS_AS(recover(out, opts), std::invalid_argument);
    CHECK(read_file(out) == success_line("a") + failure("b", errc::server_error, 500));
}

TEST_CASE("an error file that is a stream is left alone") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    write_file(out, success_line("a") + failure("b", errc::server_error, 500));
    journal_options opts;
    opts.errors_path = "/dev/null";
    const journal_recovery rec = recover(out, opts);
    CHECK(rec.kept_errors == 1);
    CHECK_FALSE(rec.errors_rewritten);
    struct stat st {};
    REQUIRE(::stat("/dev/null", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK_FALSE(exists("/dev/null.sluice-tmp"));
}

TEST_CASE("a stale temporary file from an earlier crash is overwritten or removed") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const std::string temp = out + ".sluice-tmp";

    write_file(temp, "half a compaction that never got renamed\n");
    ::chmod(temp.c_str(), 0600);
    write_file(out, success_line("a") + failure("b", errc::not_attempted) + success_line("c"));
    ::chmod(out.c_str(), 0664);
    REQUIRE(recover(out).rewritten);
    CHECK(read_file(out) == success_line("a") + success_line("c"));
    CHECK_FALSE(exists(temp));
    struct stat st {};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0664); // neither the stale file's mode nor the umask's

    write_file(temp, "stale\n");
    CHECK_FALSE(recover(out).rewritten);
    CHECK_FALSE(exists(temp));
    CHECK(read_file(out) == success_line("a") + success_line("c"));
}

TEST_CASE("a symlinked output stays a symlink after compaction") {
    temp_dir dir;
    const std::string real = dir.file("real.jsonl");
    const std::string link = dir.file("link.jsonl");
    write_file(real, success_line("a") + failure("b", errc::stopped));
    std::filesystem::create_symlink(real, link);
    REQUIRE(recover(link).rewritten);
    CHECK(std::filesystem::is_symlink(link));
    CHECK(read_file(real) == success_line("a"));
}

TEST_CASE("a big output is streamed record by record") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    constexpr std::size_t count = 200000;
    std::string expected;
    {
        std::string chunk;
        std::ofstream file(out, std::ios::binary);
        for (std::size_t i = 0; i < count; ++i) {
            const std::string id = test::numbered("r", i);
            // Every 10th record was cut short by a stop; every 100th is a bad line.
            const std::string rec = i % 10 == 3    ? failure(id, errc::not_attempted)
                                    : i % 100 == 7 ? bad_line_text(i + 1)
                                                   : success_line(id);
            chunk += rec;
            if (i % 10 != 3)
                expected += rec;
            if (chunk.size() > (1 << 20)) {
                file << chunk;
                chunk.clear();
            }
        }
        file << chunk;
    }
    std::size_t ids = 0;
    std::size_t lines = 0;
    bool in_order = true;
    std::uint64_t next_line = 8;
    const journal_recovery rec = recover_journal(
        out,
        {},
        [&](std::string_view) { ++ids; },
        [&](std::uint64_t line) {
            in_order = in_order && line == next_line;
            next_line += 100;
            ++lines;
        });
    CHECK(rec.records == count);
    CHECK(rec.dropped == count / 10);
    CHECK(rec.kept_bad_lines == count / 100);
    CHECK(rec.kept_successes == count - count / 10 - count / 100);
    CHECK(ids == rec.kept_successes);
    CHECK(lines == count / 100);
    CHECK(in_order);
    CHECK(rec.rewritten);
    CHECK((read_file(out) == expected));
}

TEST_CASE("a record of several MiB is read, kept and copied whole") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const std::string body = R"({"text":")" + std::string(6 << 20, 'x') + R"(","line":3})";
    const std::string big = success_line("big", body);
    const std::string torn = success_line("torn", body);
    write_file(out,
               failure("a", errc::not_attempted) + big + success_line("b") +
                   torn.substr(0, torn.size() - 100));
    reported seen;
    const journal_recovery rec = recover(out, seen);
    CHECK(rec.records == 3);
    CHECK(rec.torn_bytes == torn.size() - 100);
    CHECK(rec.rewritten);
    CHECK(seen.ids == std::vector<std::string>{"big", "b"});
    CHECK(seen.lines.empty());
    CHECK((read_file(out) == big + success_line("b")));
}

TEST_CASE("killed at any moment, compaction leaves the old file or the new one") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    std::string before;
    std::string after;
    const std::string body = R"({"text":")" + std::string(800, 'y') + R"("})";
    for (std::size_t i = 0; i < 20000; ++i) {
        const std::string id = test::numbered("k", i);
        const std::string rec = i % 7 == 0 ? failure(id, errc::stopped) : success_line(id, body);
        before += rec;
        if (i % 7 != 0)
            after += rec;
    }

    // How long one uninterrupted recovery takes, to spread the kills over it.
    write_file(out, before);
    const auto started = std::chrono::steady_clock::now();
    recover(out);
    const auto took = std::chrono::steady_clock::now() - started;
    REQUIRE((read_file(out) == after));

    int old_seen = 0;
    for (int attempt = 0; attempt < 12; ++attempt) {
        write_file(out, before);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            try {
                recover(out);
            } catch (...) {
                ::_exit(2);
            }
            ::_exit(0);
        }
        std::this_thread::sleep_for(took * attempt / 6);
        ::kill(child, SIGKILL);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        if (WIFEXITED(status))
            REQUIRE(WEXITSTATUS(status) == 0);

        const std::string now = read_file(out);
        const bool is_old = now == before;
        const bool is_new = now == after;
        CHECK((is_old || is_new));
        old_seen += is_old;

        // Resuming again always finishes the job.
        recover(out);
        CHECK((read_file(out) == after));
        CHECK_FALSE(exists(out + ".sluice-tmp"));
    }
    CHECK(old_seen > 0); // a kill landed before the rename at least once
}
