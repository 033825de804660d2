#include "batch_api/batch_collect.hpp"

#include <sluice/admission/retry_policy.hpp>
#include <sluice/error.hpp>
#include <sluice/sink/journal.hpp>

#include "detail/json_string.hpp"
#include "detail/line_reader.hpp"

#include <simdjson.h>

#include <fcntl.h>
#include <unistd.h>

#include <stdexcept>
#include <system_error>

namespace sluice::detail {

namespace sj = simdjson;

namespace {

constexpr std::size_t flush_bytes = 1 << 20;

file_handle open_read(const std::string& path) {
    file_handle fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0)
        fail_io("open ", path);
    return fd;
}

[[noreturn]] void foreign(const std::string& path, std::uint64_t n, const char* why) {
    throw std::runtime_error(path + ": line " + std::to_string(n) +
                             " is not a Batch API record: " + why);
}

} // namespace

merged_output::merged_output(std::string path)
    : path_(std::move(path)) {
    recover_journal(
        path_,
        journal_options{},
        [this](std::string_view id) { ids_.emplace(id); },
        [this](std::uint64_t line) { bad_lines_.insert(line); });
    fd_ = file_handle(
        ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, private_file_mode));
    if (fd_.get() < 0)
        fail_io("open ", path_);
}

bool merged_output::has_id(std::string_view custom_id) const {
    return ids_.count(std::string(custom_id)) > 0;
}

bool merged_output::has_bad_line(std::uint64_t line) const {
    return bad_lines_.count(line) > 0;
}

bool merged_output::append(std::string_view record, std::string_view custom_id) {
    if (!ids_.emplace(custom_id).second)
        return false;
    buffer_.append(record);
    buffer_ += '\n';
    if (buffer_.size() >= flush_bytes)
        flush();
    return true;
}

bool merged_output::append_bad_line(std::string_view record, std::uint64_t line) {
    if (!bad_lines_.insert(line).second)
        return false;
    buffer_.append(record);
    buffer_ += '\n';
    if (buffer_.size() >= flush_bytes)
        flush();
    return true;
}

void merged_output::flush() {
    int err = 0;
    write_fully(fd_.get(), buffer_.data(), buffer_.size(), err);
    if (err)
        throw std::system_error(err, std::generic_category(), "write " + path_);
    buffer_.clear();
}

void merged_output::sync() {
    flush();
    sync_file(fd_.get(), path_);
}

merge_counts merge_provider_file(const std::string& path, merged_output& out) {
    file_handle fd = open_read(path);
    line_reader lines(fd.get(), sj::SIMDJSON_PADDING, "read " + path);
    sj::dom::parser parser;
    merge_counts c;
    std::string_view text;
    std::uint64_t n = 0;
    std::string record;
    while (lines.next(text)) {
        ++n;
        if (text.empty())
            continue;
        sj::dom::object o;
        std::string_view id;
        if (parser.parse(text.data(), text.size(), false).get_object().get(o))
            foreign(path, n, "not a JSON object");
        if (o["custom_id"].get_string().get(id))
            foreign(path, n, "no custom_id");
        sj::dom::element response, error;
        if (o["response"].get(response) || o["error"].get(error))
            foreign(path, n, "no response or error");
        if (!error.is_null()) {
            std::string_view code;
            if (error["code"].get_string().get(code))
                code = {};
            if (code == "batch_expired" || code == "batch_cancelled") {
                ++c.unfinished;
                continue;
            }
        }
        std::uint64_t status = 0;
        if (error.is_null() &&
            (!response.is_object() || response["status_code"].get_uint64().get(status)))
            foreign(path, n, "neither an error nor a response with a status_code");
        if (out.has_id(id)) {
            ++c.duplicates;
            continue;
        }
        if (!error.is_null() || (status >= 200 && status < 300)) {
            out.append(text, id);
            ++c.written;
            continue;
        }
        // An error status in a record without `error`: set it as `sluice run` does.
        attempt_outcome outcome;
        outcome.status = static_cast<unsigned>(status);
        std::string_view message;
        if (response["body"]["error"]["message"].get_string().get(message))
            message = {};
        std::string_view provider_code;
        if (response["body"]["error"]["code"].get_string().get(provider_code))
            provider_code = {};
        outcome.provider_code = provider_code;
        outcome.provider_message = message;
        const error_code ec = classify(outcome);
        std::string_view record_id;
        if (o["id"].get_string().get(record_id))
            record_id = {};
        record = R"({"id":)";
        append_json_string(record, record_id);
        record += R"(,"custom_id":)";
        append_json_string(record, id);
        record += R"(,"response":)";
        record += sj::minify(response);
        record += R"(,"error":{"code":)";
        append_json_string(record, error_kind(ec));
        record += R"(,"message":)";
        append_json_string(
            record, message.empty() ? "HTTP " + std::to_string(status) : std::string(message));
        record += "}}";
        out.append(record, id);
        ++c.written;
    }
    return c;
}

std::uint64_t write_unfinished(const std::string& part_path,
                               const merged_output& out,
                               const std::string& unfinished_path) {
    file_handle in = open_read(part_path);
    line_reader lines(in.get(), sj::SIMDJSON_PADDING, "read " + part_path);
    sj::dom::parser parser;
    replacement_file dest(unfinished_path, std::nullopt);
    std::uint64_t count = 0;
    std::string_view text;
    while (lines.next(text)) {
        std::string_view id;
        if (text.empty() ||
            parser.parse(text.data(), text.size(), false)["custom_id"].get_string().get(id))
            continue; // sluice wrote the part: every line has one
        if (out.has_id(id))
            continue;
        dest.append_line(text);
        ++count;
    }
    dest.commit();
    return count;
}

std::uint64_t merge_bad_lines(const std::string& bad_lines_path, merged_output& out) {
    file_handle fd = open_read(bad_lines_path);
    line_reader lines(fd.get(), sj::SIMDJSON_PADDING, "read " + bad_lines_path);
    sj::dom::parser parser;
    std::uint64_t added = 0;
    std::string_view text;
    while (lines.next(text)) {
        std::uint64_t line = 0;
        if (text.empty() ||
            parser.parse(text.data(), text.size(), false)["line"].get_uint64().get(line))
            continue;
        added += out.append_bad_line(text, line) ? 1 : 0;
    }
    return added;
}

} // namespace sluice::detail
