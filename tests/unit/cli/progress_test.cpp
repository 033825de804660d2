#include "cli/progress.hpp"
#include "support/manual_clock.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

using namespace sluice;
using namespace sluice::cli;
using namespace std::chrono_literals;

namespace {

progress_sample sample(std::uint64_t done, std::optional<std::uint64_t> total = std::nullopt) {
    progress_sample s;
    s.done = done;
    s.total = total;
    s.tokens = done * 10;
    return s;
}

bool has_control_chars(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
}

std::size_t count_of(std::string_view s, std::string_view what) {
    std::size_t n = 0;
    for (auto at = s.find(what); at != std::string_view::npos; at = s.find(what, at + 1))
        ++n;
    return n;
}

// Every line of a plain-mode file, which must be newline-terminated.
std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t from = 0;
    for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', from)) {
        lines.push_back(text.substr(from, nl - from));
        from = nl + 1;
    }
    CHECK(from == text.size());
    return lines;
}

} // namespace

TEST_CASE("numbers are formatted to be read at a glance") {
    CHECK(format_count(0) == "0");
    CHECK(format_count(999) == "999");
    CHECK(format_count(1000) == "1,000");
    CHECK(format_count(1234567) == "1,234,567");
    CHECK(format_count(18446744073709551615ull) == "18,446,744,073,709,551,615");

    CHECK(format_rate(0) == "0.0");
    CHECK(format_rate(-3) == "0.0");
    CHECK(format_rate(12.34) == "12.3");
    CHECK(format_rate(999.9) == "999.9");
    CHECK(format_rate(999.96) == "1.0k");
    CHECK(format_rate(45'600) == "45.6k");
    CHECK(format_rate(2'500'000) == "2.5M");

    CHECK(format_hms(0s) == "0:00:00");
    CHECK(format_hms(349s) == "0:05:49");
    CHECK(format_hms(3h + 25min + 7s) == "3:25:07");
    CHECK(format_hms(100h) == "100:00:00");
}

TEST_CASE("rates are taken over the sliding window, not the whole run") {
    test::manual_clock clock;
    progress_meter meter(5s);

    // 100 lines/s for 10 s, then 300 lines/s; one sample a second.
    auto done_at = [](int t) {
        return t <= 10 ? 100u * t : 1000u + 300u * (t - 10);
    };
    meter.update(clock.now(), sample(0));
    CHECK_FALSE(meter.rates().requests_per_second); // one sample: no rate yet
    for (int t = 1; t <= 12; ++t) {
        clock.advance(1s);
        meter.update(clock.now(), sample(done_at(t)));
    }
    // At t = 12 the window [7, 12] holds 3 s at 100/s and 2 s at 300/s.
    REQUIRE(meter.rates().requests_per_second);
    CHECK(*meter.rates().requests_per_second == Approx(180.0));
    CHECK(*meter.rates().tokens_per_second == Approx(1800.0));

    std::string line;
    for (int t = 13; t <= 16; ++t) {
        clock.advance(1s);
        line = meter.update(clock.now(), sample(done_at(t)));
    }
    // At t = 16 the window holds only the new speed; a whole-run average would say 175.
    CHECK(*meter.rates().requests_per_second == Approx(300.0));
    CHECK(*meter.rates().tokens_per_second == Approx(3000.0));
    CHECK(line.find("300.0 req/s") != std::string::npos);
    CHECK(line.find("3.0k tok/s") != std::string::npos);
}

TEST_CASE("samples further apart than the window still give a rate over the last interval") {
    test::manual_clock clock;
    progress_meter meter(5s);
    meter.update(clock.now(), sample(0));
    clock.advance(10s);
    meter.update(clock.now(), sample(500));
    CHECK(*meter.rates().requests_per_second == Approx(50.0));
    clock.advance(10s);
    meter.update(clock.now(), sample(700));
    CHECK(*meter.rates().requests_per_second == Approx(20.0));
}

TEST_CASE("a stalled run's rate falls to zero") {
    test::manual_clock clock;
    progress_meter meter(5s);
    meter.update(clock.now(), sample(0, 1000));
    clock.advance(1s);
    meter.update(clock.now(), sample(100, 1000));
    for (int i = 0; i < 6; ++i) {
        clock.advance(1s);
        meter.update(clock.now(), sample(100, 1000));
    }
    const std::string line = meter.update(clock.now(), sample(100, 1000));
    CHECK(*meter.rates().requests_per_second == 0.0);
    CHECK(line.find("0.0 req/s") != std::string::npos);
    CHECK(line.find("ETA -:--:--") != std::string::npos);
}

TEST_CASE("ETA is what remains over the current rate, as h:mm:ss") {
    test::manual_clock clock;
    progress_meter meter(5s);
    meter.update(clock.now(), sample(0, 1000));
    clock.advance(4s);
    std::string line = meter.update(clock.now(), sample(400, 1000));
    // 600 left at 100/s.
    CHECK(line.rfind("400/1,000 (40.0%)  ETA 0:00:06  100.0 req/s  1.0k tok/s", 0) == 0);

    SECTION("hours") {
        clock.advance(1s);
        line = meter.update(clock.now(), sample(401, 1'000'000));
        // The window [0, 5] s: 401 lines in 5 s; 999,599 left at 80.2/s -> 12,463.8 s, rounded
        // up.
        CHECK(line.find("ETA 3:27:44") != std::string::npos);
    }
    SECTION("done: zero, not unknown") {
        clock.advance(1s);
        line = meter.update(clock.now(), sample(1000, 1000));
        CHECK(line.find("1,000/1,000 (100.0%)  ETA 0:00:00") == 0);
    }
    SECTION("the percentage never reads 100 before the end") {
        clock.advance(1s);
        line = meter.update(clock.now(), sample(999'999, 1'000'000));
        CHECK(line.find("(99.9%)") != std::string::npos);
    }
}

TEST_CASE("no ETA and no percentage when the total is unknown") {
    test::manual_clock clock;
    progress_meter meter;
    meter.update(clock.now(), sample(0));
    clock.advance(2s);
    progress_sample s = sample(12'000);
    s.failed = 1;
    s.rate_limited = 3;
    s.retries = 12;
    s.in_flight = 64;
    const std::string line = meter.update(clock.now(), s);
    CHECK(line ==
          "12,000 done  6.0k req/s  60.0k tok/s  1 failed  3 429s  12 retries  64 in flight");
    CHECK(line.find("ETA") == std::string::npos);
    CHECK(line.find('%') == std::string::npos);
}

TEST_CASE("the rate found from 429s shows beside them while a scope adapts") {
    test::manual_clock clock;
    progress_meter meter;
    meter.update(clock.now(), sample(0));
    clock.advance(2s);
    progress_sample s = sample(100);
    s.rate_limited = 64;
    s.adaptive_rpm = 2'949.6;
    CHECK(meter.update(clock.now(), s) == "100 done  50.0 req/s  500.0 tok/s  0 failed  64 429s "
                                          "(adaptive 2,950 rpm)  0 retries  0 in flight");
}

TEST_CASE("the first line shows unknown rates, not zero") {
    test::manual_clock clock;
    progress_meter meter;
    const std::string line = meter.update(clock.now(), sample(0, 50));
    CHECK(line.rfind("0/50 (0.0%)  ETA -:--:--  - req/s  - tok/s", 0) == 0);
}

TEST_CASE("skipped lines of a resumed run count towards the total, not the rate") {
    test::manual_clock clock;
    progress_meter meter(5s);
    progress_sample s = sample(0, 10'000);
    s.skipped = 4'000;
    meter.update(clock.now(), s);
    clock.advance(5s);
    s.done = 1'000;
    std::string line = meter.update(clock.now(), s);
    // 5,000 of 10,000 shown; 5,000 left at 200/s.
    CHECK(line.rfind("5,000/10,000 (50.0%, 4,000 skipped)  ETA 0:00:25  200.0 req/s", 0) == 0);

    progress_meter unknown;
    s.total.reset();
    line = unknown.update(clock.now(), s);
    CHECK(line.rfind("5,000 done (4,000 skipped)", 0) == 0);
}

TEST_CASE("sample_of takes the dispatcher's counters") {
    stats_snapshot st;
    st.succeeded = 10;
    st.failed = 2;
    st.in_flight = 5;
    st.retries = 7;
    st.rate_limited = 3;
    st.prompt_tokens = 100;
    st.completion_tokens = 50;
    st.scopes[""].adaptive_rpm = 1'000;
    st.scopes["gpt-4o"].adaptive_rpm = 500;
    const progress_sample s = sample_of(st);
    CHECK(s.adaptive_rpm == 1'500); // every adapting scope's
    CHECK(s.done == 12);
    CHECK(s.failed == 2);
    CHECK(s.in_flight == 5);
    CHECK(s.retries == 7);
    CHECK(s.rate_limited == 3);
    CHECK(s.tokens == 150);
    CHECK_FALSE(s.total);
    CHECK(s.skipped == 0);
}

TEST_CASE("the progress line names each endpoint out of service, and only those") {
    stats_snapshot st;
    st.endpoints["primary"].state = "closed";
    st.endpoints["backup"].state = "open";
    st.endpoints["azure"].state = "retired";
    const progress_sample s = sample_of(st);
    CHECK(s.endpoints_out == std::vector<std::string>{"azure retired", "backup open"});
    test::manual_clock clock;
    progress_meter meter;
    const std::string line = meter.update(clock.now(), s);
    CHECK(line.find("  endpoint azure retired  endpoint backup open") != std::string::npos);
    CHECK(line.find("primary") == std::string::npos);
    CHECK(sample_of(stats_snapshot{}).endpoints_out.empty());
}

TEST_CASE("the terminal line returns to column 0, clears the rest and fits the width") {
    const std::string text(200, 'x');
    for (std::size_t width : {1u, 2u, 40u, 80u, 199u, 200u, 300u}) {
        const std::string frame = tty_frame(text, width);
        REQUIRE(frame.size() >= 4);
        CHECK(frame.front() == '\r');
        CHECK(frame.substr(frame.size() - 3) == "\x1b[K");
        const std::string visible = frame.substr(1, frame.size() - 4);
        CHECK(visible.size() == std::min(width - 1, text.size()));
        CHECK(visible.find('\n') == std::string::npos);
    }
    CHECK(tty_frame("short", 80) == "\rshort\x1b[K");
    // Cut between fields, not inside one.
    CHECK(tty_frame("1 done  2 failed  3 in flight", 22) == "\r1 done  2 failed\x1b[K");
    CHECK(tty_frame("1 done  2 failed  3 in flight", 18) == "\r1 done  2 failed\x1b[K");
    CHECK(tty_frame("1 done  2 failed  3 in flight", 17) == "\r1 done  2 failed\x1b[K"); // exact
    CHECK(tty_frame("1 done  2 failed  3 in flight", 16) == "\r1 done\x1b[K");
    CHECK(tty_frame("1 done  2 failed", 5) == "\r1 do\x1b[K");
}

TEST_CASE("the plain line has no control characters but its newline") {
    test::manual_clock clock;
    progress_meter meter;
    meter.update(clock.now(), sample(0, 100));
    clock.advance(1s);
    const std::string text = meter.update(clock.now(), sample(10, 100));
    const std::string line = plain_frame("progress", text);
    REQUIRE(line.back() == '\n');
    CHECK_FALSE(has_control_chars(std::string_view(line).substr(0, line.size() - 1)));
    CHECK(line.rfind("progress: 10/100 (10.0%)  ETA 0:00:09", 0) == 0);
    CHECK(plain_frame("", "x") == "x\n");
}

TEST_CASE("progress options are validated") {
    progress_options o;
    CHECK_NOTHROW(o.validate());
    o.interval = 0ms;
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("interval"));
    o = {};
    o.window = -1ms;
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("window"));
    o = {};
    o.width = 0;
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("width"));
    CHECK_THROWS_AS(progress_meter(0s), std::invalid_argument);
}

TEST_CASE("plain mode writes a line every interval to a pipe, and stop() the final state") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    boost::asio::io_context ioc;
    std::uint64_t done = 0;
    progress_options o;
    o.interval = 50ms;
    o.label = "progress";
    progress_display display(
        ioc,
        [&] {
            done += 5;
            return sample(done, 1000);
        },
        fds[1],
        o);
    CHECK_FALSE(display.tty()); // detected: a pipe is not a terminal

    display.start();
    ioc.run_for(275ms);
    CHECK_FALSE(ioc.stopped()); // the armed timer keeps the loop busy until stop()
    done = 995;                 // the final sample adds 5
    display.stop();
    display.stop(); // a second stop writes nothing more
    // With the timer cancelled the loop runs out of work instead of timing out.
    ioc.restart();
    ioc.run_for(2s);
    CHECK(ioc.stopped());
    ::close(fds[1]);

    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);

    const auto lines = lines_of(out);
    // 275 ms at 50 ms: 5 ticks, give or take one on a loaded machine; plus the final line.
    CHECK(lines.size() >= 4);
    CHECK(lines.size() <= 7);
    for (const auto& line : lines) {
        CHECK_FALSE(has_control_chars(line));
        CHECK(line.rfind("progress: ", 0) == 0);
    }
    REQUIRE_FALSE(lines.empty());
    CHECK(lines.front().rfind("progress: 10/1,000 (1.0%)", 0) == 0); // start sampled 5
    CHECK(lines.back().rfind("progress: 1,000/1,000 (100.0%)  ETA 0:00:00", 0) == 0);
}

TEST_CASE("terminal mode redraws one line in place and stop() ends it") {
    test::temp_dir dir;
    const std::string path = dir.file("tty.out");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    boost::asio::io_context ioc;
    std::uint64_t done = 0;
    progress_options o;
    o.tty = true; // forced: the file is not a terminal
    o.width = 40;
    {
        progress_display display(
            ioc,
            [&] {
                progress_sample s = sample(++done, 1000);
                s.in_flight = 64;
                return s;
            },
            fd,
            o);
        REQUIRE(display.tty());
        display.start();
        ioc.run_for(350ms);
        display.clear();
        display.stop();
    }
    ioc.restart();
    ioc.run_for(2s);
    CHECK(ioc.stopped());
    ::close(fd);

    const std::string out = test::read_file(path);
    // Drawn at start, then every 100 ms for 350 ms: about 4 redraws, one clear, one final.
    const std::size_t redraws = count_of(out, "\r") - 1; // less the clear's
    CHECK(redraws >= 3);
    CHECK(redraws <= 6);
    CHECK(count_of(out, "\r\x1b[K") == 1); // the clear
    // One line: the only newline is the last byte, written by stop().
    REQUIRE(out.size() > 1);
    CHECK(out.back() == '\n');
    CHECK(out.find('\n') == out.size() - 1);
    // Each frame is "\r" + at most 39 columns + "\x1b[K".
    std::size_t from = 0;
    while ((from = out.find('\r', from)) != std::string::npos) {
        const std::size_t end = out.find("\x1b[K", from);
        REQUIRE(end != std::string::npos);
        CHECK(end - from - 1 <= 39);
        from = end;
    }
    CHECK(out.rfind(std::string("\r") + std::to_string(done) + "/1,000 (") != std::string::npos);
}

TEST_CASE("destroying a running terminal display ends its line without sampling") {
    test::temp_dir dir;
    const std::string path = dir.file("tty.out");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    boost::asio::io_context ioc;
    int samples = 0;
    progress_options o;
    o.tty = true;
    o.width = 80;
    {
        progress_display display(
            ioc,
            [&] {
                ++samples;
                return sample(1);
            },
            fd,
            o);
        display.start();
    }
    ioc.run_for(2s); // the cancelled handler runs and does nothing
    CHECK(ioc.stopped());
    ::close(fd);
    CHECK(samples == 1);
    const std::string out = test::read_file(path);
    CHECK(out.rfind("\r1 done", 0) == 0);
    CHECK(out.back() == '\n');
}
