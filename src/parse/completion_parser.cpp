#include <sluice/parse/completion_parser.hpp>

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

bool read_string(value_result v, std::string& out) {
    std::string_view s;
    if (v.get_string().get(s))
        return false;
    out.assign(s.data(), s.size());
    return true;
}

// A string, or null (left empty), or a number kept as its JSON text (some servers send numeric
// error codes).
bool read_string_or_null(value_result v, std::string& out) {
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
        if (v.raw_json_token().get(raw))
            return false;
        while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' ||
                                raw.back() == '\t'))
            raw.remove_suffix(1);
        out.assign(raw.data(), raw.size());
        return true;
    }
    default:
        return false;
    }
}

// True when the value is present and not null; the value is left unconsumed otherwise.
bool present(value_result v, bool& out) {
    od::json_type t;
    if (v.type().get(t))
        return false;
    out = t != od::json_type::null;
    return true;
}

bool read_message(value_result v, choice& c) {
    od::object message;
    if (v.get_object().get(message))
        return false;
    for (auto field : message) {
        od::raw_json_string key;
        if (field.key().get(key))
            return false;
        if (key == "content") {
            od::json_type t;
            if (field.value().type().get(t))
                return false;
            if (t == od::json_type::null)
                continue;
            std::string text;
            if (!read_string(field.value(), text))
                return false;
            c.content = std::move(text);
        } else if (key == "tool_calls") {
            // vLLM sends an empty array when there are none.
            value_result v = field.value();
            od::json_type t;
            if (v.type().get(t))
                return false;
            if (t == od::json_type::array) {
                std::size_t n = 0;
                if (v.count_elements().get(n))
                    return false;
                c.has_tool_calls = n > 0;
            } else {
                c.has_tool_calls = t != od::json_type::null;
            }
        } else if (key == "refusal") {
            if (!present(field.value(), c.has_refusal))
                return false;
        }
    }
    return true;
}

bool read_choice(value_result v, choice& c) {
    od::object object;
    if (v.get_object().get(object))
        return false;
    for (auto field : object) {
        od::raw_json_string key;
        if (field.key().get(key))
            return false;
        if (key == "index") {
            std::uint64_t index = 0;
            if (field.value().get_uint64().get(index) || index > UINT32_MAX)
                return false;
            c.index = static_cast<std::uint32_t>(index);
        } else if (key == "message") {
            if (!read_message(field.value(), c))
                return false;
        } else if (key == "finish_reason") {
            if (!read_string_or_null(field.value(), c.finish_reason))
                return false;
        }
    }
    return true;
}

bool read_choices(value_result v, std::vector<choice>& out) {
    od::array array;
    if (v.get_array().get(array))
        return false;
    for (auto element : array) {
        choice c;
        if (!read_choice(element, c))
            return false;
        out.push_back(std::move(c));
    }
    return true;
}

bool read_usage(value_result v, std::optional<usage>& out) {
    od::json_type t;
    if (v.type().get(t))
        return false;
    if (t == od::json_type::null)
        return true;
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
        if (target && field.value().get_uint64().get(*target))
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
        if (target && !read_string_or_null(field.value(), *target))
            return false;
    }
    out = std::move(e);
    return true;
}

} // namespace

struct completion_parser::impl {
    od::parser parser;
    std::unique_ptr<char[]> scratch; // padded copy for bodies without spare capacity
    std::size_t scratch_capacity = 0;

    const char* padded_copy(const char* data, std::size_t size) {
        if (scratch_capacity < size + parse_padding) {
            scratch_capacity = std::max(size + parse_padding, scratch_capacity * 2);
            scratch = std::make_unique<char[]>(scratch_capacity);
        }
        std::memcpy(scratch.get(), data, size);
        std::memset(scratch.get() + size, 0, parse_padding);
        return scratch.get();
    }

    bool walk(const char* data, std::size_t size, std::size_t capacity, completion& out) {
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
                ok = read_string_or_null(field.value(), out.id);
            else if (key == "model")
                ok = read_string_or_null(field.value(), out.model);
            else if (key == "choices")
                ok = read_choices(field.value(), out.choices);
            else if (key == "usage")
                ok = read_usage(field.value(), out.usage);
            else if (key == "error")
                ok = read_error(field.value(), out.error);
            if (!ok)
                return false;
        }
        return true;
    }
};

completion_parser::completion_parser()
    : impl_(std::make_unique<impl>()) {}
completion_parser::~completion_parser() = default;
completion_parser::completion_parser(completion_parser&&) noexcept = default;
completion_parser& completion_parser::operator=(completion_parser&&) noexcept = default;

error_code completion_parser::parse(const char* data,
                                    std::size_t size,
                                    std::size_t capacity,
                                    completion& out) {
    out = completion{};
    if (capacity < size + parse_padding) {
        data = impl_->padded_copy(data, size);
        capacity = impl_->scratch_capacity;
    }
    if (!impl_->walk(data, size, capacity, out)) {
        out = completion{};
        return errc::malformed_response;
    }
    // A body with neither choices nor an error object is not a chat completion.
    if (out.choices.empty() && !out.error) {
        out = completion{};
        return errc::malformed_response;
    }
    return {};
}

} // namespace sluice
