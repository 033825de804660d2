#include <sluice/batch/input_files.hpp>

#include "sink/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace sluice {

int open_input(const std::string& path) {
    if (path == "-")
        return STDIN_FILENO;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "cannot open input " + path);
    return fd;
}

int open_output(const std::string& path, bool truncate) {
    if (path == "-")
        return STDOUT_FILENO;
    // Created owner-only (umask may take more away): the output holds prompts' answers. An
    // existing file keeps its mode, and is appended to: resuming never truncates it.
    const int fd = ::open(path.c_str(),
                          O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND),
                          detail::private_file_mode);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "cannot open output " + path);
    return fd;
}

bool readable_twice(const std::string& path) {
    struct stat st {};
    return path != "-" && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::uint64_t for_each_record(const std::string& path,
                              const reader_options& ropts,
                              const std::function<void(input_record&)>& each) {
    fd_guard guard;
    const int fd = guard.add(open_input(path));
    jsonl_reader reader(fd, ropts);
    input_record rec;
    std::uint64_t last = 0;
    while (reader.next(rec)) {
        last = rec.line_number;
        each(rec);
    }
    return last;
}

std::uint64_t scan_ids(const std::string& path, const reader_options& ropts, id_index& index) {
    std::uint64_t records = 0;
    reader_options ids = ropts;
    // The index needs each line's id, not its request, and not yet its verdict: the second
    // pass checks every line and tells the index of the bad ones (id_index's class comment).
    ids.unchecked_ids = true;
    const std::uint64_t last = for_each_record(path, ids, [&](input_record& rec) {
        ++records;
        if (!rec.ec)
            index.add_input(rec.line_number, rec.request.custom_id);
    });
    index.finish(last);
    return records;
}

namespace {

// The index's verdict for a good line of this pass.
line_verdict verdict_of(input_record& rec, id_index& index, bool streaming) {
    return streaming ? index.classify_streaming(rec.line_number, rec.request.custom_id)
                     : index.classify(rec.line_number, rec.request.custom_id);
}

} // namespace

void mark_repeat(input_record& rec, id_index& index, bool streaming) {
    if (rec.ec)
        index.classify_bad_line(rec.line_number, rec.first_pass_id);
    else if (verdict_of(rec, index, streaming) == line_verdict::duplicate)
        mark_duplicate(rec);
}

void mark_duplicate(input_record& rec) {
    rec.ec = errc::duplicate_custom_id;
    rec.message =
        "custom_id \"" + rec.request.custom_id + "\" was already used by an earlier line; not sent";
}

line_action decide_line(input_record& rec, id_index& index, bool streaming) {
    if (rec.ec)
        // A bad line's record already in the output is written once, not again.
        return index.classify_bad_line(rec.line_number, rec.first_pass_id)
                   ? line_action::skip
                   : line_action::record_error;
    switch (verdict_of(rec, index, streaming)) {
    case line_verdict::done:
        return line_action::skip;
    case line_verdict::duplicate:
        mark_duplicate(rec);
        return line_action::record_error;
    case line_verdict::send:
        break;
    }
    return line_action::send;
}

input_problems find_bad_lines(const std::string& path,
                              const reader_options& ropts,
                              id_index& index,
                              std::size_t keep) {
    input_problems found;
    reader_options ids = ropts;
    ids.ids_only = true; // verdicts and messages are all this reads
    for_each_record(path, ids, [&](input_record& rec) {
        mark_repeat(rec, index, false);
        if (!rec.ec)
            return;
        if (++found.bad <= keep)
            found.first.emplace_back(rec.line_number,
                                     rec.message.empty() ? rec.ec.message() : rec.message);
    });
    return found;
}

} // namespace sluice
