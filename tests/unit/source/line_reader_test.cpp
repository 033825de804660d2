// The padded line splitter under the input reader and the journal: lines, their offsets and
// the unfinished last line at every buffer size, padding behind every line, EINTR and errors.
#include "support/temp_dir.hpp"

#include "detail/line_reader.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using sluice::detail::line_reader;
using sluice::test::temp_dir;

namespace {

constexpr std::size_t padding = 64;

struct read_line {
    std::string text;
    std::uint64_t offset;
    bool newline_ended;
    friend bool operator==(const read_line&, const read_line&) = default;
};

std::vector<read_line> read_all(line_reader& reader) {
    std::vector<read_line> lines;
    std::string_view line;
    while (reader.next(line)) {
        // Every byte of the promised padding must be readable: AddressSanitizer checks this.
        unsigned sum = 0;
        for (std::size_t i = 0; i < line.size() + padding; ++i)
            sum += static_cast<unsigned char>(line.data()[i]);
        (void)sum;
        lines.push_back({std::string(line), reader.line_offset(), reader.newline_ended()});
    }
    return lines;
}

// What next() must yield for `text`: split at each '\n', plus an unfinished last line.
std::vector<read_line> expected_lines(const std::string& text) {
    std::vector<read_line> lines;
    std::size_t begin = 0;
    for (std::size_t nl; (nl = text.find('\n', begin)) != std::string::npos; begin = nl + 1)
        lines.push_back({text.substr(begin, nl - begin), begin, true});
    if (begin < text.size())
        lines.push_back({text.substr(begin), begin, false});
    return lines;
}

std::vector<read_line> read_text(const std::string& text, std::size_t capacity) {
    temp_dir dir;
    const std::string path = dir.file("lines");
    sluice::test::write_file(path, text);
    sluice::test::scoped_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    REQUIRE(fd.fd >= 0);
    line_reader reader(fd.fd, padding, "read lines", capacity);
    return read_all(reader);
}

std::atomic<int> signals_seen{0};
extern "C" void count_signal(int) {
    ++signals_seen;
}

} // namespace

TEST_CASE("line_reader yields every line with its offset at every buffer size") {
    const std::string texts[] = {
        "",
        "\n",
        "a",
        "a\n",
        "a\n\nbcd\nef",
        "one line longer than the small buffers\nand a second one\n",
        "\n\n\nxyz\n\n0123456789abcdef0123456789\nunfinished",
    };
    for (const std::string& text : texts) {
        // Capacities from 1 make lines outgrow the buffer and partial lines move to its front.
        for (std::size_t capacity = 1; capacity <= 40; ++capacity) {
            INFO("text \"" << text << "\", capacity " << capacity);
            CHECK(read_text(text, capacity) == expected_lines(text));
        }
    }
}

TEST_CASE("line_reader marks only an unfinished last line as not newline-ended") {
    const auto finished = read_text("{\"id\":1}\n{\"id\":2}\n", line_reader::default_capacity);
    REQUIRE(finished.size() == 2);
    CHECK(finished[1].newline_ended);

    const auto torn = read_text("{\"id\":1}\n{\"id\"", line_reader::default_capacity);
    REQUIRE(torn.size() == 2);
    CHECK(torn[0].newline_ended);
    CHECK(torn[1] == read_line{"{\"id\"", 9, false});
}

TEST_CASE("line_reader counts offsets from where the descriptor stood") {
    temp_dir dir;
    const std::string path = dir.file("lines");
    sluice::test::write_file(path, "skip\nab\ncd\n");
    sluice::test::scoped_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    REQUIRE(fd.fd >= 0);
    REQUIRE(::lseek(fd.fd, 5, SEEK_SET) == 5);
    line_reader reader(fd.fd, padding, "read lines", 2);
    CHECK(read_all(reader) == std::vector<read_line>{{"ab", 0, true}, {"cd", 3, true}});
}

TEST_CASE("line_reader reads a pipe written in small pieces") {
    std::string text;
    for (int i = 0; i < 3000; ++i)
        text += std::string(static_cast<std::size_t>(i % 97), 'x') + "\n";
    text += "tail";
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    sluice::test::scoped_fd read_end{fds[0]};
    std::thread writer([fd = fds[1], &text] {
        // Odd-sized pieces split lines at arbitrary points.
        for (std::size_t at = 0; at < text.size();) {
            const std::size_t n = std::min<std::size_t>(1 + at % 251, text.size() - at);
            const ssize_t written = ::write(fd, text.data() + at, n);
            if (written <= 0)
                break;
            at += static_cast<std::size_t>(written);
        }
        ::close(fd);
    });
    line_reader reader(fds[0], padding, "read lines", 128);
    const auto lines = read_all(reader);
    writer.join();
    CHECK(lines == expected_lines(text));
}

TEST_CASE("line_reader retries a read interrupted by a signal") {
    struct sigaction action {};
    action.sa_handler = count_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; // no SA_RESTART: a blocked read(2) fails with EINTR
    struct sigaction old {};
    REQUIRE(::sigaction(SIGUSR1, &action, &old) == 0);
    signals_seen = 0;

    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    sluice::test::scoped_fd read_end{fds[0]};
    const pthread_t reader_thread = ::pthread_self();
    std::thread writer([fd = fds[1], reader_thread] {
        // The reader is blocked on the empty pipe by now (or the signal merely comes early).
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ::pthread_kill(reader_thread, SIGUSR1);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const std::string text = "after\n";
        (void)!::write(fd, text.data(), text.size());
        ::close(fd);
    });
    line_reader reader(fds[0], padding, "read lines");
    const auto lines = read_all(reader);
    writer.join();
    ::sigaction(SIGUSR1, &old, nullptr);

    CHECK(signals_seen == 1);
    CHECK(lines == std::vector<read_line>{{"after", 0, true}});
}

TEST_CASE("line_reader reports a read error with the caller's description") {
    sluice::test::scoped_fd fd{
        ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)}; // read(2) fails: EISDIR
    REQUIRE(fd.fd >= 0);
    line_reader reader(fd.fd, padding, "read the test input");
    std::string_view line;
    try {
        reader.next(line);
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::error_code(EISDIR, std::generic_category()));
        CHECK(std::string(e.what()).find("read the test input") != std::string::npos);
    }
}

TEST_CASE("line_reader refuses a buffer of no size") {
    CHECK_THROWS_AS(line_reader(0, padding, "read", 0), std::invalid_argument);
}
