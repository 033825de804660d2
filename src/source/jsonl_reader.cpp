#include <sluice/source/jsonl_reader.hpp>

#include "detail/json_string.hpp"
#include "detail/line_reader.hpp"
#include "detail/trim.hpp"

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

// The top-level fields of one line, read from the validated DOM. Views point into the DOM
// parser's string buffer: valid until the next line is parsed.
struct line_fields {
    std::optional<std::string_view> custom_id;
    bool custom_id_not_string = false;
    std::optional<std::string_view> method;
    bool method_not_string = false;
    std::optional<std::string_view> url;
    bool url_not_string = false;
    std::optional<sj::dom::element> body;
    bool has_messages = false;
    // Top-level `model`: the model of a line that is itself a body, or of a prompt line.
    std::optional<std::string_view> model;
    bool model_not_string = false;
    std::optional<std::string_view> prompt; // unescaped
    bool prompt_not_string = false;
    // The first key a prompt line may not have: it would be dropped from the request unseen.
    std::string_view not_for_prompt;
};

line_fields read_fields(const sj::dom::object& root) {
    line_fields f;
    // The first occurrence of a repeated key wins, as in the raw-body extraction below.
    auto read_string =
        [](sj::dom::element value, std::optional<std::string_view>& out, bool& not_string) {
            if (out || not_string)
                return;
            std::string_view s;
            if (value.get_string().get(s))
                not_string = true;
            else
                out = s;
        };
    for (sj::dom::key_value_pair field : root) {
        if (field.key == "custom_id") {
            read_string(field.value, f.custom_id, f.custom_id_not_string);
        } else if (field.key == "method") {
            read_string(field.value, f.method, f.method_not_string);
        } else if (field.key == "url") {
            read_string(field.value, f.url, f.url_not_string);
        } else if (field.key == "body") {
            if (!f.body)
                f.body = field.value;
        } else if (field.key == "messages") {
            f.has_messages = true;
        } else if (field.key == "model") {
            read_string(field.value, f.model, f.model_not_string);
        } else if (field.key == "prompt") {
            read_string(field.value, f.prompt, f.prompt_not_string);
        }
        if (f.not_for_prompt.empty() && field.key != "prompt" && field.key != "model" &&
            field.key != "custom_id")
            f.not_for_prompt = field.key;
    }
    return f;
}

// Why a body's `stream` is refused, or nothing: it must be a boolean (true streams the answer,
// which the engine assembles into the same record as a whole answer).
std::string stream_check(const sj::dom::object& body) {
    sj::dom::element value;
    if (body["stream"].get(value))
        return {};
    bool on = false;
    if (value.get_bool().get(on))
        return "stream must be true or false";
    return {};
}

} // namespace

struct jsonl_reader::impl {
    impl(int fd, reader_options opts)
        : lines(fd, sj::SIMDJSON_PADDING, "read input")
        , default_model(std::move(opts.model))
        , shard(opts.shard)
        , ids_only(opts.ids_only) {
        // The system message is the same on every prompt line: quote it once.
        if (!opts.system.empty()) {
            system_message = R"({"role":"system","content":)";
            detail::append_json_string(system_message, opts.system);
            system_message += "},";
        }
    }

    void parse_line(std::string_view line, input_record& out);
    std::string take_line(std::string_view line, sj::dom::object object, request& req);
    std::string take_prompt_line(const line_fields& f, request& req);
    std::string take_batch_line(std::string_view line, const line_fields& f, request& req);
    void build_prompt_body(std::string_view model, std::string_view prompt, std::string& body);
    std::string_view raw_body(std::string_view line, sj::error_code& err);

    detail::line_reader lines;  // every line (and part of one) has SIMDJSON_PADDING behind it
    std::string default_model;  // reader_options::model
    std::string system_message; // quoted messages[] entry with its comma, or empty
    shard_spec shard;           // reader_options::shard
    bool ids_only;              // reader_options::ids_only
    bool first_line = true;
    std::uint64_t line_number = 0;
    sj::dom::parser validator; // full validation: on-demand alone does not check skipped values
    od::parser extractor;      // finds the raw text of `body` without re-serializing it
};

// The text of the first `body` member, exactly as written. The line is already known to be a
// valid JSON object, so on-demand's unvalidated skipping cannot be fooled here.
std::string_view jsonl_reader::impl::raw_body(std::string_view line, sj::error_code& err) {
    // Any part of a line has the padding of line_reader behind it.
    const std::size_t readable = line.size() + sj::SIMDJSON_PADDING;
    od::document doc;
    od::object root;
    if ((err = extractor.iterate(line.data(), line.size(), readable).get(doc)) ||
        (err = doc.get_object().get(root)))
        return {};
    for (auto field : root) {
        std::string_view key;
        if ((err = field.unescaped_key().get(key)))
            return {};
        if (key != "body")
            continue;
        od::object body;
        std::string_view raw;
        if ((err = field.value().get_object().get(body)) || (err = body.raw_json().get(raw)))
            return {};
        return trim(raw);
    }
    err = sj::NO_SUCH_FIELD;
    return {};
}

void jsonl_reader::impl::parse_line(std::string_view line, input_record& out) {
    request& req = out.request;
    req.body.clear();
    req.model.clear();
    req.token_cost.reset();
    req.custom_id = "line-" + std::to_string(out.line_number);
    out.ec = {};
    out.message.clear();

    std::string why;
    sj::dom::element root;
    sj::dom::object object;
    if (auto err = validator.parse(line.data(), line.size(), false).get(root))
        why = std::string("not JSON: ") + sj::error_message(err);
    else if (root.get_object().get(object))
        why = "not a JSON object";
    else
        why = take_line(line, object, req);
    if (!why.empty()) {
        req.body.clear();
        req.model.clear();
        out.ec = errc::bad_input_line;
        out.message = std::move(why);
    }
}

// The request a valid JSON object line makes, in whichever of the three forms it is written;
// the reason it makes none otherwise.
std::string
jsonl_reader::impl::take_line(std::string_view line, sj::dom::object object, request& req) {
    const line_fields f = read_fields(object);
    if (f.custom_id_not_string)
        return "custom_id must be a string";
    if (f.custom_id) {
        if (f.custom_id->empty())
            return "custom_id is empty";
        req.custom_id.assign(*f.custom_id);
    }
    if (!f.body && f.has_messages) {
        // The line is itself a chat-completion body.
        if (std::string why = stream_check(object); !why.empty())
            return why;
        if (!ids_only) {
            req.body.assign(trim(line));
            req.model.assign(f.model.value_or(std::string_view{}));
        }
        return {};
    }
    if (!f.body && (f.prompt || f.prompt_not_string))
        return take_prompt_line(f, req);
    if (!f.body)
        return "missing body (or messages, or prompt)";
    return take_batch_line(line, f, req);
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
    }
    return {};
}

// The Batch API form. A missing method or url means the only one sluice serves.
std::string
jsonl_reader::impl::take_batch_line(std::string_view line, const line_fields& f, request& req) {
    if (f.method_not_string)
        return "method must be a string";
    if (f.method && *f.method != "POST")
        return "unsupported method " + std::string(*f.method);
    if (f.url_not_string)
        return "url must be a string";
    if (f.url && *f.url != chat_url && *f.url != chat_url_no_version)
        return "unsupported url " + std::string(*f.url);
    sj::dom::object body;
    if (f.body->get_object().get(body))
        return "body is not an object";
    if (std::string why = stream_check(body); !why.empty())
        return why;
    // The extraction below cannot fail on a line the DOM parser accepted (the same depth
    // limit, and `body` is known to be an object), so skipping it changes no verdict.
    if (ids_only)
        return {};
    std::string_view model;
    if (!body["model"].get_string().get(model))
        req.model.assign(model);

    sj::error_code err = sj::SUCCESS;
    const std::string_view raw = raw_body(line, err);
    if (err)
        return std::string("body could not be extracted: ") + sj::error_message(err);
    req.body.assign(raw);
    return {};
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
