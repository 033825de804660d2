#include <sluice/source/jsonl_reader.hpp>

#include "detail/json_string.hpp"
#include "detail/line_reader.hpp"
#include "detail/trim.hpp"
#include "source/body_walk.hpp"
#include "source/id_scan.hpp"

#include <simdjson.h>

#include <charconv>
#include <optional>
#include <string>
#include <utility>

namespace sluice {
namespace {

namespace sj = simdjson;
namespace dom = simdjson::dom;

constexpr std::string_view chat_url = "/v1/chat/completions";
constexpr std::string_view chat_url_no_version = "/chat/completions";

// Blank around a JSONL line: spaces, tabs and the CR of a CRLF file.
std::string_view trim(std::string_view s) noexcept {
    return detail::trim(s, " \t\r");
}

// The top-level fields of one line. Views point into the line or into the parser's string
// buffer: valid until the next line is parsed.
struct line_fields {
    std::optional<std::string_view> custom_id;
    bool custom_id_not_string = false;
    std::optional<std::string_view> method;
    bool method_not_string = false;
    std::optional<std::string_view> url;
    bool url_not_string = false;
    std::optional<std::string_view> body; // the first `body` object's text, exactly as written
    bool body_not_object = false;
    detail::body_walk body_walk; // what the walk over that body found
    bool has_messages = false;
    // Top-level `model`: the model of a line that is itself a body, or of a prompt line.
    std::optional<std::string_view> model;
    bool model_not_string = false;
    std::optional<std::string_view> prompt; // unescaped
    bool prompt_not_string = false;
    // The first key a prompt line may not have: it would be dropped from the request unseen.
    std::string_view not_for_prompt;
};

// Reads the top level of a line the DOM parser accepted. The first occurrence of a repeated key
// wins. `body` is walked for the token estimate, and its text found in `spans`.
class line_walker {
public:
    line_walker(const detail::value_spans& spans, line_fields& f, bool ids_only)
        : members_(spans, detail::value_spans::root, true)
        , f_(f)
        , ids_only_(ids_only) {}

    void walk(dom::object root) {
        members_count_ = root.size();
        std::size_t k = 0;
        for (const dom::key_value_pair member : root) {
            if (f_.not_for_prompt.empty() && member.key != "prompt" && member.key != "model" &&
                member.key != "custom_id")
                f_.not_for_prompt = member.key;
            read(member.key, member.value, k++);
        }
    }

private:
    void read(std::string_view key, dom::element value, std::size_t k) {
        if (key == "custom_id")
            read_string(value, f_.custom_id, f_.custom_id_not_string);
        else if (key == "method")
            read_string(value, f_.method, f_.method_not_string);
        else if (key == "url")
            read_string(value, f_.url, f_.url_not_string);
        else if (key == "model")
            read_string(value, f_.model, f_.model_not_string);
        else if (key == "prompt")
            read_string(value, f_.prompt, f_.prompt_not_string);
        else if (key == "body" && !f_.body && !f_.body_not_object)
            read_body(value, k);
        else if (key == "messages")
            f_.has_messages = true;
    }

    static void
    read_string(dom::element value, std::optional<std::string_view>& out, bool& not_string) {
        if (out || not_string)
            return;
        std::string_view s;
        if (!value.get_string().get(s))
            out = s;
        else
            not_string = true;
    }

    void read_body(dom::element value, std::size_t k) {
        dom::object body;
        if (value.get_object().get(body)) {
            f_.body_not_object = true;
            return;
        }
        if (ids_only_) {
            detail::walk_stream(body, f_.body_walk);
            f_.body = std::string_view{}; // the text is not taken in this pass
            return;
        }
        const std::uint32_t at = members_.at(k);
        detail::walk_body(body, members_.spans(), at, f_.body_walk);
        // A Batch API line usually ends with its body: then its end is the line's last bracket
        // but one, and the body's brackets need not be counted to find it.
        // (The DOM's count of members stops at 2^24 - 1: a larger count is not trusted.)
        const bool last = k + 1 == members_count_ && members_count_ < 0xFFFFFF;
        f_.body = last ? members_.spans().last_text(at) : members_.spans().text(at);
    }

    detail::child_positions members_;
    line_fields& f_;
    bool ids_only_;
    std::size_t members_count_ = 0;
};

// Why a body's `stream` is refused, or nothing: it must be a boolean (true streams the answer,
// which the engine assembles into the same record as a whole answer).
std::string stream_check(const detail::body_walk& w) {
    return w.stream_not_bool ? "stream must be true or false" : std::string();
}

} // namespace

struct jsonl_reader::impl {
    impl(int fd, reader_options opts)
        : lines(fd, sj::SIMDJSON_PADDING, "read input")
        , default_model(std::move(opts.model))
        , shard(opts.shard)
        , ids_only(opts.ids_only || opts.unchecked_ids)
        , unchecked(opts.unchecked_ids && opts.shard.count == 1)
        , estimate(opts.estimate) {
        // The system message is the same on every prompt line: quote it once.
        if (!opts.system.empty()) {
            system_message = R"({"role":"system","content":)";
            detail::append_json_string(system_message, opts.system);
            system_message += "},";
            system_chars = detail::code_points(opts.system);
        }
    }

    void parse_line(std::string_view line, input_record& out);
    void scan_line(std::string_view line, input_record& out);
    static void name_by_line(std::uint64_t line, std::string& out);
    static void scanned_id(const detail::id_scan& scan, std::uint64_t line, std::string& out);
    std::string take_line(dom::element root, std::string_view line, request& req);
    std::string take_chat_line(dom::object root, std::string_view line, request& req);
    std::string take_prompt_line(const line_fields& f, request& req);
    std::string take_batch_line(const line_fields& f, request& req);
    void build_prompt_body(std::string_view model, std::string_view prompt, std::string& body);
    void set_facts(const detail::body_walk& w, request& req) const;

    detail::line_reader lines;  // every line (and part of one) has SIMDJSON_PADDING behind it
    std::string default_model;  // reader_options::model
    std::string system_message; // quoted messages[] entry with its comma, or empty
    std::uint64_t system_chars = 0;
    shard_spec shard;                         // reader_options::shard
    bool ids_only;                            // reader_options::ids_only (or unchecked_ids)
    bool unchecked;                           // reader_options::unchecked_ids, one shard
    std::optional<estimate_options> estimate; // reader_options::estimate
    bool first_line = true;
    std::uint64_t line_number = 0;
    // The DOM parser checks a whole line in its two tight stages and hands over every value
    // unescaped and parsed: cheaper than an on-demand walk that checks each value it passes.
    dom::parser parser;
    line_fields fields; // reused: its optionals are reset per line
};

void jsonl_reader::impl::parse_line(std::string_view line, input_record& out) {
    request& req = out.request;
    req.body.clear();
    req.model.clear();
    req.token_cost.reset();
    req.streams.reset();
    req.custom_id.clear();
    out.ec = {};
    out.message.clear();
    out.first_pass_id.clear();

    std::string why;
    dom::element root;
    // Any part of a line has the padding of line_reader behind it: parsed where it stands.
    if (auto err = parser.parse(line.data(), line.size(), false).get(root))
        why = std::string("not JSON: ") + sj::error_message(err);
    else
        why = take_line(root, line, req);
    if (!why.empty()) {
        req.body.clear();
        req.model.clear();
        req.token_cost.reset();
        req.streams.reset();
        out.ec = errc::bad_input_line;
        out.message = std::move(why);
        // What an unchecked first pass took this line for (a bad line is rare: scanned again).
        scanned_id(detail::scan_custom_id(line), out.line_number, out.first_pass_id);
    }
    if (req.custom_id.empty()) // the line named none: its record is named by its number
        name_by_line(out.line_number, req.custom_id);
}

// The unchecked first pass: the id the line's record would have if the line is good.
void jsonl_reader::impl::scan_line(std::string_view line, input_record& out) {
    const detail::id_scan scan = detail::scan_custom_id(line);
    if (scan.kind == detail::id_scan_kind::unsure)
        return parse_line(line, out);
    out.ec = {};
    out.message.clear();
    out.first_pass_id.clear();
    scanned_id(scan, out.line_number, out.request.custom_id);
}

// The id a scan gives line `line`: its custom_id, or its number's name when it has none; left
// untouched when the scan is unsure.
void jsonl_reader::impl::scanned_id(const detail::id_scan& scan,
                                    std::uint64_t line,
                                    std::string& out) {
    if (scan.kind == detail::id_scan_kind::found)
        out.assign(scan.id);
    else if (scan.kind == detail::id_scan_kind::absent)
        name_by_line(line, out);
}

void jsonl_reader::impl::name_by_line(std::uint64_t line, std::string& out) {
    char digits[20];
    const auto end = std::to_chars(digits, digits + sizeof digits, line).ptr;
    out.assign("line-").append(digits, end);
}

// The request a line makes, in whichever of the three forms it is written; the reason it makes
// none otherwise. The DOM parser has checked all of the line.
std::string jsonl_reader::impl::take_line(dom::element root, std::string_view line, request& req) {
    dom::object object;
    if (root.get_object().get(object))
        return "not a JSON object";
    fields = line_fields{};
    line_fields& f = fields;
    const detail::value_spans spans(parser, line.data());
    line_walker(spans, f, ids_only).walk(object);

    if (f.custom_id_not_string)
        return "custom_id must be a string";
    if (f.custom_id) {
        if (f.custom_id->empty())
            return "custom_id is empty";
        req.custom_id.assign(*f.custom_id);
    }
    if (!f.body && !f.body_not_object && f.has_messages)
        return take_chat_line(object, line, req);
    if (!f.body && !f.body_not_object && (f.prompt || f.prompt_not_string))
        return take_prompt_line(f, req);
    if (!f.body && !f.body_not_object)
        return "missing body (or messages, or prompt)";
    return take_batch_line(f, req);
}

// A line that is itself a chat-completion body: walked as a body, which its top level is, for
// the estimate and `stream` (the custom_id it may carry is sent with it).
std::string
jsonl_reader::impl::take_chat_line(dom::object root, std::string_view line, request& req) {
    if (!ids_only)
        req.model.assign(fields.model.value_or(std::string_view{}));
    detail::body_walk w;
    const detail::value_spans spans(parser, line.data());
    if (ids_only)
        detail::walk_stream(root, w);
    else
        detail::walk_body(root, spans, detail::value_spans::root, w);
    if (std::string why = stream_check(w); !why.empty())
        return why;
    if (!ids_only) {
        req.body.assign(trim(line));
        set_facts(w, req);
    }
    return {};
}

std::string jsonl_reader::impl::take_prompt_line(const line_fields& f, request& req) {
    if (f.prompt_not_string)
        return "prompt must be a string";
    if (!f.not_for_prompt.empty())
        return "prompt line has key \"" + std::string(f.not_for_prompt) +
               "\"; only prompt, custom_id and model are read (write a chat body to set other "
               "fields)";
    if (f.model_not_string)
        return "model must be a string";
    const std::string_view model =
        f.model && !f.model->empty() ? *f.model : std::string_view(default_model);
    if (model.empty())
        return "prompt line needs a model (--model)";
    if (!ids_only) {
        build_prompt_body(model, *f.prompt, req.body);
        req.model.assign(model);
        // The body built above, counted without parsing it: its messages and their text.
        detail::body_walk w;
        w.messages = system_message.empty() ? 1 : 2;
        w.chars = system_chars + detail::code_points(*f.prompt);
        set_facts(w, req);
    }
    return {};
}

// The Batch API form. A missing method or url means the only one sluice serves.
std::string jsonl_reader::impl::take_batch_line(const line_fields& f, request& req) {
    if (f.method_not_string)
        return "method must be a string";
    if (f.method && *f.method != "POST")
        return "unsupported method " + std::string(*f.method);
    if (f.url_not_string)
        return "url must be a string";
    if (f.url && *f.url != chat_url && *f.url != chat_url_no_version)
        return "unsupported url " + std::string(*f.url);
    if (f.body_not_object)
        return "body is not an object";
    if (std::string why = stream_check(f.body_walk); !why.empty())
        return why;
    if (ids_only)
        return {};
    if (f.body_walk.model)
        req.model.assign(*f.body_walk.model);
    req.body.assign(*f.body);
    set_facts(f.body_walk, req);
    return {};
}

// What the walk already found, so that the dispatcher need not parse the body again: the
// estimate it would make, and that a body which does not stream needs no preparing (one that
// does is left to the dispatcher, which adds stream_options.include_usage).
void jsonl_reader::impl::set_facts(const detail::body_walk& w, request& req) const {
    if (estimate)
        req.token_cost = detail::finish_estimate(true, w, req.body.size(), *estimate).total();
    if (!w.stream)
        req.streams = false;
}

// Strings come unescaped from the parser and are quoted again here, so any escape or UTF-8 the
// user wrote reaches the server as the same text.
void jsonl_reader::impl::build_prompt_body(std::string_view model,
                                           std::string_view prompt,
                                           std::string& body) {
    body.assign(R"({"model":)");
    detail::append_json_string(body, model);
    body += R"(,"messages":[)";
    body += system_message;
    body += R"({"role":"user","content":)";
    detail::append_json_string(body, prompt);
    body += "}]}";
}

jsonl_reader::jsonl_reader(int fd, reader_options opts)
    : impl_(std::make_unique<impl>(fd, std::move(opts))) {}
jsonl_reader::~jsonl_reader() = default;
jsonl_reader::jsonl_reader(jsonl_reader&&) noexcept = default;
jsonl_reader& jsonl_reader::operator=(jsonl_reader&&) noexcept = default;

bool jsonl_reader::next(input_record& out) {
    std::string_view line;
    while (impl_->lines.next(line)) {
        ++impl_->line_number;
        if (impl_->first_line) {
            impl_->first_line = false;
            // A UTF-8 byte-order mark, as some editors write, is not part of the JSON.
            if (line.substr(0, 3) == "\xEF\xBB\xBF")
                line.remove_prefix(3);
        }
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (trim(line).empty())
            continue; // blank lines are skipped but keep their line numbers
        out.line_number = impl_->line_number;
        if (impl_->unchecked)
            impl_->scan_line(line, out);
        else
            impl_->parse_line(line, out);
        // Decided by the id the line's record will carry, bad lines included, so that every
        // line is in exactly one shard.
        if (!impl_->shard.contains(out.request.custom_id))
            continue;
        return true;
    }
    return false;
}

} // namespace sluice
