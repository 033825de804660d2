#include <sluice/loadgen/prompt_source.hpp>

#include <sluice/source/jsonl_reader.hpp>
#include <sluice/source/stream_request.hpp>
#include <sluice/source/token_estimate.hpp>
#include <sluice/transport/header_value.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace sluice {

namespace {

std::uint32_t parse_count(std::string_view text, std::string_view what) {
    std::uint32_t v = 0;
    const auto res = std::from_chars(text.data(), text.data() + text.size(), v);
    if (res.ec != std::errc() || res.ptr != text.data() + text.size() || v == 0)
        throw std::invalid_argument(std::string(what) + ": '" + std::string(text) +
                                    "' is not N or N-M with whole numbers from 1 to " +
                                    std::to_string(std::numeric_limits<std::uint32_t>::max()));
    return v;
}

std::uint32_t draw(const token_range& r, std::mt19937_64& rng) {
    if (r.fixed())
        return r.min;
    return std::uniform_int_distribution<std::uint32_t>(r.min, r.max)(rng);
}

std::string range_text(const token_range& r) {
    return r.fixed() ? std::to_string(r.min) : std::to_string(r.min) + "-" + std::to_string(r.max);
}

void check_range(const token_range& r, const char* name) {
    if (r.min == 0 || r.max < r.min)
        throw std::invalid_argument(std::string("prompts.") + name +
                                    ": must be at least 1, min <= max");
}

// Closes the descriptor it holds at scope end, unless it is stdin.
struct input_fd {
    explicit input_fd(const std::string& path)
        : fd(path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
        if (fd < 0)
            throw std::system_error(errno, std::generic_category(), "cannot open " + path);
    }
    ~input_fd() {
        if (fd != STDIN_FILENO)
            ::close(fd);
    }
    input_fd(const input_fd&) = delete;
    input_fd& operator=(const input_fd&) = delete;
    int fd;
};

} // namespace

token_range parse_token_range(std::string_view text, std::string_view what) {
    token_range r;
    const std::size_t dash = text.find('-');
    if (dash == std::string_view::npos) {
        r.min = r.max = parse_count(text, what);
        return r;
    }
    r.min = parse_count(text.substr(0, dash), what);
    r.max = parse_count(text.substr(dash + 1), what);
    if (r.max < r.min)
        throw std::invalid_argument(std::string(what) + ": '" + std::string(text) +
                                    "': the range must not end below its start");
    return r;
}

void prompt_options::validate() const {
    check_range(input_tokens, "input_tokens");
    check_range(output_tokens, "output_tokens");
    if (distinct == 0)
        throw std::invalid_argument("prompts.distinct: must be at least 1");
    if (input_file.empty() && model.empty())
        throw std::invalid_argument("prompts.model: synthetic prompts need a model");
    // The model lands in every body and in the report's lines: one that holds a line end is
    // a pasted mistake, and a report that shows it would show forged lines.
    if (!is_valid_header_value(model))
        throw std::invalid_argument("prompts.model: contains a CR, LF, NUL or other control "
                                    "character");
}

prompt_source::prompt_source(const prompt_options& opts, std::uint64_t requests, std::uint64_t seed)
    : opts_(opts)
    , rng_(seed) {
    opts_.validate();
    if (opts_.input_file.empty())
        build_synthetic(requests);
    else
        read_file(requests);
}

void prompt_source::read_file(std::uint64_t requests) {
    input_fd in(opts_.input_file);
    reader_options ro;
    ro.model = opts_.model;
    ro.system = opts_.system;
    jsonl_reader reader(in.fd, ro);
    token_estimator estimate;
    const bool enough_when_counted = !opts_.sample && requests > 0;
    input_record rec;
    while ((!enough_when_counted || prompts_.size() < requests) && reader.next(rec)) {
        if (rec.ec) {
            if (bad_lines_++ == 0)
                first_bad_ = "line " + std::to_string(rec.line_number) + ": " + rec.message;
            continue;
        }
        prompt p;
        p.body = with_stream(rec.request.body, opts_.stream);
        p.model = rec.request.model;
        p.input_tokens = estimate(p.body).prompt;
        prompts_.push_back(std::move(p));
    }
    if (prompts_.empty())
        throw std::runtime_error(opts_.input_file + ": no usable prompt line" +
                                 (first_bad_.empty() ? "" : " (" + first_bad_ + ")"));
}

void prompt_source::build_synthetic(std::uint64_t requests) {
    std::size_t n = opts_.distinct;
    if (requests > 0 && requests < n)
        n = static_cast<std::size_t>(requests);
    prompts_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t in = draw(opts_.input_tokens, rng_);
        const std::uint32_t out = draw(opts_.output_tokens, rng_);
        prompt p;
        p.body = synthetic_body(
            opts_.model, synthetic_text(in, rng_), out, opts_.stream, opts_.ignore_eos);
        p.model = opts_.model;
        p.input_tokens = in;
        prompts_.push_back(std::move(p));
    }
}

void prompt_source::prepare(const estimate_options& estimate) {
    stream_request_preparer prepare_stream;
    token_estimator estimator(estimate);
    for (prompt& p : prompts_) {
        p.streams = prepare_stream(p.body);
        p.token_cost = estimator(p.body).total();
    }
}

const prompt& prompt_source::next() {
    if (opts_.sample && !opts_.input_file.empty())
        return prompts_[std::uniform_int_distribution<std::size_t>(0, prompts_.size() - 1)(rng_)];
    const prompt& p = prompts_[next_];
    next_ = next_ + 1 == prompts_.size() ? 0 : next_ + 1;
    return p;
}

std::string prompt_source::describe() const {
    if (!opts_.input_file.empty())
        return opts_.input_file + " (" + std::to_string(prompts_.size()) + " prompts, " +
               (opts_.sample ? "sampled" : "in order") + ")";
    return "synthetic: " + range_text(opts_.input_tokens) + " input tokens, " +
           range_text(opts_.output_tokens) + " output tokens";
}

} // namespace sluice
