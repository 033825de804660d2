// Reading input lines: sluice's jsonl_reader (every line checked as JSON, its fields taken and
// its token estimate made, as `sluice run` reads them) against simdjson's DOM parser on the same
// lines, which only validates and builds its tape: the floor a reader that checks every line
// could reach. The reader is timed in `sluice run`'s passes: the first reads ids only, without
// checking lines (reader_options::unchecked_ids); the second takes the requests. The first
// pass as it was, checking each line for its verdict and id (ids_only), is timed beside them.
// The checked readings answer which lines are JSON, compared with the DOM parser's answer, and
// the unchecked one must give every good line its id; all is compared before anything is
// timed. Prints ns per line and MB/s for each, and the ratios.
//
// usage: reader_bench [LINES [--once]]   (default 20000 lines of each shape)
// --once: each contender reads the lines once, untimed (for a profile under callgrind).
#include <sluice/source/jsonl_reader.hpp>

#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

// The shapes a batch job meets: the Batch API line of the end-to-end benchmark, a longer
// conversation, a bare chat body and a bare prompt; every tenth line of the mix is not JSON.
std::string make_lines(std::size_t count, bool with_bad) {
    std::string text;
    for (std::size_t i = 0; i < count; ++i) {
        const std::string n = std::to_string(i);
        switch (i % 4) {
        case 0:
            text +=
                R"({"custom_id":"r)" + n +
                R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to line )" +
                n + R"("}],"max_tokens":16}})";
            break;
        case 1:
            text +=
                R"({"custom_id":"conv-)" + n +
                R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","temperature":0.2,"messages":[{"role":"system","content":"You are a careful assistant. Answer in one short paragraph and cite nothing you cannot check."},{"role":"user","content":"Summarise the following text:\n\nThe quick brown fox jumps over the lazy dog. \u00c9t\u00e9 \u2014 caf\u00e9 na\u00efve. )" +
                n +
                R"("},{"role":"assistant","content":"A fox jumps over a dog."},{"role":"user","content":[{"type":"text","text":"And in French?"}]}],"max_completion_tokens":256,"n":1}})";
            break;
        case 2:
            text +=
                R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Chat body line )" +
                n + R"("}],"stream":false})";
            break;
        default:
            text += R"({"custom_id":"p)" + n + R"(","prompt":"Write a haiku about the number )" +
                    n + R"("})";
        }
        if (with_bad && i % 10 == 9)
            text += R"(,"extra")"; // trailing content: not JSON
        text += '\n';
    }
    return text;
}

int file_with(const std::string& text) {
    char path[] = "/tmp/reader_bench.XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        close(fd);
        return -1;
    }
    return fd;
}

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t end = text.find('\n', at);
        lines.push_back(text.substr(at, end - at));
        lines.back().reserve(lines.back().size() + simdjson::SIMDJSON_PADDING);
        at = end + 1;
    }
    return lines;
}

enum class pass { run, ids_only, unchecked };

// sluice's reader over the whole file as `p` says; the verdict and id of each line in `out`.
void read_all(int fd, pass p, std::vector<std::pair<bool, std::string>>* out = nullptr) {
    lseek(fd, 0, SEEK_SET);
    sluice::reader_options opts;
    opts.model = "gpt-4o-mini";
    opts.ids_only = p == pass::ids_only;
    opts.unchecked_ids = p == pass::unchecked;
    if (p == pass::run)
        opts.estimate = sluice::estimate_options{};
    sluice::jsonl_reader reader(fd, opts);
    sluice::input_record record;
    while (reader.next(record))
        if (out)
            out->emplace_back(!record.ec, record.request.custom_id);
}

void dom_all(simdjson::dom::parser& parser,
             const std::vector<std::string>& lines,
             std::vector<bool>* ok) {
    for (const auto& line : lines) {
        simdjson::dom::element root;
        const bool good =
            !parser.parse(line.data(), line.size(), false).get(root) && root.is_object();
        if (ok)
            ok->push_back(good);
    }
}

struct timing {
    double ns_per_line = 0;
    double mb_per_s = 0;
};

template <class F>
timing time_it(F&& pass, std::size_t lines, std::size_t bytes) {
    using clock = std::chrono::steady_clock;
    std::size_t rounds = 0;
    const auto start = clock::now();
    while (clock::now() - start < std::chrono::milliseconds(1500) && rounds < 1000) {
        pass();
        ++rounds;
    }
    const double ns = std::chrono::duration<double, std::nano>(clock::now() - start).count();
    return {ns / static_cast<double>(rounds * lines),
            static_cast<double>(rounds * bytes) * 1e3 / ns};
}

} // namespace

int main(int argc, char** argv) {
    const std::size_t per_shape = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
    const std::string text = make_lines(per_shape * 4, true);
    const int fd = file_with(text);
    if (fd < 0) {
        std::perror("reader_bench: temporary file");
        return 1;
    }
    const std::vector<std::string> lines = split(text);
    simdjson::dom::parser dom;

    std::vector<std::pair<bool, std::string>> ours, ids, unchecked;
    std::vector<bool> theirs;
    read_all(fd, pass::run, &ours);
    read_all(fd, pass::ids_only, &ids);
    read_all(fd, pass::unchecked, &unchecked);
    dom_all(dom, lines, &theirs);
    bool agree = ours == ids && ours.size() == theirs.size() && unchecked.size() == ours.size();
    for (std::size_t i = 0; agree && i < ours.size(); ++i)
        agree = ours[i].first == theirs[i] && (!ours[i].first || unchecked[i] == ours[i]);
    if (!agree) {
        std::printf("the readings disagree on which lines are JSON, or on a good line's id\n");
        return 1;
    }

    if (argc > 2 && std::string(argv[2]) == "--once") {
        read_all(fd, pass::run);
        read_all(fd, pass::ids_only);
        read_all(fd, pass::unchecked);
        dom_all(dom, lines, nullptr);
        close(fd);
        return 0;
    }
    const timing t_reader = time_it([&] { read_all(fd, pass::run); }, lines.size(), text.size());
    const timing t_ids = time_it([&] { read_all(fd, pass::ids_only); }, lines.size(), text.size());
    const timing t_unchecked =
        time_it([&] { read_all(fd, pass::unchecked); }, lines.size(), text.size());
    const timing t_dom = time_it([&] { dom_all(dom, lines, nullptr); }, lines.size(), text.size());
    std::printf("%zu lines (%zu bytes, 10%% not JSON), verdicts checked equal\n",
                lines.size(),
                text.size());
    std::printf("%-40s %10s %10s\n", "contender", "ns/line", "MB/s");
    std::printf("%-40s %10.0f %10.0f\n",
                "sluice jsonl_reader (fields, estimate)",
                t_reader.ns_per_line,
                t_reader.mb_per_s);
    std::printf("%-40s %10.0f %10.0f\n",
                "sluice jsonl_reader, ids only",
                t_ids.ns_per_line,
                t_ids.mb_per_s);
    std::printf("%-40s %10.0f %10.0f\n",
                "sluice jsonl_reader, unchecked ids",
                t_unchecked.ns_per_line,
                t_unchecked.mb_per_s);
    std::printf("%-40s %10.0f %10.0f\n",
                "simdjson DOM parse (validation only)",
                t_dom.ns_per_line,
                t_dom.mb_per_s);
    std::printf("reader / DOM = %.2fx, ids only / DOM = %.2fx, unchecked ids / DOM = %.2fx\n",
                t_reader.ns_per_line / t_dom.ns_per_line,
                t_ids.ns_per_line / t_dom.ns_per_line,
                t_unchecked.ns_per_line / t_dom.ns_per_line);
    close(fd);
    return 0;
}
