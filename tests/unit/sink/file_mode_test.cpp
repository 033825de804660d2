// The files sluice creates hold prompts and answers: owner-only by default, narrower when the
// umask says so, and a file being replaced keeps the mode its owner gave it.
#include "sink/atomic_file.hpp"
#include "support/file_mode.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <optional>
#include <string>

using namespace sluice;
using namespace sluice::test;

namespace {

// Sets the umask for the scope, and puts the old one back.
struct scoped_umask {
    explicit scoped_umask(mode_t m)
        : old(::umask(m)) {}
    ~scoped_umask() { ::umask(old); }
    scoped_umask(const scoped_umask&) = delete;
    scoped_umask& operator=(const scoped_umask&) = delete;
    mode_t old;
};

void replace(const std::string& target, std::optional<mode_t> mode) {
    detail::replacement_file f(target, mode);
    f.append_line("{}");
    f.commit();
}

} // namespace

TEST_CASE("a new file is created 0600, or narrower by the umask") {
    temp_dir dir;
    {
        const scoped_umask u(022);
        replace(dir.file("a.jsonl"), std::nullopt);
        CHECK(file_mode(dir.file("a.jsonl")) == 0600);
    }
    {
        const scoped_umask u(0377);
        replace(dir.file("b.jsonl"), std::nullopt);
        CHECK(file_mode(dir.file("b.jsonl")) == 0400);
    }
}

TEST_CASE("a stale temporary file does not pass its mode to a new file") {
    temp_dir dir;
    const scoped_umask u(022);
    const std::string target = dir.file("out.jsonl");
    write_file(target + ".sluice-tmp", "left by an older sluice\n");
    ::chmod((target + ".sluice-tmp").c_str(), 0644);
    replace(target, std::nullopt);
    CHECK(file_mode(target) == 0600);
    CHECK(read_file(target) == "{}\n");
}

TEST_CASE("a replaced file keeps its owner's mode") {
    temp_dir dir;
    const std::string target = dir.file("out.jsonl");
    write_file(target, "old\n");
    ::chmod(target.c_str(), 0640);
    replace(target, file_mode(target));
    CHECK(file_mode(target) == 0640);
}
