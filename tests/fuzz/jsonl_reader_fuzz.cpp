// The JSONL input reader (src/source/jsonl_reader.cpp) on arbitrary files: every line that is
// not blank yields exactly one record, numbered as the line; a good record's body is a valid
// JSON object (it is sent as written) and a bad one says why. simdjson's DOM parser is the
// oracle of what is JSON: the reader calls a line "not JSON" exactly when the DOM parser refuses
// it, and a body it takes by position (value_spans) is the whole object, which parses alone. A
// token cost the reader fills in is the one estimate_tokens gives. The unchecked first pass
// (reader_options::unchecked_ids) never calls a good line bad nor gives it another id, and
// what it takes a bad line for is what the checked reading says it took it for.
#include "fuzz_support.hpp"

#include <sluice/source/jsonl_reader.hpp>

#include <simdjson.h>

#include <sys/mman.h>
#include <unistd.h>

#include <vector>

using namespace sluice;

namespace {

struct content_line {
    std::uint64_t number;
    std::string_view text; // without the CR of a CRLF line
};

// The lines that are not blank (blank: only spaces, tabs and CRs), after the byte-order mark
// the reader takes off the first line.
std::vector<content_line> content_lines(std::string_view text) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF")
        text.remove_prefix(3);
    std::vector<content_line> out;
    std::uint64_t number = 0;
    while (!text.empty()) {
        ++number;
        const std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
            if (line.back() == '\r')
                line.remove_suffix(1);
            out.push_back({number, line});
        }
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);
    static const int fd = ::memfd_create("sluice-fuzz-jsonl", 0);
    SLUICE_FUZZ_CHECK(fd >= 0);
    SLUICE_FUZZ_CHECK(::ftruncate(fd, 0) == 0);
    SLUICE_FUZZ_CHECK(::pwrite(fd, in.data(), in.size(), 0) == static_cast<ssize_t>(in.size()));
    SLUICE_FUZZ_CHECK(::lseek(fd, 0, SEEK_SET) == 0);

    reader_options opts;
    if (!in.empty() && (in[0] & 1)) { // sometimes prompt lines have a default model
        opts.model = "gpt-4o-mini";
        opts.system = "Be brief.";
    }
    if (!in.empty() && (in[0] & 2)) { // sometimes the reader estimates the cost
        opts.estimate = estimate_options{};
        opts.estimate->default_max_tokens = 100;
    }
    jsonl_reader reader(fd, opts);
    static simdjson::dom::parser json;
    const std::vector<content_line> expected = content_lines(in);
    std::size_t n = 0;
    input_record record;
    std::vector<input_record> checked;
    while (reader.next(record)) {
        checked.push_back(record);
        SLUICE_FUZZ_CHECK(n < expected.size());
        SLUICE_FUZZ_CHECK(record.line_number == expected[n].number);
        const std::string_view line = expected[n].text;
        ++n;
        const bool dom_json = !json.parse(line.data(), line.size()).error();
        const bool said_not_json = record.message.rfind("not JSON", 0) == 0;
        SLUICE_FUZZ_CHECK(dom_json != said_not_json);
        SLUICE_FUZZ_CHECK(!record.request.custom_id.empty());
        if (record.ec) {
            SLUICE_FUZZ_CHECK(!record.message.empty());
            SLUICE_FUZZ_CHECK(!record.request.token_cost);
            continue;
        }
        // The body of a Batch API line is its first `body` member, exactly: the same value.
        std::string written;
        simdjson::dom::object root;
        if (!json.parse(line.data(), line.size()).get_object().get(root))
            for (const auto member : root)
                if (member.key == "body") {
                    if (member.value.is_object())
                        written = simdjson::minify(member.value);
                    break;
                }
        simdjson::dom::object body;
        SLUICE_FUZZ_CHECK(!json.parse(record.request.body).get_object().get(body));
        if (!written.empty())
            SLUICE_FUZZ_CHECK(simdjson::minify(body) == written);
        SLUICE_FUZZ_CHECK(record.request.token_cost.has_value() == opts.estimate.has_value());
        if (opts.estimate)
            SLUICE_FUZZ_CHECK(*record.request.token_cost ==
                              estimate_tokens(record.request.body, *opts.estimate).total());
    }
    SLUICE_FUZZ_CHECK(n == expected.size());

    SLUICE_FUZZ_CHECK(::lseek(fd, 0, SEEK_SET) == 0);
    reader_options unchecked_opts = opts;
    unchecked_opts.unchecked_ids = true;
    jsonl_reader unchecked(fd, unchecked_opts);
    std::size_t k = 0;
    while (unchecked.next(record)) {
        SLUICE_FUZZ_CHECK(k < checked.size());
        const input_record& c = checked[k++];
        SLUICE_FUZZ_CHECK(record.line_number == c.line_number);
        if (!c.ec) {
            SLUICE_FUZZ_CHECK(!record.ec);
            SLUICE_FUZZ_CHECK(record.request.custom_id == c.request.custom_id);
        } else if (!record.ec) {
            SLUICE_FUZZ_CHECK(record.request.custom_id == c.first_pass_id);
        } else {
            SLUICE_FUZZ_CHECK(record.message == c.message);
            SLUICE_FUZZ_CHECK(c.first_pass_id.empty());
        }
    }
    SLUICE_FUZZ_CHECK(k == checked.size());
    return 0;
}
