#include <sluice/parse/sse_parser.hpp>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace sluice {

namespace {

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

// The first CR or LF in [p, end), or end. A LF is found by memchr over the rest, a CR only
// within the line that LF ends: streams rarely carry CRs, and two memchr passes are many
// times faster than testing each byte for either.
const char* find_line_end(const char* p, const char* end) noexcept {
    const auto* lf =
        static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    const char* stop = lf ? lf : end;
    const auto* cr =
        static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(stop - p)));
    return cr ? cr : stop;
}

std::string_view drop_one_space(std::string_view value) noexcept {
    if (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
    return value;
}

} // namespace

void sse_parser_options::validate() const {
    if (max_event_bytes == 0)
        throw std::invalid_argument("sse_parser_options.max_event_bytes: must be at least 1");
}

sse_parser::sse_parser(const sse_parser_options& opts)
    : opts_(opts) {
    opts_.validate();
}

std::size_t sse_parser::put(std::string_view bytes, error_code& ec) {
    ec = failed_;
    release_event();
    if (failed_)
        return 0;
    const char* const begin = bytes.data();
    const char* const end = begin + bytes.size();
    const char* p = begin;
    if (!bom_done_)
        p += skip_bom(bytes);
    if (skip_lf_ && p < end) {
        skip_lf_ = false;
        if (*p == '\n')
            ++p;
    }
    if (const char* next = take_whole_event(p, end))
        return static_cast<std::size_t>(next - begin);
    while (p < end) {
        const char* eol = find_line_end(p, end);
        if (eol == end) {
            // A line not ended yet: keep it, within the bound on one event.
            if (data_size() + line_.size() + static_cast<std::size_t>(end - p) >
                opts_.max_event_bytes) {
                fail(ec);
                return static_cast<std::size_t>(p - begin);
            }
            line_.append(p, end);
            p = end;
            break;
        }
        const bool borrowed = line_.empty();
        if (!borrowed)
            line_.append(p, eol);
        const std::string_view line =
            borrowed ? std::string_view(p, static_cast<std::size_t>(eol - p)) : line_;
        p = eol + 1;
        if (*eol == '\r') {
            if (p == end)
                skip_lf_ = true;
            else if (*p == '\n')
                ++p;
        }
        const bool dispatched = take_line(line, borrowed, ec);
        if (!borrowed)
            line_.clear();
        if (ec || dispatched)
            break;
    }
    if (!has_event_)
        keep_borrowed_data();
    return static_cast<std::size_t>(p - begin);
}

// Nearly every event of a completion stream is one line, "data: {...}\n\n", lying whole in
// the bytes of one read: when no event is being read, such an event is handed out straight
// from those bytes, without the line-by-line walk (which gives the same event: the tests feed
// streams both ways). Returns where the bytes after it start, or null when the bytes at `p`
// are anything else (another field, a CR, a partial line, an event too large).
const char* sse_parser::take_whole_event(const char* p, const char* end) noexcept {
    if (data_lines_ != 0 || !line_.empty() || !type_.empty() || !bom_done_ || end - p < 7 ||
        std::memcmp(p, "data:", 5) != 0)
        return nullptr;
    const auto* lf =
        static_cast<const char*>(std::memchr(p + 5, '\n', static_cast<std::size_t>(end - p - 5)));
    if (!lf || end - lf < 2 || lf[1] != '\n')
        return nullptr;
    const auto line_size = static_cast<std::size_t>(lf - p);
    if (line_size > opts_.max_event_bytes || std::memchr(p, '\r', line_size))
        return nullptr;
    event_.data = drop_one_space(std::string_view(p + 5, line_size - 5));
    event_.type = "message";
    event_.last_event_id = last_id_;
    event_.done = event_.data == "[DONE]";
    has_event_ = true;
    return lf + 2;
}

void sse_parser::release_event() noexcept {
    if (!has_event_)
        return;
    // The event handed out by the last put is released now: its buffers are free again.
    has_event_ = false;
    event_ = sse_event{};
    data_.clear();
    type_.clear();
}

error_code sse_parser::finish() const noexcept {
    if (failed_)
        return failed_;
    const bool partial_line = !line_.empty() && line_.front() != ':';
    const bool partial_bom = !bom_done_ && bom_seen_ > 0;
    if (data_lines_ > 0 || partial_line || partial_bom)
        return errc::event_stream_truncated;
    return {};
}

void sse_parser::reset() noexcept {
    event_ = sse_event{};
    has_event_ = false;
    data_.clear();
    data_view_ = {};
    data_borrowed_ = false;
    data_lines_ = 0;
    type_.clear();
    line_.clear();
    last_id_.clear();
    retry_.reset();
    failed_ = {};
    bom_seen_ = 0;
    bom_done_ = false;
    skip_lf_ = false;
}

std::size_t sse_parser::skip_bom(std::string_view bytes) {
    std::size_t i = 0;
    while (bom_seen_ < utf8_bom.size() && i < bytes.size()) {
        if (bytes[i] != utf8_bom[bom_seen_]) {
            // Not a BOM after all: the bytes matched so far start the first line.
            line_.assign(utf8_bom.substr(0, bom_seen_));
            bom_done_ = true;
            return i;
        }
        ++bom_seen_;
        ++i;
    }
    bom_done_ = bom_seen_ == utf8_bom.size();
    return i;
}

bool sse_parser::take_line(std::string_view line, bool borrowed, error_code& ec) {
    if (data_size() + line.size() > opts_.max_event_bytes) {
        fail(ec);
        return false;
    }
    if (line.empty())
        return dispatch();
    if (line.front() == ':')
        return false; // a comment, such as a keep-alive
    // Nearly every line of a completion stream is a data line: read it without the search.
    if (line.size() >= 5 && std::memcmp(line.data(), "data:", 5) == 0) {
        take_data(drop_one_space(line.substr(5)), borrowed);
        return false;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos)
        take_field(line, {}, borrowed);
    else
        take_field(line.substr(0, colon), drop_one_space(line.substr(colon + 1)), borrowed);
    return false;
}

void sse_parser::take_field(std::string_view name, std::string_view value, bool borrowed) {
    if (name == "data") {
        take_data(value, borrowed);
    } else if (name == "event") {
        type_.assign(value);
    } else if (name == "id") {
        if (value.find('\0') == std::string_view::npos)
            last_id_.assign(value);
    } else if (name == "retry") {
        std::uint64_t ms = 0;
        const char* last = value.data() + value.size();
        // from_chars takes no sign or space for an unsigned type, so "digits only" is
        // whether it read everything; values that overflow are ignored as not numbers.
        const auto [ptr, err] = std::from_chars(value.data(), last, ms);
        if (!value.empty() && err == std::errc{} && ptr == last &&
            ms <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            retry_ = std::chrono::milliseconds(static_cast<std::int64_t>(ms));
    }
}

void sse_parser::take_data(std::string_view value, bool borrowed) {
    if (data_lines_ == 0) {
        if (borrowed) {
            data_view_ = value;
            data_borrowed_ = true;
        } else {
            data_.assign(value);
            data_borrowed_ = false;
        }
    } else {
        keep_borrowed_data();
        data_ += '\n';
        data_.append(value);
    }
    ++data_lines_;
}

bool sse_parser::dispatch() {
    if (data_lines_ == 0) {
        // No data: the rules drop the event, and its type with it.
        type_.clear();
        return false;
    }
    event_.data = data_borrowed_ ? data_view_ : std::string_view(data_);
    event_.type = type_.empty() ? std::string_view("message") : std::string_view(type_);
    event_.last_event_id = last_id_;
    event_.done = event_.data == "[DONE]";
    has_event_ = true;
    data_lines_ = 0;
    data_borrowed_ = false;
    data_view_ = {};
    return true;
}

void sse_parser::keep_borrowed_data() {
    if (data_lines_ > 0 && data_borrowed_) {
        data_.assign(data_view_);
        data_borrowed_ = false;
        data_view_ = {};
    }
}

std::size_t sse_parser::data_size() const noexcept {
    if (data_lines_ == 0)
        return 0;
    return data_borrowed_ ? data_view_.size() : data_.size();
}

void sse_parser::fail(error_code& ec) {
    failed_ = errc::event_too_large;
    ec = failed_;
}

} // namespace sluice
