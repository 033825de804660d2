#include <sluice/parse/completion_parser.hpp>

#include "detail/json_check.hpp"
#include "detail/trim.hpp"

#include "parse/json_depth.hpp"
#include "parse/padded_input.hpp"

#include <simdjson.h>

#include <cstring>
#include <memory>

namespace sluice {

static_assert(parse_padding == simdjson::SIMDJSON_PADDING,
              "parse_padding must match the padding simdjson reads past a document");

namespace {

namespace od = simdjson::ondemand;

// A field's value, or the error that reaching it produced: every accessor on it reports that
// error, so the readers below need no separate check.
using value_result = simdjson::simdjson_result<od::value>;

// True when the value is valid JSON all the way down. The fast path reads only some fields; the
// rest go through here instead of being skipped, because the sink embeds the body as JSON only
// when all of it is (detail::check_json).
bool valid(value_result v) {
    return !detail::check_json(v);
}

// `out` null: checked, not kept (completion_fields::usage). `String`: std::string, or the
// inline_string a completion's id is.
template <class String>
bool read_string(value_result v, String* out) {
    std::string_view s;
    if (v.get_string().get(s))
        return false;
    if (out)
        out->assign(s.data(), s.size());
    return true;
}

// A string, or null (left empty), or a number kept as its JSON text (some servers send numeric
// error codes).
template <class String>
bool read_string_or_null(value_result v, String* out) {
    od::json_type t;
    if (v.type().get(t))
        return false;
    switch (t) {
    case od::json_type::null: {
        bool is_null = false;
        return !v.is_null().get(is_null) && is_null;
    }
    case od::json_type::string:
        return read_string(v, out);
    case od::json_type::number: {
        std::string_view raw;
        double d = 0;
        if (v.raw_json_token().get(raw) || v.get_double().get(d))
            return false;
        raw = detail::trim(raw, detail::json_blanks); // the token runs up to the next one
        if (out)
            out->assign(raw.data(), raw.size());
        return true;
    }
    default:
        return false;
    }
}

// A field the fast path does not read: checked, not skipped (see `valid`).
bool valid_field(simdjson::simdjson_result<od::field>& field) {
    std::string_view key;
    return !field.unescaped_key().get(key) && valid(field.value());
}

// `tool_calls`: an array (vLLM sends an empty one when there are none), null, or anything else
// taken as present.
bool read_tool_calls(value_result v, bool& out) {
    od::json_type t;
    if (v.type().get(t))
        return false;
    if (t != od::json_type::array) {
        out = t != od::json_type::null;
        return valid(v);
    }
    od::array array;
    if (v.get_array().get(array))
        return false;
    for (auto element : array) {
        if (!valid(element))
            return false;
        out = true;
    }
    return true;
}

bool read_message(value_result v, choice& c, bool keep) {
    od::object message;
    if (v.get_object().get(message))
        return false;
    for (auto field : message) {
        od::raw_json_string key;
        if (field.key().get(key))
            return false;
        bool ok = true;
        if (key == "content") {
            od::json_type t;
            if (field.value().type().get(t))
                return false;
            std::string text;
            ok = t == od::json_type::null ? valid(field.value())
                                          : read_string(field.value(), keep ? &text : nullptr);
            if (ok && keep && t != od::json_type::null)
                c.content = std::move(text);
        } else if (key == "tool_calls") {
            ok = read_tool_calls(field.value(), c.has_tool_calls);
        } else if (key == "refusal") {
            od::json_type t;
            if (field.value().type().get(t))
                return false;
            c.has_refusal = t != od::json_type::null;
            ok = valid(field.value());
        } else {
            ok = valid_field(field);
        }
        if (!ok)
            return false;
    }
    return true;
}

bool read_choice(value_result v, choice& c, bool keep) {
    od::object object;
    if (v.get_object().get(object))
        return false;
    for (auto field : object) {
        od::raw_json_string key;
        if (field.key().get(key))
            return false;
        bool ok = true;
        if (key == "index") {
            std::uint64_t index = 0;
            ok = !field.value().get_uint64().get(index) && index <= UINT32_MAX;
            c.index = static_cast<std::uint32_t>(index);
        } else if (key == "message") {
            ok = read_message(field.value(), c, keep);
        } else if (key == "finish_reason") {
            ok = read_string_or_null(field.value(), keep ? &c.finish_reason : nullptr);
        } else {
            ok = valid_field(field);
        }
        if (!ok)
            return false;
    }
    return true;
}

// Kept in `out` with completion_fields::all; counted either way.
template <class Choices>
bool read_choices(value_result v, Choices& out, bool keep, std::size_t& count) {
    od::array array;
    if (v.get_array().get(array))
        return false;
    for (auto element : array) {
        choice c;
        if (!read_choice(element, c, keep))
            return false;
        ++count;
        if (keep)
            out.push_back(std::move(c));
    }
    return true;
}

bool read_usage(value_result v, std::optional<usage>& out) {
    od::json_type t;
    if (v.type().get(t))
        return false;
    if (t == od::json_type::null) // type() looks at the first letter only: check the rest
        return valid(v);
    od::object object;
    if (v.get_object().get(object))
        return false;
    usage u;
    for (auto field : object) {
        od::raw_json_string key;
        if (field.key().get(key))
            return false;
        std::uint64_t* target = key == "prompt_tokens"       ? &u.prompt_tokens
                                : key == "completion_tokens" ? &u.completion_tokens
                                : key == "total_tokens"      ? &u.total_tokens
                                                             : nullptr;
        if (target ? field.value().get_uint64().get(*target) != simdjson::SUCCESS
                   : !valid_field(field))
            return false;
    }
    out = u;
    return true;
}

bool read_error(value_result v, std::optional<provider_error>& out) {
    od::object object;
    if (v.get_object().get(object))
        return false;
    provider_error e;
    for (auto field : object) {
        od::raw_json_string key;
        if (field.key().get(key))
            return false;
        std::string* target = key == "message" ? &e.message
                              : key == "type"  ? &e.type
                              : key == "code"  ? &e.code
                              : key == "param" ? &e.param
                                               : nullptr;
        if (!(target ? read_string_or_null(field.value(), target) : valid_field(field)))
            return false;
    }
    out = std::move(e);
    return true;
}

} // namespace

struct completion_parser::impl {
    od::parser parser;
    detail::padded_input input; // bodies without spare capacity are copied there

    bool walk(const char* data,
              std::size_t size,
              std::size_t capacity,
              completion& out,
              bool keep,
              std::size_t& choices) {
        od::document doc;
        if (parser.iterate(data, size, capacity).get(doc))
            return false;
        od::object root;
        if (doc.get_object().get(root))
            return false;
        // One pass over the top level in document order; unknown fields are skipped unread.
        for (auto field : root) {
            od::raw_json_string key;
            if (field.key().get(key))
                return false;
            bool ok = true;
            if (key == "id")
                ok = read_string_or_null(field.value(), keep ? &out.id : nullptr);
            else if (key == "model")
                ok = read_string_or_null(field.value(), keep ? &out.model : nullptr);
            else if (key == "choices")
                ok = read_choices(field.value(), out.choices, keep, choices);
            else if (key == "usage")
                ok = read_usage(field.value(), out.usage);
            else if (key == "error")
                ok = read_error(field.value(), out.error);
            else
                ok = valid_field(field);
            if (!ok)
                return false;
        }
        return detail::at_end(doc);
    }

    // Whether a body the fast path refused is still one valid JSON value (an error page's
    // `{"detail": ...}`, an array): the sink embeds such a body as JSON rather than as text.
    bool is_json(const char* data, std::size_t size, std::size_t capacity) {
        od::document doc;
        return !parser.iterate(data, size, capacity).get(doc) && !detail::check_document(doc);
    }
};

completion_parser::completion_parser()
    : impl_(std::make_unique<impl>()) {
    detail::limit_depth(impl_->parser);
}
completion_parser::~completion_parser() = default;
completion_parser::completion_parser(completion_parser&&) noexcept = default;
completion_parser& completion_parser::operator=(completion_parser&&) noexcept = default;

error_code completion_parser::parse(const char* data,
                                    std::size_t size,
                                    std::size_t capacity,
                                    completion& out,
                                    completion_fields fields) {
    out = completion{};
    impl_->input.pad(data, size, capacity);
    std::size_t choices = 0;
    if (!impl_->walk(data, size, capacity, out, fields == completion_fields::all, choices)) {
        out = completion{};
        out.body_is_json = impl_->is_json(data, size, capacity);
        return errc::malformed_response;
    }
    // A body with neither choices nor an error object is not a chat completion.
    if (choices == 0 && !out.error) {
        out = completion{};
        out.body_is_json = true;
        return errc::malformed_response;
    }
    out.body_is_json = true;
    return {};
}

bool completion_parser::is_json(const char* data, std::size_t size, std::size_t capacity) {
    impl_->input.pad(data, size, capacity);
    return impl_->is_json(data, size, capacity);
}

} // namespace sluice
