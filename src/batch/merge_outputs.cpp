#include <sluice/batch/merge_outputs.hpp>

#include <sluice/batch/input_files.hpp>
#include <sluice/source/id_index.hpp>

#include "detail/line_reader.hpp"
#include "sink/atomic_file.hpp"
#include "sink/output_record.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <stdexcept>

namespace sluice {
namespace {

// One distinct custom_id of the input: 24 bytes, whatever the id's length.
struct id_entry {
    id_hash hash;
    std::uint32_t expected = 0; // input lines with this id
    std::uint32_t seen = 0;     // final records found for it
};
static_assert(sizeof(id_entry) == 24);

class id_table {
public:
    void add(std::string_view id) { hashes_.push_back(hash_custom_id(id)); }

    // Sorts the hashes added and counts the lines of each.
    void finish() {
        std::sort(hashes_.begin(), hashes_.end());
        for (const id_hash& h : hashes_) {
            if (entries_.empty() || entries_.back().hash != h)
                entries_.push_back({h, 0, 0});
            ++entries_.back().expected;
        }
        hashes_ = {};
        entries_.shrink_to_fit();
    }

    id_entry* find(std::string_view id) {
        const id_hash h = hash_custom_id(id);
        auto it = std::lower_bound(entries_.begin(),
                                   entries_.end(),
                                   h,
                                   [](const id_entry& e, const id_hash& k) { return e.hash < k; });
        return it != entries_.end() && it->hash == h ? &*it : nullptr;
    }

    std::uint64_t missing() const {
        std::uint64_t n = 0;
        for (const id_entry& e : entries_)
            n += e.seen < e.expected ? e.expected - e.seen : 0;
        return n;
    }

private:
    std::vector<id_hash> hashes_; // while the input is read
    std::vector<id_entry> entries_;
};

void note(merge_id_list& list, std::string_view id, std::size_t max_listed) {
    ++list.count;
    if (list.first.size() < max_listed)
        list.first.emplace_back(id);
}

bool same_file(const std::string& a, const std::string& b) {
    if (a == b)
        return true;
    std::error_code ec;
    return std::filesystem::equivalent(a, b, ec);
}

// Copies one shard output's final records into `out` (when it is still worth writing) and
// counts every record against the input's ids.
void merge_one(const std::string& path,
               id_table& ids,
               detail::replacement_file& out,
               merge_report& report,
               const merge_options& options) {
    fd_guard guard;
    const int fd = guard.add(open_input(path));
    detail::line_reader lines(fd, simdjson::SIMDJSON_PADDING, "read " + path);
    simdjson::dom::parser parser;
    detail::output_record_fields f;
    std::string why;
    std::string_view line;
    std::uint64_t number = 0;
    while (lines.next(line)) {
        ++number;
        const std::string where = path + ":" + std::to_string(number);
        if (!lines.newline_ended())
            throw std::runtime_error(where +
                                     ": the file ends in an unfinished record (the run writing "
                                     "it was stopped mid-line); resume that shard with the same "
                                     "sluice run command, then merge again");
        if (!detail::read_output_record(parser, line, f, why))
            throw std::runtime_error(where + ": not a sluice output record (" + why + ")");
        ++report.records;
        id_entry* e = ids.find(f.custom_id);
        if (!e) {
            note(report.unknown, f.custom_id, options.max_listed);
            continue;
        }
        // Not an answer: the line is still to be sent, and the record is not merged.
        if (detail::is_unanswered(f, false)) {
            note(report.unanswered, f.custom_id, options.max_listed);
            continue;
        }
        if (e->seen >= e->expected) {
            note(report.duplicated, f.custom_id, options.max_listed);
            continue;
        }
        ++e->seen;
        if (report.unknown.count == 0 && report.duplicated.count == 0)
            out.append_line(line);
    }
}

// The second read of the input, naming each line whose id has fewer records than lines.
// Merging needs each input line's id, not its request.
reader_options ids_only() {
    reader_options o;
    o.ids_only = true;
    return o;
}

void list_missing(const std::string& input,
                  id_table& ids,
                  merge_id_list& missing,
                  std::size_t max_listed) {
    if (!readable_twice(input) || max_listed == 0)
        return;
    for_each_record(input, ids_only(), [&](input_record& rec) {
        if (missing.first.size() >= max_listed)
            return;
        id_entry* e = ids.find(rec.request.custom_id);
        if (e && e->seen < e->expected) {
            ++e->seen; // each missing line once
            missing.first.push_back(rec.request.custom_id);
        }
    });
}

} // namespace

merge_report merge_outputs(const std::vector<std::string>& shard_outputs,
                           const std::string& input,
                           const std::string& output,
                           const merge_options& options) {
    if (output.empty() || output == "-")
        throw std::invalid_argument("merge: the merged output must be a file");
    if (same_file(output, input))
        throw std::invalid_argument("merge: the merged output " + output + " is the input");
    for (const std::string& shard : shard_outputs)
        if (same_file(output, shard))
            throw std::invalid_argument("merge: the merged output " + output +
                                        " is one of the shard outputs");

    merge_report report;
    id_table ids;
    // Every line of the input, bad ones too: each has a record, under the id the run gives it.
    for_each_record(input, ids_only(), [&](input_record& rec) {
        ++report.input_lines;
        ids.add(rec.request.custom_id);
    });
    ids.finish();

    const std::optional<std::string> real = detail::resolve(output);
    std::optional<mode_t> mode;
    struct stat st {};
    if (real && ::stat(real->c_str(), &st) == 0)
        mode = st.st_mode & 07777;
    detail::replacement_file out(real.value_or(output), mode);
    for (const std::string& shard : shard_outputs)
        merge_one(shard, ids, out, report, options);

    report.missing.count = ids.missing();
    if (report.missing.count > 0)
        list_missing(input, ids, report.missing, options.max_listed);
    if (report.complete()) {
        out.commit();
        report.written = true;
    }
    return report;
}

} // namespace sluice
