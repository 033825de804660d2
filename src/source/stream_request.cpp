#include <sluice/source/stream_request.hpp>

#include <simdjson.h>

#include <string_view>

namespace sluice {

namespace {

namespace od = simdjson::ondemand;

struct stream_fields {
    bool stream = false;
    bool has_options = false;   // a `stream_options` object
    bool says_usage = false;    // it has `include_usage`, whatever its value
    std::size_t options_at = 0; // offset of that object's '{' in the body
    bool options_empty = false; // it is `{}`
};

// Reads the top level of `body` (a padded copy of it: offsets into it are offsets into the
// body). False when it is not a JSON object.
bool read_fields(od::parser& parser, simdjson::padded_string_view body, stream_fields& f) {
    od::document doc;
    od::object root;
    if (parser.iterate(body).get(doc) || doc.get_object().get(root))
        return false;
    for (auto field : root) {
        std::string_view key;
        if (field.unescaped_key().get(key))
            return false;
        if (key == "stream") {
            bool on = false;
            f.stream = !field.value().get_bool().get(on) && on;
        } else if (key == "stream_options") {
            od::object options;
            if (field.value().get_object().get(options))
                continue;
            std::string_view raw;
            if (options.raw_json().get(raw))
                return false;
            f.has_options = true;
            f.options_at = static_cast<std::size_t>(raw.data() - body.data());
            f.options_empty = raw.find('"') == std::string_view::npos;
            // Only a key can hold this text unescaped at the object's own level or below; a
            // nested one would be a false "says", which only leaves the body as written.
            f.says_usage = raw.find("\"include_usage\"") != std::string_view::npos;
        }
    }
    return true;
}

} // namespace

struct stream_request_preparer::state {
    od::parser parser;
    std::string buffer; // the body plus simdjson's padding, reused
};

stream_request_preparer::stream_request_preparer()
    : state_(std::make_unique<state>()) {}
stream_request_preparer::~stream_request_preparer() = default;
stream_request_preparer::stream_request_preparer(stream_request_preparer&&) noexcept = default;
stream_request_preparer&
stream_request_preparer::operator=(stream_request_preparer&&) noexcept = default;

bool stream_request_preparer::operator()(std::string& body) {
    if (body.find("\"stream\"") == std::string::npos)
        return false;
    // The caller's bytes have no padding: copied once into a buffer that keeps its capacity.
    std::string& buf = state_->buffer;
    if (buf.capacity() < body.size() + simdjson::SIMDJSON_PADDING)
        buf.reserve(body.size() + simdjson::SIMDJSON_PADDING);
    buf.assign(body);
    stream_fields f;
    if (!read_fields(state_->parser,
                     simdjson::padded_string_view(buf.data(), body.size(), buf.capacity()),
                     f) ||
        !f.stream)
        return false;
    if (f.says_usage)
        return true;
    if (f.has_options) {
        body.insert(f.options_at + 1,
                    f.options_empty ? "\"include_usage\":true" : "\"include_usage\":true,");
        return true;
    }
    // The object's closing brace is its last non-blank byte.
    const std::size_t close = body.find_last_not_of(" \t\r\n");
    body.insert(close, ",\"stream_options\":{\"include_usage\":true}");
    return true;
}

bool prepare_stream_request(std::string& body) {
    stream_request_preparer prepare;
    return prepare(body);
}

} // namespace sluice
