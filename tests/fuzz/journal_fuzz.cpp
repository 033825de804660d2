// Journal recovery (src/sink/journal.cpp: resuming a job from its existing output file) on
// arbitrary file contents. A read-only pass and the real one agree on every count and on the
// final records they report; a refused file (not sluice's) is left byte for byte as it was;
// after recovery the file holds only complete lines, and recovering it again changes nothing
// and reports the same records.
#include "fuzz_support.hpp"

#include <sluice/sink/journal.hpp>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

using namespace sluice;

namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const std::string& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

struct pass {
    bool refused = false;
    journal_recovery r;
    std::vector<std::string> ids;
    std::vector<std::uint64_t> lines;
};

pass recover(const std::string& path, const journal_options& options) {
    pass p;
    try {
        p.r = recover_journal(
            path,
            options,
            [&](std::string_view id) { p.ids.emplace_back(id); },
            [&](std::uint64_t line) { p.lines.push_back(line); });
    } catch (const std::runtime_error&) {
        p.refused = true; // a foreign file; I/O errors (std::system_error) are not expected
        p.ids.clear();
        p.lines.clear();
    }
    return p;
}

bool same_counts(const journal_recovery& a, const journal_recovery& b) {
    return a.records == b.records && a.kept_successes == b.kept_successes &&
           a.kept_errors == b.kept_errors && a.kept_bad_lines == b.kept_bad_lines &&
           a.dropped == b.dropped && a.torn_bytes == b.torn_bytes;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in = fuzz::as_view(data, size);
    journal_options options;
    bool with_errors_file = false;
    if (!in.empty()) { // the first byte picks the options
        options.retry_failed = in[0] & 1;
        with_errors_file = in[0] & 2;
        in.remove_prefix(1);
    }
    const std::string output = (fuzz::scratch_dir() / "out.jsonl").string();
    const std::string errors = (fuzz::scratch_dir() / "errors.jsonl").string();
    write_all(output, in);
    write_all(errors, "stale\n");
    if (with_errors_file)
        options.errors_path = errors;

    journal_options look = options;
    look.read_only = true;
    const pass first = recover(output, look);
    SLUICE_FUZZ_CHECK(read_all(output) == in); // read-only changes nothing
    SLUICE_FUZZ_CHECK(read_all(errors) == "stale\n");

    const pass real = recover(output, options);
    SLUICE_FUZZ_CHECK(real.refused == first.refused);
    if (real.refused) {
        SLUICE_FUZZ_CHECK(read_all(output) == in);
        SLUICE_FUZZ_CHECK(read_all(errors) == "stale\n");
        return 0;
    }
    SLUICE_FUZZ_CHECK(same_counts(first.r, real.r));
    SLUICE_FUZZ_CHECK(first.ids == real.ids && first.lines == real.lines);
    const journal_recovery& r = real.r;
    SLUICE_FUZZ_CHECK(r.kept_successes + r.kept_errors + r.kept_bad_lines + r.dropped == r.records);
    SLUICE_FUZZ_CHECK(real.ids.size() + real.lines.size() ==
                      r.kept_successes + r.kept_errors + r.kept_bad_lines);

    const std::string after = read_all(output);
    SLUICE_FUZZ_CHECK(after.empty() || after.back() == '\n');
    SLUICE_FUZZ_CHECK(after.size() <= in.size());
    // Only kept records are left: recovering again is a no-op with the same answer.
    const pass again = recover(output, options);
    SLUICE_FUZZ_CHECK(!again.refused);
    SLUICE_FUZZ_CHECK(again.r.dropped == 0 && again.r.torn_bytes == 0 && !again.r.rewritten);
    SLUICE_FUZZ_CHECK(again.ids == real.ids && again.lines == real.lines);
    SLUICE_FUZZ_CHECK(read_all(output) == after);
    return 0;
}
