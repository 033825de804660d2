#include <sluice/sink/journal.hpp>

#include <sluice/error.hpp>

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace sluice {
namespace {

namespace sj = simdjson;

// Large reads keep the system-call count low on big outputs; the buffer grows only for a line
// longer than it.
constexpr std::size_t initial_capacity = std::size_t{1} << 20;
constexpr std::size_t write_threshold = std::size_t{1} << 20;
constexpr std::string_view temp_suffix = ".sluice-tmp";
// How every record sluice writes begins: an unfinished last line is only cut when it could be
// the start of one, so a foreign file that merely lacks its final newline is never shortened.
constexpr std::string_view record_start = "{\"id\":";

// Takes the message in pieces so that errno is read before any allocation can change it.
[[noreturn]] void fail_io(std::string_view what, std::string_view name = {}) {
    const int err = errno;
    throw std::system_error(err, std::generic_category(), std::string(what) + std::string(name));
}

class file_handle {
public:
    file_handle() = default;
    explicit file_handle(int fd) noexcept
        : fd_(fd) {}
    ~file_handle() { reset(); }
    file_handle(file_handle&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)) {}
    file_handle& operator=(file_handle&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }

    int get() const noexcept { return fd_; }
    void reset() noexcept {
        if (fd_ >= 0)
            ::close(std::exchange(fd_, -1));
    }
    // A close that fails can be a write the file system never stored (NFS reports it here).
    void close(const std::string& name) {
        if (::close(std::exchange(fd_, -1)) != 0 && errno != EINTR)
            fail_io("close ", name);
    }

private:
    int fd_ = -1;
};

void write_all(int fd, const char* data, std::size_t size, const std::string& name) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail_io("write ", name);
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

void sync_file(int fd, const std::string& name) {
    while (::fsync(fd) != 0)
        if (errno != EINTR)
            fail_io("fsync ", name);
}

// A rename is durable only once the directory holding the new name is synced.
void sync_directory_of(const std::string& path) {
    const std::size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    const file_handle fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0)
        fail_io("open directory ", dir);
    while (::fsync(fd.get()) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EINVAL) // file systems that cannot sync a directory order renames anyway
            return;
        fail_io("fsync directory ", dir);
    }
}

// The file a path names, symlinks followed, so that replacing it keeps the user's link;
// nullopt when it does not exist.
std::optional<std::string> resolve(const std::string& path) {
    std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr), &std::free);
    if (!real) {
        if (errno == ENOENT)
            return std::nullopt;
        fail_io("cannot resolve ", path);
    }
    return std::string(real.get());
}

// The new content of `target`, written under a temporary name beside it and renamed over it
// by commit(): whoever opens `target` sees the old content or the new, never a mix, even
// across a crash. Removed again when not committed.
class replacement_file {
public:
    // `mode`: the permissions of the file being replaced; none for a new file (umask applies).
    replacement_file(std::string target, std::optional<mode_t> mode)
        : target_(std::move(target))
        , temp_(target_ + std::string(temp_suffix)) {
        fd_ = file_handle(
            ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode.value_or(0644)));
        if (fd_.get() < 0)
            fail_io("cannot create ", temp_);
        // A stale temporary file from an earlier crash keeps its own mode otherwise.
        if (mode && ::fchmod(fd_.get(), *mode) != 0)
            fail_io("chmod ", temp_);
    }
    ~replacement_file() {
        if (!committed_) {
            fd_.reset();
            ::unlink(temp_.c_str());
        }
    }
    replacement_file(const replacement_file&) = delete;
    replacement_file& operator=(const replacement_file&) = delete;

    void append(std::string_view bytes) {
        if (buffer_.size() + bytes.size() > write_threshold) {
            flush();
            if (bytes.size() >= write_threshold) // a huge record goes straight through
                return write_all(fd_.get(), bytes.data(), bytes.size(), temp_);
        }
        buffer_.append(bytes);
    }

    void append_line(std::string_view line) {
        append(line);
        append("\n");
    }

    // Copies the first `length` bytes of `from` (the file being replaced).
    void copy_prefix(int from, std::uint64_t length, const std::string& from_name) {
        flush();
        std::unique_ptr<char[]> chunk = std::make_unique<char[]>(write_threshold);
        for (std::uint64_t at = 0; at < length;) {
            const auto want =
                static_cast<std::size_t>(std::min<std::uint64_t>(write_threshold, length - at));
            const ssize_t n = ::pread(from, chunk.get(), want, static_cast<off_t>(at));
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                fail_io("read ", from_name);
            }
            if (n == 0)
                throw std::runtime_error(from_name + " shrank while being read");
            write_all(fd_.get(), chunk.get(), static_cast<std::size_t>(n), temp_);
            at += static_cast<std::uint64_t>(n);
        }
    }

    void commit() {
        flush();
        sync_file(fd_.get(), temp_);
        fd_.close(temp_);
        if (::rename(temp_.c_str(), target_.c_str()) != 0)
            fail_io("rename to ", target_);
        committed_ = true;
        sync_directory_of(target_);
    }

private:
    void flush() {
        write_all(fd_.get(), buffer_.data(), buffer_.size(), temp_);
        buffer_.clear();
    }

    std::string target_;
    std::string temp_;
    file_handle fd_;
    std::string buffer_;
    bool committed_ = false;
};

// Splits a file into lines in one buffer with simdjson's padding behind it, so every line can
// be parsed in place; memory is bounded by the longest line.
class line_reader {
public:
    explicit line_reader(int fd)
        : fd_(fd)
        , capacity_(initial_capacity)
        , buffer_(std::make_unique<char[]>(initial_capacity + sj::SIMDJSON_PADDING)) {}

    // The next line ended by '\n', without it; false when only an unfinished line (tail()) or
    // nothing is left.
    bool next(std::string_view& line) {
        for (;;) {
            const char* base = buffer_.get();
            if (const void* nl = std::memchr(base + scanned_, '\n', end_ - scanned_)) {
                const auto stop = static_cast<std::size_t>(static_cast<const char*>(nl) - base);
                line = std::string_view(base + begin_, stop - begin_);
                line_offset_ = base_offset_ + begin_;
                begin_ = scanned_ = stop + 1;
                return true;
            }
            scanned_ = end_;
            if (eof_)
                return false;
            read_more();
        }
    }

    // File offset of the line next() returned last.
    std::uint64_t line_offset() const noexcept { return line_offset_; }
    // After next() returned false: the bytes behind the last newline, and where they start.
    std::string_view tail() const noexcept {
        return std::string_view(buffer_.get() + begin_, end_ - begin_);
    }
    std::uint64_t tail_offset() const noexcept { return base_offset_ + begin_; }

private:
    void read_more() {
        if (begin_ > 0) {
            // Keep only the partial line: the buffer holds one line's worth, never the file.
            std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
            base_offset_ += begin_;
            end_ -= begin_;
            scanned_ -= begin_;
            begin_ = 0;
        }
        if (end_ == capacity_) {
            const std::size_t grown = capacity_ * 2;
            auto bigger = std::make_unique<char[]>(grown + sj::SIMDJSON_PADDING);
            std::memcpy(bigger.get(), buffer_.get(), end_);
            buffer_ = std::move(bigger);
            capacity_ = grown;
        }
        for (;;) {
            const ssize_t n = ::read(fd_, buffer_.get() + end_, capacity_ - end_);
            if (n > 0) {
                end_ += static_cast<std::size_t>(n);
                return;
            }
            if (n == 0) {
                eof_ = true;
                return;
            }
            if (errno != EINTR)
                fail_io("read output");
        }
    }

    int fd_;
    std::size_t capacity_; // usable bytes; the allocation has the padding beyond them
    std::unique_ptr<char[]> buffer_;
    std::uint64_t base_offset_ = 0; // file offset of buffer_[0]
    std::uint64_t line_offset_ = 0;
    std::size_t begin_ = 0;   // first byte not yet returned as a line
    std::size_t end_ = 0;     // one past the last byte read
    std::size_t scanned_ = 0; // [begin_, scanned_) holds no newline
    bool eof_ = false;
};

// The top-level fields of one output record that decide its fate. Views point into the
// parser: valid until the next line is parsed.
struct record_fields {
    std::string_view custom_id;
    bool failed = false;               // `error` is an object, not null
    std::string_view code;             // error.code when failed
    std::optional<std::uint64_t> line; // a bad-input-line record
};

// Reads `line` as an output record; on failure `why` says what makes it foreign. Only
// top-level members count (a `line` inside a response body is not the record's), and the
// first of a repeated key wins, as in the input reader.
// `text` must have SIMDJSON_PADDING readable bytes behind it, as line_reader guarantees.
bool read_record(sj::dom::parser& parser,
                 std::string_view text,
                 record_fields& out,
                 std::string& why) {
    out = record_fields{};
    sj::dom::element root;
    if (auto err = parser.parse(text.data(), text.size(), false).get(root)) {
        why = std::string("not JSON: ") + sj::error_message(err);
        return false;
    }
    sj::dom::object object;
    if (root.get_object().get(object)) {
        why = "not a JSON object";
        return false;
    }
    bool has_id = false;
    bool has_response = false;
    bool has_error = false;
    bool has_line = false;
    for (sj::dom::key_value_pair field : object) {
        if (field.key == "custom_id" && !has_id) {
            has_id = true;
            if (field.value.get_string().get(out.custom_id)) {
                why = "custom_id is not a string";
                return false;
            }
        } else if (field.key == "response" && !has_response) {
            has_response = true;
            if (!field.value.is_null() && !field.value.is_object()) {
                why = "response is neither null nor an object";
                return false;
            }
        } else if (field.key == "error" && !has_error) {
            has_error = true;
            if (field.value.is_null())
                continue;
            out.failed = true;
            sj::dom::object error;
            if (field.value.get_object().get(error) || error["code"].get_string().get(out.code)) {
                why = "error is neither null nor an object with a string code";
                return false;
            }
        } else if (field.key == "line" && !has_line) {
            has_line = true;
            std::uint64_t n = 0;
            if (field.value.get_uint64().get(n) || n == 0) {
                why = "line is not a positive integer";
                return false;
            }
            out.line = n;
        }
    }
    if (!has_id || !has_response || !has_error) {
        why = !has_id ? "no custom_id" : !has_response ? "no response" : "no error";
        return false;
    }
    return true;
}

// Records the resumed run must redo: requests that never got their answer, and with
// --retry-failed every failure.
bool redone(const record_fields& f, const journal_options& options) {
    if (!f.failed)
        return false;
    if (options.retry_failed)
        return true;
    for (const errc e : {errc::not_attempted, errc::stopped, errc::quota_exhausted})
        if (f.code == error_kind(make_error_code(e)))
            return true;
    return false;
}

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

// A temporary file left by a crash during an earlier replacement; the name is sluice's own.
void remove_stale_temp(const std::string& target) {
    const std::string temp = target + std::string(temp_suffix);
    if (::unlink(temp.c_str()) != 0 && errno != ENOENT)
        fail_io("remove ", temp);
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
    if (!options.errors_path.empty()) {
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
    file_handle in(::open(target.c_str(), O_RDWR | O_CLOEXEC));
    if (in.get() < 0)
        fail_io("cannot open output ", output_path);

    line_reader reader(in.get());
    sj::dom::parser parser;
    std::optional<replacement_file> compacted; // created at the first record removed
    std::optional<replacement_file> kept_errors;
    record_fields f;
    std::string why;
    std::string_view line;
    std::uint64_t number = 0;
    while (reader.next(line)) {
        ++number;
        if (!read_record(parser, line, f, why))
            throw not_ours(output_path, number, why);
        ++rec.records;
        const bool keep = !redone(f, options);
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
    const std::string_view tail = reader.tail();
    if (!tail.empty() && !looks_unfinished(tail))
        throw not_ours(output_path, number + 1, "an unfinished last line that no record begins");
    rec.torn_bytes = tail.size();

    // Every line was read and judged: only now is anything changed.
    if (compacted) {
        compacted->commit();
        rec.rewritten = true;
    } else {
        if (!tail.empty()) {
            if (::ftruncate(in.get(), static_cast<off_t>(reader.tail_offset())) != 0)
                fail_io("truncate ", output_path);
            sync_file(in.get(), output_path);
        }
        remove_stale_temp(target);
    }
    if (kept_errors) {
        kept_errors->commit();
        rec.errors_rewritten = true;
    } else if (errors) {
        rec.errors_rewritten = empty_error_file(*errors);
        remove_stale_temp(errors->real_path.value_or(options.errors_path));
    }
    return rec;
}

} // namespace sluice
