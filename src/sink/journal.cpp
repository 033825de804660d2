#include <sluice/sink/journal.hpp>

#include <sluice/error.hpp>

#include "detail/line_reader.hpp"
#include "sink/atomic_file.hpp"
#include "sink/output_record.hpp"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <stdexcept>
#include <string>

namespace sluice {
namespace {

namespace sj = simdjson;

using detail::fail_io;
using detail::file_handle;
using detail::replacement_file;
using detail::resolve;
using detail::sync_file;

// How every record sluice writes begins: an unfinished last line is only cut when it could be
// the start of one, so a foreign file that merely lacks its final newline is never shortened.
constexpr std::string_view record_start = "{\"id\":";

// An unfinished last line is cut only when it can be what a killed writer leaves: the start
// of a record, or the zeros a machine crash can leave where data was never written.
bool looks_unfinished(std::string_view tail) noexcept {
    if (tail.find_first_not_of('\0') == std::string_view::npos)
        return true;
    const std::size_t n = std::min(tail.size(), record_start.size());
    return tail.substr(0, n) == record_start.substr(0, n);
}

std::runtime_error not_ours(const std::string& path, std::uint64_t line, const std::string& why) {
    return std::runtime_error(path + ":" + std::to_string(line) + ": not a sluice output record (" +
                              why +
                              "); the file was not written by sluice or was edited, so it is "
                              "left unchanged: choose another output file");
}

struct file_state {
    std::optional<std::string> real_path; // nullopt: missing
    struct stat st {};
};

file_state inspect(const std::string& path) {
    file_state s;
    s.real_path = resolve(path);
    if (s.real_path && ::stat(s.real_path->c_str(), &s.st) != 0) {
        if (errno != ENOENT)
            fail_io("stat ", path);
        s.real_path.reset();
    }
    return s;
}

// Makes an error file with no kept error records empty, as the output says it should be.
bool empty_error_file(const file_state& errors) {
    if (!errors.real_path || !S_ISREG(errors.st.st_mode) || errors.st.st_size == 0)
        return false;
    replacement_file empty(*errors.real_path, errors.st.st_mode & 07777);
    empty.commit();
    return true;
}

} // namespace

journal_recovery recover_journal(const std::string& output_path,
                                 const journal_options& options,
                                 const final_id_handler& on_final_id,
                                 const final_line_handler& on_final_line) {
    journal_recovery rec;
    const file_state output = inspect(output_path);
    std::optional<file_state> errors;
    if (!options.errors_path.empty() && !options.read_only) {
        errors = inspect(options.errors_path);
        if (options.errors_path == output_path ||
            (output.real_path && errors->real_path && output.st.st_dev == errors->st.st_dev &&
             output.st.st_ino == errors->st.st_ino))
            throw std::invalid_argument("the error file " + options.errors_path +
                                        " is the output file " + output_path);
        if (errors->real_path && !S_ISREG(errors->st.st_mode))
            errors.reset(); // a stream (a pipe, /dev/stderr) cannot be rebuilt, only appended to
    }
    if (output.real_path && !S_ISREG(output.st.st_mode))
        return rec; // a pipe or a device holds no records to resume from
    if (!output.real_path || output.st.st_size == 0) {
        if (errors)
            rec.errors_rewritten = empty_error_file(*errors);
        return rec;
    }

    const std::string& target = *output.real_path;
    file_handle in(::open(target.c_str(), (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
    if (in.get() < 0)
        fail_io("cannot open output ", output_path);

    detail::line_reader reader(in.get(), sj::SIMDJSON_PADDING, "read output");
    sj::dom::parser parser;
    std::optional<replacement_file> compacted; // created at the first record removed
    std::optional<replacement_file> kept_errors;
    detail::output_record_fields f;
    std::string why;
    std::string_view line;
    std::string_view tail; // an unfinished last line, behind the last newline
    std::uint64_t tail_offset = 0;
    std::uint64_t number = 0;
    while (reader.next(line)) {
        if (!reader.newline_ended()) {
            tail = line;
            tail_offset = reader.line_offset();
            break;
        }
        ++number;
        if (!detail::read_output_record(parser, line, f, why))
            throw not_ours(output_path, number, why);
        ++rec.records;
        const bool keep = !detail::is_unanswered(f, options.retry_failed);
        if (!keep) {
            ++rec.dropped;
        } else if (f.line) {
            ++rec.kept_bad_lines;
            if (on_final_line)
                on_final_line(*f.line);
        } else {
            ++(f.failed ? rec.kept_errors : rec.kept_successes);
            if (on_final_id)
                on_final_id(f.custom_id);
        }
        if (options.read_only)
            continue;
        if (!keep && !compacted) {
            compacted.emplace(target, output.st.st_mode & 07777);
            compacted->copy_prefix(in.get(), reader.line_offset(), output_path);
        } else if (keep && compacted) {
            compacted->append_line(line);
        }
        if (keep && f.failed && errors) {
            if (!kept_errors)
                kept_errors.emplace(errors->real_path.value_or(options.errors_path),
                                    errors->real_path
                                        ? std::optional<mode_t>(errors->st.st_mode & 07777)
                                        : std::nullopt);
            kept_errors->append_line(line);
        }
    }
    if (!tail.empty() && !looks_unfinished(tail))
        throw not_ours(output_path, number + 1, "an unfinished last line that no record begins");
    rec.torn_bytes = tail.size();
    if (options.read_only)
        return rec;

    // Every line was read and judged: only now is anything changed.
    if (compacted) {
        compacted->commit();
        rec.rewritten = true;
    } else {
        if (!tail.empty()) {
            if (::ftruncate(in.get(), static_cast<off_t>(tail_offset)) != 0)
                fail_io("truncate ", output_path);
            sync_file(in.get(), output_path);
        }
        replacement_file::remove_stale(target);
    }
    if (kept_errors) {
        kept_errors->commit();
        rec.errors_rewritten = true;
    } else if (errors) {
        rec.errors_rewritten = empty_error_file(*errors);
        replacement_file::remove_stale(errors->real_path.value_or(options.errors_path));
    }
    return rec;
}

} // namespace sluice
