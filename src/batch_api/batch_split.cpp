#include "batch_api/batch_split.hpp"

#include <sluice/sink/jsonl_writer.hpp>
#include <sluice/source/id_index.hpp>

#include "detail/json_string.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <set>
#include <system_error>

namespace sluice::detail {

std::string batch_line(std::string_view custom_id, std::string_view body, std::string_view url) {
    std::string line = R"({"custom_id":)";
    append_json_string(line, custom_id);
    line += R"(,"method":"POST","url":)";
    append_json_string(line, url);
    line += R"(,"body":)";
    line += body;
    line += '}';
    return line;
}

part_writer::part_writer(std::string dir, split_options opts, std::uint32_t first_index)
    : dir_(std::move(dir))
    , opts_(std::move(opts))
    , next_index_(first_index) {}

bool part_writer::add(std::string_view line) {
    const std::uint64_t size = line.size() + 1;
    if (size > opts_.max_bytes)
        return false;
    if (parts_.empty() || fd_.get() < 0 || parts_.back().lines >= opts_.max_requests ||
        parts_.back().bytes + size > opts_.max_bytes) {
        close_current();
        batch_part p;
        p.index = next_index_++;
        p.file = "part-" + std::to_string(p.index) + ".jsonl";
        const std::string path = dir_ + "/" + p.file;
        fd_ = file_handle(
            ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, private_file_mode));
        if (fd_.get() < 0)
            fail_io("create ", path);
        parts_.push_back(std::move(p));
    }
    buffer_.append(line);
    buffer_ += '\n';
    parts_.back().lines += 1;
    parts_.back().bytes += size;
    if (buffer_.size() >= (1u << 20)) {
        int err = 0;
        write_fully(fd_.get(), buffer_.data(), buffer_.size(), err);
        if (err)
            throw std::system_error(err, std::generic_category(), "write " + parts_.back().file);
        buffer_.clear();
    }
    return true;
}

void part_writer::close_current() {
    if (fd_.get() < 0)
        return;
    const std::string path = dir_ + "/" + parts_.back().file;
    int err = 0;
    write_fully(fd_.get(), buffer_.data(), buffer_.size(), err);
    if (err)
        throw std::system_error(err, std::generic_category(), "write " + path);
    buffer_.clear();
    sync_file(fd_.get(), path);
    fd_.close(path);
}

std::vector<batch_part> part_writer::finish() {
    close_current();
    return std::move(parts_);
}

split_result split_input(const std::string& input,
                         const std::string& dir,
                         const std::string& bad_lines_name,
                         const split_options& opts) {
    file_handle in(::open(input.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() < 0)
        fail_io("open ", input);
    const std::string bad_path = dir + "/" + bad_lines_name;
    file_handle bad_fd(
        ::open(bad_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, private_file_mode));
    if (bad_fd.get() < 0)
        fail_io("create ", bad_path);

    split_result r;
    {
        jsonl_reader reader(in.get(), opts.reader);
        jsonl_writer bad(bad_fd.get());
        part_writer parts(dir, opts, 1);
        std::set<id_hash> seen; // the provider refuses a file with a repeated custom_id
        input_record rec;
        while (reader.next(rec)) {
            ++r.lines;
            std::string why = rec.message;
            if (!rec.ec && !seen.insert(hash_custom_id(rec.request.custom_id)).second) {
                rec.ec = make_error_code(errc::duplicate_custom_id);
                why = "custom_id \"" + rec.request.custom_id + "\" repeats an earlier line's";
            }
            if (!rec.ec &&
                !parts.add(batch_line(rec.request.custom_id, rec.request.body, opts.url))) {
                rec.ec = make_error_code(errc::bad_input_line);
                why = "larger than a batch input file may be (--max-batch-bytes " +
                      std::to_string(opts.max_bytes) + ")";
            }
            if (rec.ec) {
                ++r.bad;
                bad.write(bad_line{rec.line_number, rec.request.custom_id, rec.ec, why});
            }
        }
        r.parts = parts.finish();
        bad.sync();
    }
    bad_fd.close(bad_path);
    return r;
}

} // namespace sluice::detail
