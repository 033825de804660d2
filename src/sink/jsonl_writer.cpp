#include <sluice/sink/jsonl_writer.hpp>

#include "detail/json_string.hpp"
#include "detail/trim.hpp"
#include "sink/atomic_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>

namespace sluice {
namespace {

using detail::append_json_string;

// Embeds a response body. A body the parser found to be valid JSON goes in as written, minus
// surrounding whitespace; the line breaks a pretty-printing server puts between tokens become
// spaces so the record stays one line (inside valid JSON strings a raw CR or LF cannot occur).
// Anything else is quoted.
void append_body(std::string& out, std::string_view body, bool is_json) {
    const std::string_view trimmed = detail::trim(body, detail::json_blanks);
    if (trimmed.empty() || !is_json) {
        append_json_string(out, body);
        return;
    }
    const std::size_t at = out.size();
    out.append(trimmed);
    // memchr per line end: most bodies have none, and a byte-by-byte loop cost more than the
    // rest of the record.
    char* const begin = out.data() + at;
    char* const end = out.data() + out.size();
    for (const char c : {'\n', '\r'})
        for (char* p = begin;
             (p = static_cast<char*>(std::memchr(p, c, static_cast<std::size_t>(end - p)))) !=
             nullptr;)
            *p++ = ' ';
}

void append_error(std::string& out, std::string_view code, std::string_view message) {
    out += "{\"code\":";
    append_json_string(out, code);
    out += ",\"message\":";
    append_json_string(out, message);
    out += '}';
}

// A streamed answer's timings, from the transport's clock: time to first byte and to first
// token, the number of events that carried content, and the inter-token gaps' mean and max.
void append_stream_timings(std::string& out, const timings& t) {
    auto ms = [](std::chrono::nanoseconds d) {
        return static_cast<double>(d.count()) / 1e6;
    };
    const bool got_token = t.first_token != timings::time_point{};
    std::chrono::nanoseconds sum{0}, max{0};
    for (const auto gap : t.token_gaps) {
        sum += gap;
        max = std::max(max, gap);
    }
    const std::size_t gaps = t.token_gaps.size();
    char buf[256];
    std::snprintf(buf,
                  sizeof buf,
                  ",\"timings\":{\"ttfb_ms\":%.3f,\"ttft_ms\":%.3f,\"content_events\":%zu,"
                  "\"itl_mean_ms\":%.3f,\"itl_max_ms\":%.3f}",
                  ms(t.first_byte - t.sent),
                  got_token ? ms(t.first_token - t.sent) : 0.0,
                  got_token ? gaps + 1 : 0,
                  gaps ? ms(sum) / static_cast<double>(gaps) : 0.0,
                  ms(max));
    out += buf;
}

// Appends a record, or nothing at all if appending throws (no half record in the buffer).
template <class Append>
void append_whole(std::string& out, Append&& append) {
    const std::size_t size = out.size();
    try {
        append();
    } catch (...) {
        out.resize(size);
        throw;
    }
}

} // namespace

void append_output_record(std::string& out, const result& r, std::string_view record_id) {
    append_whole(out, [&] {
        out += "{\"id\":";
        append_json_string(out, record_id);
        out += ",\"custom_id\":";
        append_json_string(out, r.custom_id);
        out += ",\"response\":";
        if (r.status == 0) {
            out += "null";
        } else {
            out += "{\"status_code\":";
            out += std::to_string(r.status);
            out += ",\"request_id\":";
            append_json_string(out, r.request_id);
            out += ",\"body\":";
            append_body(out, r.body, r.completion.body_is_json);
            out += '}';
        }
        out += ",\"error\":";
        if (!r.ec)
            out += "null";
        else
            append_error(out, error_kind(r.ec), r.message.empty() ? r.ec.message() : r.message);
        if (r.streamed)
            append_stream_timings(out, r.times);
        out += "}\n";
    });
}

void append_input_error_record(std::string& out, const bad_line& bad, std::string_view record_id) {
    append_whole(out, [&] {
        const std::string line = std::to_string(bad.line_number);
        out += "{\"id\":";
        append_json_string(out, record_id);
        out += ",\"custom_id\":";
        append_json_string(out,
                           bad.custom_id.empty() ? "line-" + line : std::string(bad.custom_id));
        out += ",\"response\":null,\"error\":";
        const std::string why = bad.message.empty() ? bad.ec.message() : std::string(bad.message);
        // A repeated custom_id is its own kind: the line itself may be fine.
        const char* code =
            bad.ec == errc::duplicate_custom_id ? error_kind(bad.ec) : "invalid_input";
        append_error(out, code, "line " + line + ": " + why);
        out += ",\"line\":";
        out += line;
        out += "}\n";
    });
}

namespace {
constexpr char hex_digits[] = "0123456789abcdef";
} // namespace

jsonl_writer::jsonl_writer(int fd, std::size_t flush_bytes)
    : fd_(fd)
    , flush_bytes_(flush_bytes) {
    buffer_.reserve(std::min<std::size_t>(flush_bytes_, std::size_t{1} << 20) + 4096);
    std::random_device rd;
    const std::uint64_t prefix = (std::uint64_t{rd()} << 32) ^ rd();
    std::memcpy(id_head_, "batch_req_", 10);
    for (int k = 0; k < 16; ++k)
        id_head_[10 + k] = hex_digits[(prefix >> (60 - 4 * k)) & 0xF];
}

jsonl_writer::~jsonl_writer() {
    try {
        flush();
    } catch (...) {
        // Nothing to report to from a destructor; callers who care call flush() or sync().
    }
}

inline_string<48> jsonl_writer::next_record_id() const {
    // A random per-writer prefix keeps ids unique across runs appending to one file; the
    // record counter keeps them unique within the run. At most 10 + 16 + 16 characters.
    char id[48];
    std::memcpy(id, id_head_, sizeof id_head_);
    std::size_t n = sizeof id_head_;
    const std::uint64_t counter = records_;
    int width = 8;
    while (width < 16 && (counter >> (4 * width)) != 0)
        ++width;
    for (int k = width - 1; k >= 0; --k)
        id[n++] = hex_digits[(counter >> (4 * k)) & 0xF];
    inline_string<48> out;
    out.assign(id, n);
    return out;
}

void jsonl_writer::write(const result& r) {
    append_output_record(buffer_, r, next_record_id());
    written();
}

void jsonl_writer::write(const bad_line& bad) {
    append_input_error_record(buffer_, bad, next_record_id());
    written();
}

void jsonl_writer::write_line(std::string_view line) {
    buffer_ += line;
    written();
}

void jsonl_writer::written() {
    ++records_;
    if (buffer_.size() >= flush_bytes_)
        flush();
}

void jsonl_writer::flush() {
    int err = 0;
    const std::size_t done = detail::write_fully(fd_, buffer_.data(), buffer_.size(), err);
    if (err != 0) {
        buffer_.erase(0, done); // what reached the file must not be written twice on a retry
        throw std::system_error(err, std::generic_category(), "write output");
    }
    buffer_.clear();
    // One huge record must not pin a huge buffer for the rest of the run.
    if (buffer_.capacity() > (std::size_t{1} << 20) && buffer_.capacity() / 4 > flush_bytes_)
        std::string().swap(buffer_);
}

void jsonl_writer::sync() {
    flush();
    // Pipes and terminals cannot be synced; that is not a failure of the output.
    const int err = detail::fsync_retrying(fd_);
    if (err != 0 && err != EINVAL && err != EROFS)
        throw std::system_error(err, std::generic_category(), "fsync output");
}

} // namespace sluice
