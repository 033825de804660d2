#include <sluice/source/token_estimate.hpp>

#include "detail/trim.hpp"
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <string>

namespace sluice {
namespace {

namespace sj = simdjson;
namespace od = simdjson::ondemand;

// A fixed charge per image part: OpenAI bills a low-detail image at 85 tokens and a
// high-detail one at 85 plus 170 per 512-px tile. Without the image's size, the base charge
// is the only honest number; the server's usage corrects the books afterwards.
constexpr std::uint64_t tokens_per_image = 85;

// What the walk over a body has counted so far.
struct tally {
    std::uint64_t chars = 0;    // code points of text, plus raw JSON bytes of tool definitions
    std::uint64_t images = 0;   // image parts, charged tokens_per_image each
    std::uint64_t messages = 0; // entries of `messages`
    std::uint64_t max_completion_tokens = 0;
    std::uint64_t max_tokens = 0;
    std::uint64_t n = 1;
};

// Providers count characters, not bytes: a UTF-8 code point is every byte that is not a
// continuation byte (10xxxxxx).
std::uint64_t code_points(std::string_view s) noexcept {
    std::uint64_t count = 0;
    for (const unsigned char c : s)
        count += (c & 0xC0) != 0x80;
    return count;
}

std::string_view trim_right(std::string_view s) noexcept {
    return detail::trim_right(s, detail::json_blanks);
}

// Length of a value's JSON text as written (tool definitions are billed as the text the
// provider renders from them; their JSON length is a close, conservative stand-in).
sj::error_code raw_length(od::value& v, std::uint64_t& out) {
    od::json_type type;
    if (auto err = v.type().get(type))
        return err;
    std::string_view raw;
    if (type == od::json_type::array) {
        od::array a;
        if (auto err = v.get_array().get(a))
            return err;
        if (auto err = a.raw_json().get(raw))
            return err;
    } else if (type == od::json_type::object) {
        od::object o;
        if (auto err = v.get_object().get(o))
            return err;
        if (auto err = o.raw_json().get(raw))
            return err;
    } else {
        raw = v.raw_json_token();
    }
    out += trim_right(raw).size();
    return sj::SUCCESS;
}

sj::error_code add_string(od::value& v, std::uint64_t& chars) {
    std::string_view s;
    if (auto err = v.get_string().get(s))
        return err;
    chars += code_points(s);
    return sj::SUCCESS;
}

// One entry of a content array: `{"type":"text","text":...}` counts its text,
// `{"type":"image_url",...}` (or `input_image`) counts as one image; other parts (audio,
// files) are not estimated.
sj::error_code add_part(od::value& v, tally& t) {
    od::object part;
    if (auto err = v.get_object().get(part))
        return err;
    bool image = false;
    for (auto field : part) {
        std::string_view key;
        if (auto err = field.unescaped_key().get(key))
            return err;
        od::value value;
        if (auto err = field.value().get(value))
            return err;
        if (key == "text") {
            if (auto err = add_string(value, t.chars))
                return err;
        } else if (key == "image_url") {
            image = true;
        } else if (key == "type") {
            std::string_view type;
            if (auto err = value.get_string().get(type))
                return err;
            image = image || type == "image_url" || type == "input_image" || type == "image";
        }
    }
    t.images += image ? 1 : 0;
    return sj::SUCCESS;
}

sj::error_code add_content(od::value& v, tally& t) {
    od::json_type type;
    if (auto err = v.type().get(type))
        return err;
    if (type == od::json_type::string)
        return add_string(v, t.chars);
    if (type != od::json_type::array)
        return sj::SUCCESS; // null content (tool calls); anything else carries no text
    od::array parts;
    if (auto err = v.get_array().get(parts))
        return err;
    for (auto part : parts) {
        od::value pv;
        if (auto err = part.get(pv))
            return err;
        if (auto err = add_part(pv, t))
            return err;
    }
    return sj::SUCCESS;
}

sj::error_code add_message(od::value& v, tally& t) {
    od::object message;
    if (auto err = v.get_object().get(message))
        return err;
    ++t.messages;
    for (auto field : message) {
        std::string_view key;
        if (auto err = field.unescaped_key().get(key))
            return err;
        od::value value;
        if (auto err = field.value().get(value))
            return err;
        sj::error_code err = sj::SUCCESS;
        if (key == "content")
            err = add_content(value, t);
        else if (key == "name")
            err = add_string(value, t.chars);
        else if (key == "tool_calls")
            err = raw_length(value, t.chars); // the assistant's calls are prompt text now
        if (err)
            return err;
    }
    return sj::SUCCESS;
}

// A positive integer, or 0 when the value is anything else (the field then counts as unset).
std::uint64_t positive_integer(od::value& v) {
    std::int64_t i = 0;
    if (v.get_int64().get(i) || i <= 0)
        return 0;
    return static_cast<std::uint64_t>(i);
}

sj::error_code walk(od::document& doc, tally& t) {
    od::object body;
    if (auto err = doc.get_object().get(body))
        return err;
    for (auto field : body) {
        std::string_view key;
        if (auto err = field.unescaped_key().get(key))
            return err;
        od::value value;
        if (auto err = field.value().get(value))
            return err;
        if (key == "messages") {
            od::array messages;
            if (auto err = value.get_array().get(messages))
                return err;
            for (auto message : messages) {
                od::value mv;
                if (auto err = message.get(mv))
                    return err;
                if (auto err = add_message(mv, t))
                    return err;
            }
        } else if (key == "tools" || key == "functions") {
            if (auto err = raw_length(value, t.chars))
                return err;
        } else if (key == "max_completion_tokens") {
            t.max_completion_tokens = positive_integer(value);
        } else if (key == "max_tokens") {
            t.max_tokens = positive_integer(value);
        } else if (key == "n") {
            const std::uint64_t n = positive_integer(value);
            t.n = n ? n : 1;
        }
    }
    // Trailing bytes after the object make the body invalid JSON; past the end of the
    // document, current_location() answers OUT_OF_BOUNDS.
    const char* trailing = nullptr;
    return doc.current_location().get(trailing) == sj::OUT_OF_BOUNDS ? sj::SUCCESS
                                                                     : sj::TRAILING_CONTENT;
}

std::uint64_t tokens_for_chars(std::uint64_t chars, double chars_per_token) noexcept {
    // A non-positive ratio is a configuration error caught by validation; count one token per
    // character rather than divide by zero.
    const double ratio = chars_per_token > 0 ? chars_per_token : 1.0;
    return static_cast<std::uint64_t>(std::ceil(static_cast<double>(chars) / ratio));
}

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) noexcept {
    std::uint64_t product = 0;
    return __builtin_mul_overflow(a, b, &product) ? std::numeric_limits<std::uint64_t>::max()
                                                  : product;
}

// The estimate of a parsed body (`ok`) or, for one that is not valid JSON, from its length.
token_estimate
finish_estimate(bool ok, const tally& t, std::size_t body_size, const estimate_options& opts) {
    token_estimate estimate;
    if (!ok) {
        estimate.prompt = tokens_for_chars(body_size, opts.chars_per_token);
        estimate.completion = opts.default_max_tokens;
        return estimate;
    }
    estimate.prompt = tokens_for_chars(t.chars, opts.chars_per_token) +
                      t.images * tokens_per_image + t.messages * opts.per_message_overhead +
                      opts.per_request_overhead;
    const std::uint64_t max_completion = t.max_completion_tokens ? t.max_completion_tokens
                                         : t.max_tokens          ? t.max_tokens
                                                                 : opts.default_max_tokens;
    estimate.completion = saturating_mul(max_completion, t.n);
    return estimate;
}

} // namespace

struct token_estimator::state {
    od::parser parser;
    std::string buffer; // the body plus simdjson's padding, reused
};

token_estimator::token_estimator(const estimate_options& opts)
    : opts_(opts)
    , state_(std::make_unique<state>()) {}

token_estimator::~token_estimator() = default;
token_estimator::token_estimator(token_estimator&&) noexcept = default;
token_estimator& token_estimator::operator=(token_estimator&&) noexcept = default;

token_estimate token_estimator::operator()(std::string_view body) {
    // The caller's bytes have no padding: copied once into a buffer that keeps its capacity.
    std::string& buf = state_->buffer;
    if (buf.capacity() < body.size() + sj::SIMDJSON_PADDING)
        buf.reserve(body.size() + sj::SIMDJSON_PADDING);
    buf.assign(body);
    od::document doc;
    tally t;
    const bool ok =
        !state_->parser.iterate(sj::padded_string_view(buf.data(), body.size(), buf.capacity()))
             .get(doc) &&
        !walk(doc, t);
    return finish_estimate(ok, t, body.size(), opts_);
}

token_estimate estimate_tokens(std::string_view body, const estimate_options& opts) {
    token_estimator estimator(opts);
    return estimator(body);
}

} // namespace sluice
