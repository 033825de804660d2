#include <sluice/source/jsonl_reader.hpp>

#include "detail/json_string.hpp"
#include "detail/line_reader.hpp"
#include "detail/trim.hpp"
#include "source/body_walk.hpp"

#include <simdjson.h>

#include <optional>
#include <string>
#include <utility>

namespace sluice {
namespace {

namespace sj = simdjson;
namespace od = simdjson::ondemand;

constexpr std::string_view chat_url = "/v1/chat/completions";
constexpr std::string_view chat_url_no_version = "/chat/completions";

// Blank around a JSONL line: spaces, tabs and the CR of a CRLF file.
std::string_view trim(std::string_view s) noexcept {
    return detail::trim(s, " \t\r");
}

// The top-level fields of one line. Views point into the line or into the parser's string
// buffer: valid until the line's document is rewound or the next line is parsed.
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

// Reads the top level of a line in one pass, checking every value on the way: its first error
// means the line is not JSON. The first occurrence of a repeated key wins; the others are
// checked all the same. `body` is walked where it stands, counted for the token estimate, and
// its text taken from the document's position before and after it.
class line_walker {
public:
    line_walker(od::document& doc, line_fields& f)
        : doc_(doc)
        , f_(f) {}

    sj::error_code walk(od::object& root) {
        return detail::for_each_member(root, [&](std::string_view key, od::value& value) {
            if (f_.not_for_prompt.empty() && key != "prompt" && key != "model" &&
                key != "custom_id")
                f_.not_for_prompt = key;
            return read(key, value);
        });
    }

private:
    static constexpr int depth = 2; // of a top-level member's value; the line itself is 1
    static constexpr auto big = detail::big_integers::refuse; // the DOM parser's verdicts

    sj::error_code read(std::string_view key, od::value& value) {
        if (key == "custom_id")
            return read_string(value, f_.custom_id, f_.custom_id_not_string);
        if (key == "method")
            return read_string(value, f_.method, f_.method_not_string);
        if (key == "url")
            return read_string(value, f_.url, f_.url_not_string);
        if (key == "model")
            return read_string(value, f_.model, f_.model_not_string);
        if (key == "prompt")
            return read_string(value, f_.prompt, f_.prompt_not_string);
        if (key == "body" && !f_.body && !f_.body_not_object)
            return read_body(value);
        if (key == "messages")
            f_.has_messages = true;
        return detail::check_json(value, big, depth);
    }

    sj::error_code
    read_string(od::value& value, std::optional<std::string_view>& out, bool& not_string) {
        if (!out && !not_string) {
            std::string_view s;
            if (!value.get_string().get(s)) {
                out = s;
                return sj::SUCCESS;
            }
            not_string = true;
        }
        return detail::check_json(value, big, depth);
    }

    sj::error_code read_body(od::value& value) {
        const char* start = value.raw_json_token().data();
        od::object body;
        if (value.get_object().get(body)) {
            f_.body_not_object = true;
            return detail::check_json(value, big, depth);
        }
        if (auto err = detail::walk_body(doc_, body, depth, detail::body_check::all, f_.body_walk))
            return err;
        // Past the body's brace the document stands at the next member or the line's brace.
        const char* end = nullptr;
        if (auto err = doc_.current_location().get(end))
            return err;
        f_.body = trim(std::string_view(start, static_cast<std::size_t>(end - start)));
        return sj::SUCCESS;
    }

    od::document& doc_;
    line_fields& f_;
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
        , ids_only(opts.ids_only)
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
    std::string take_line(od::document& doc, std::string_view line, request& req);
    std::string take_chat_line(od::document& doc, std::string_view line, request& req);
    std::string take_prompt_line(const line_fields& f, request& req);
    std::string take_batch_line(const line_fields& f, request& req);
    void build_prompt_body(std::string_view model, std::string_view prompt, std::string& body);
    void set_facts(const detail::body_walk& w, request& req) const;

    detail::line_reader lines;  // every line (and part of one) has SIMDJSON_PADDING behind it
    std::string default_model;  // reader_options::model
    std::string system_message; // quoted messages[] entry with its comma, or empty
    std::uint64_t system_chars = 0;
    shard_spec shard;                         // reader_options::shard
    bool ids_only;                            // reader_options::ids_only
    std::optional<estimate_options> estimate; // reader_options::estimate
    bool first_line = true;
    std::uint64_t line_number = 0;
    od::parser parser;
    line_fields fields; // reused: its optionals are reset per line
};

void jsonl_reader::impl::parse_line(std::string_view line, input_record& out) {
    request& req = out.request;
    req.body.clear();
    req.model.clear();
    req.token_cost.reset();
    req.streams.reset();
    req.custom_id = "line-" + std::to_string(out.line_number);
    out.ec = {};
    out.message.clear();

    std::string why;
    // Any part of a line has the padding of line_reader behind it.
    const std::size_t readable = line.size() + sj::SIMDJSON_PADDING;
    od::document doc;
    if (auto err = parser.iterate(line.data(), line.size(), readable).get(doc))
        why = std::string("not JSON: ") + sj::error_message(err);
    else
        why = take_line(doc, line, req);
    if (!why.empty()) {
        req.body.clear();
        req.model.clear();
        req.token_cost.reset();
        req.streams.reset();
        out.ec = errc::bad_input_line;
        out.message = std::move(why);
    }
}

// The request a line makes, in whichever of the three forms it is written; the reason it makes
// none otherwise. The one pass over the line checks all of it as simdjson's DOM parser would.
std::string jsonl_reader::impl::take_line(od::document& doc, std::string_view line, request& req) {
    od::json_type type;
    if (auto err = doc.type().get(type))
        return std::string("not JSON: ") + sj::error_message(err);
    if (type != od::json_type::object) {
        if (auto err = detail::check_document(doc, detail::big_integers::refuse))
            return std::string("not JSON: ") + sj::error_message(err);
        return "not a JSON object";
    }
    od::object root;
    fields = line_fields{};
    line_fields& f = fields;
    sj::error_code err = doc.get_object().get(root);
    if (!err)
        err = line_walker(doc, f).walk(root);
    if (!err && !detail::at_end(doc))
        err = sj::TRAILING_CONTENT;
    if (err)
        return std::string("not JSON: ") + sj::error_message(err);

    if (f.custom_id_not_string)
        return "custom_id must be a string";
    if (f.custom_id) {
        if (f.custom_id->empty())
            return "custom_id is empty";
        req.custom_id.assign(*f.custom_id);
    }
    if (!f.body && !f.body_not_object && f.has_messages)
        return take_chat_line(doc, line, req);
    if (!f.body && !f.body_not_object && (f.prompt || f.prompt_not_string))
        return take_prompt_line(f, req);
    if (!f.body && !f.body_not_object)
        return "missing body (or messages, or prompt)";
    return take_batch_line(f, req);
}

// A line that is itself a chat-completion body: walked once more as a body, which its top
// level is, for the estimate and `stream` (the custom_id it may carry is sent with it).
std::string
jsonl_reader::impl::take_chat_line(od::document& doc, std::string_view line, request& req) {
    const std::optional<std::string_view> model = fields.model; // before the rewind below
    if (!ids_only)
        req.model.assign(model.value_or(std::string_view{}));
    doc.rewind();
    od::object root;
    detail::body_walk w;
    // The line was checked whole above: these fail only on memory or a simdjson bug.
    if (auto err = doc.get_object().get(root))
        return std::string("not JSON: ") + sj::error_message(err);
    if (auto err = detail::walk_body(doc, root, 1, detail::body_check::all, w))
        return std::string("not JSON: ") + sj::error_message(err);
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
