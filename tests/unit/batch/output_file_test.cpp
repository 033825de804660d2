// The output and error files of a batch job: created owner-only, appended to when they exist.
#include "support/file_mode.hpp"
#include "support/temp_dir.hpp"

#include <sluice/batch/input_files.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <string>

using namespace sluice;
using namespace sluice::test;

namespace {

void append(const std::string& path, const std::string& text) {
    const int fd = open_output(path);
    REQUIRE(fd >= 0);
    CHECK(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::close(fd);
}

} // namespace

TEST_CASE("an output file is created 0600 less the umask, and never truncated when reopened") {
    temp_dir dir;
    const std::string out = dir.file("out.jsonl");
    const mode_t old = ::umask(022);
    append(out, "one\n");
    CHECK(file_mode(out) == 0600);
    ::chmod(out.c_str(), 0640); // the owner's choice stands
    append(out, "two\n");
    CHECK(read_file(out) == "one\ntwo\n");
    CHECK(file_mode(out) == 0640);
    ::umask(077);
    append(dir.file("narrow.jsonl"), "x\n");
    CHECK(file_mode(dir.file("narrow.jsonl")) == 0600);
    ::umask(old);
}
