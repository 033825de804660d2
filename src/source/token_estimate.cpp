#include <sluice/source/token_estimate.hpp>

#include "detail/trim.hpp"
#include "source/body_walk.hpp"
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <string>

namespace sluice {
namespace {

namespace sj = simdjson;
namespace od = simdjson::ondemand;
using value_result = sj::simdjson_result<od::value>;
using detail::body_walk;

// A fixed charge per image part: OpenAI bills a low-detail image at 85 tokens and a
// high-detail one at 85 plus 170 per 512-px tile. Without the image's size, the base charge
// is the only honest number; the server's usage corrects the books afterwards.
constexpr std::uint64_t tokens_per_image = 85;

std::string_view trim_right(std::string_view s) noexcept {
    return detail::trim_right(s, detail::json_blanks);
}

// One pass over a body: counts what the estimate needs and checks every value it passes, so
// that the pass also answers whether the body is JSON. A value of the wrong shape for the
// estimate is still checked; it only clears `w.shaped`.
class body_walker {
public:
    body_walker(od::document& doc, detail::body_check check, body_walk& w)
        : doc_(doc)
        , check_all_(check == detail::body_check::all)
        , w_(w) {}

    sj::error_code walk(od::object& body, int depth) {
        return detail::for_each_member(body, [&](std::string_view key, od::value& value) {
            return top_field(key, value, depth + 1);
        });
    }

private:
    // A value the estimate does not read: checked when the caller wants all of the body
    // checked, else left for on-demand to skip.
    sj::error_code check(od::value& v, int depth) {
        return check_all_ ? detail::check_json(v, detail::big_integers::refuse, depth)
                          : sj::SUCCESS;
    }

    // A value the estimate wanted in another shape: checked, and the estimate falls back.
    sj::error_code misshapen(od::value& v, int depth) {
        w_.shaped = false;
        return check(v, depth);
    }

    sj::error_code top_field(std::string_view key, od::value& value, int depth) {
        if (key == "messages")
            return messages(value, depth);
        if (key == "tools" || key == "functions")
            return raw_length(value, depth);
        if (key == "max_completion_tokens")
            return positive_integer(value, depth, w_.max_completion_tokens);
        if (key == "max_tokens")
            return positive_integer(value, depth, w_.max_tokens);
        if (key == "n") {
            std::uint64_t n = 0;
            auto err = positive_integer(value, depth, n);
            w_.n = n ? n : 1;
            return err;
        }
        if (key == "model" && !w_.model && !w_.model_not_string) {
            std::string_view model;
            if (!value.get_string().get(model)) {
                w_.model = model;
                return sj::SUCCESS;
            }
            w_.model_not_string = true;
        } else if (key == "stream" && !w_.has_stream) {
            w_.has_stream = true;
            if (!value.get_bool().get(w_.stream))
                return sj::SUCCESS;
            w_.stream_not_bool = true;
        }
        return check(value, depth);
    }

    sj::error_code messages(od::value& v, int depth) {
        od::array list;
        if (v.get_array().get(list))
            return misshapen(v, depth);
        return detail::for_each_element(
            list, [&](od::value& message) { return add_message(message, depth + 1); });
    }

    sj::error_code add_message(od::value& v, int depth) {
        od::object message;
        if (v.get_object().get(message))
            return misshapen(v, depth);
        ++w_.messages;
        return detail::for_each_member(message, [&](std::string_view key, od::value& value) {
            if (key == "content")
                return add_content(value, depth + 1);
            if (key == "name")
                return add_string(value, depth + 1);
            if (key == "tool_calls")
                return raw_length(value, depth + 1); // the assistant's calls are prompt text now
            return check(value, depth + 1);
        });
    }

    sj::error_code add_content(od::value& v, int depth) {
        od::json_type type;
        if (auto err = v.type().get(type))
            return err;
        if (type == od::json_type::string)
            return add_string(v, depth);
        if (type != od::json_type::array)
            return check(v, depth); // null content (tool calls); anything else carries no text
        od::array parts;
        if (auto err = v.get_array().get(parts))
            return err;
        return detail::for_each_element(parts,
                                        [&](od::value& part) { return add_part(part, depth + 1); });
    }

    // One entry of a content array: `{"type":"text","text":...}` counts its text,
    // `{"type":"image_url",...}` (or `input_image`) counts as one image; other parts (audio,
    // files) are not estimated.
    sj::error_code add_part(od::value& v, int depth) {
        od::object part;
        if (v.get_object().get(part))
            return misshapen(v, depth);
        bool image = false;
        const sj::error_code err =
            detail::for_each_member(part, [&](std::string_view key, od::value& value) {
                if (key == "text")
                    return add_string(value, depth + 1);
                if (key == "type") {
                    std::string_view type;
                    if (value.get_string().get(type))
                        return misshapen(value, depth + 1);
                    image =
                        image || type == "image_url" || type == "input_image" || type == "image";
                    return sj::SUCCESS;
                }
                image = image || key == "image_url";
                return check(value, depth + 1);
            });
        if (err)
            return err;
        w_.images += image ? 1 : 0;
        return sj::SUCCESS;
    }

    sj::error_code add_string(od::value& v, int depth) {
        std::string_view s;
        if (v.get_string().get(s))
            return misshapen(v, depth);
        w_.chars += detail::code_points(s);
        return sj::SUCCESS;
    }

    // Length of a value's JSON text as written (tool definitions are billed as the text the
    // provider renders from them; their JSON length is a close, conservative stand-in): from
    // its first byte to where the document stands once it is checked.
    sj::error_code raw_length(od::value& v, int depth) {
        std::string_view raw;
        if (auto err = raw_json(v, depth).get(raw))
            return err;
        w_.chars += trim_right(raw).size();
        return sj::SUCCESS;
    }

    // A value's text: checked and measured from where the document stands before and after it,
    // or skipped over unchecked.
    sj::simdjson_result<std::string_view> raw_json(od::value& v, int depth) {
        if (check_all_) {
            const char* start = v.raw_json_token().data();
            if (auto err = check(v, depth))
                return err;
            // A body's value is followed by its object's brace at least: never past the end.
            const char* end = nullptr;
            if (auto err = doc_.current_location().get(end))
                return err;
            return std::string_view(start, static_cast<std::size_t>(end - start));
        }
        od::json_type type;
        if (auto err = v.type().get(type))
            return err;
        if (type == od::json_type::array) {
            od::array a;
            if (auto err = v.get_array().get(a))
                return err;
            return a.raw_json();
        }
        if (type == od::json_type::object) {
            od::object o;
            if (auto err = v.get_object().get(o))
                return err;
            return o.raw_json();
        }
        return v.raw_json_token();
    }

    // A positive integer, or 0 when the value is anything else (the field then counts as
    // unset; a value that is not an integer is still checked).
    sj::error_code positive_integer(od::value& v, int depth, std::uint64_t& out) {
        std::int64_t i = 0;
        if (v.get_int64().get(i)) {
            out = 0;
            return check(v, depth);
        }
        out = i > 0 ? static_cast<std::uint64_t>(i) : 0;
        return sj::SUCCESS;
    }

    od::document& doc_;
    bool check_all_;
    body_walk& w_;
};

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

} // namespace

namespace detail {

sj::error_code
walk_body(od::document& doc, od::object& body, int depth, body_check check, body_walk& w) {
    return body_walker(doc, check, w).walk(body, depth);
}

token_estimate
finish_estimate(bool ok, const body_walk& t, std::size_t body_size, const estimate_options& opts) {
    token_estimate estimate;
    if (!ok || !t.shaped) {
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

} // namespace detail

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
    od::object object;
    detail::body_walk w;
    const bool ok =
        !state_->parser.iterate(sj::padded_string_view(buf.data(), body.size(), buf.capacity()))
             .get(doc) &&
        !doc.get_object().get(object) &&
        !detail::walk_body(doc, object, 1, detail::body_check::read_only, w) && detail::at_end(doc);
    return detail::finish_estimate(ok, w, body.size(), opts_);
}

token_estimate estimate_tokens(std::string_view body, const estimate_options& opts) {
    token_estimator estimator(opts);
    return estimator(body);
}

} // namespace sluice
