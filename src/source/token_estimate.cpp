#include <sluice/source/token_estimate.hpp>

#include "source/body_walk.hpp"
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <string>

namespace sluice {
namespace {

namespace sj = simdjson;
namespace dom = simdjson::dom;
using detail::body_walk;
using detail::child_positions;
using detail::value_spans;

// A fixed charge per image part: OpenAI bills a low-detail image at 85 tokens and a
// high-detail one at 85 plus 170 per 512-px tile. Without the image's size, the base charge
// is the only honest number; the server's usage corrects the books afterwards.
constexpr std::uint64_t tokens_per_image = 85;

// The first `stream` member: the only one the ids-only pass of the reader reads as well.
void read_stream(dom::element value, body_walk& w) {
    w.has_stream = true;
    w.stream_not_bool = value.get_bool().get(w.stream) != sj::SUCCESS;
}

// One pass over a body the DOM parser accepted, counting what the estimate needs. A value of the
// wrong shape for the estimate only clears `w.shaped`.
class body_walker {
public:
    explicit body_walker(body_walk& w)
        : w_(w) {}

    void walk(dom::object body, child_positions& fields) {
        std::size_t k = 0;
        for (const dom::key_value_pair field : body)
            top_field(field.key, field.value, fields, k++);
    }

private:
    void
    top_field(std::string_view key, dom::element value, child_positions& fields, std::size_t k) {
        if (key == "messages")
            return messages(value, fields, k);
        if (key == "tools" || key == "functions")
            return raw_length(fields, k);
        if (key == "max_completion_tokens")
            return positive_integer(value, w_.max_completion_tokens);
        if (key == "max_tokens")
            return positive_integer(value, w_.max_tokens);
        if (key == "n") {
            std::uint64_t n = 0;
            positive_integer(value, n);
            w_.n = n ? n : 1;
            return;
        }
        if (key == "model" && !w_.model && !w_.model_not_string) {
            std::string_view model;
            if (!value.get_string().get(model))
                w_.model = model;
            else
                w_.model_not_string = true;
        } else if (key == "stream" && !w_.has_stream) {
            read_stream(value, w_);
        }
    }

    void messages(dom::element v, child_positions& fields, std::size_t k) {
        dom::array list;
        if (v.get_array().get(list)) {
            w_.shaped = false;
            return;
        }
        // The places of the messages, found only if one has tool calls to measure.
        child_positions places(fields, k, false);
        std::size_t i = 0;
        for (const dom::element message : list)
            add_message(message, places, i++);
    }

    void add_message(dom::element v, child_positions& messages, std::size_t i) {
        dom::object message;
        if (v.get_object().get(message)) {
            w_.shaped = false;
            return;
        }
        ++w_.messages;
        child_positions fields(messages, i, true);
        std::size_t k = 0;
        for (const dom::key_value_pair field : message) {
            if (field.key == "content")
                add_content(field.value);
            else if (field.key == "name")
                add_string(field.value);
            else if (field.key == "tool_calls")
                raw_length(fields, k); // the assistant's calls are prompt text now
            ++k;
        }
    }

    void add_content(dom::element v) {
        if (v.is_string())
            return add_string(v);
        dom::array parts;
        if (v.get_array().get(parts))
            return; // null content (tool calls); anything else carries no text
        for (const dom::element part : parts)
            add_part(part);
    }

    // One entry of a content array: `{"type":"text","text":...}` counts its text,
    // `{"type":"image_url",...}` (or `input_image`) counts as one image; other parts (audio,
    // files) are not estimated.
    void add_part(dom::element v) {
        dom::object part;
        if (v.get_object().get(part)) {
            w_.shaped = false;
            return;
        }
        bool image = false;
        for (const dom::key_value_pair field : part) {
            if (field.key == "text") {
                add_string(field.value);
            } else if (field.key == "type") {
                std::string_view type;
                if (field.value.get_string().get(type))
                    w_.shaped = false;
                else
                    image =
                        image || type == "image_url" || type == "input_image" || type == "image";
            } else {
                image = image || field.key == "image_url";
            }
        }
        w_.images += image ? 1 : 0;
    }

    void add_string(dom::element v) {
        std::string_view s;
        if (v.get_string().get(s))
            w_.shaped = false;
        else
            w_.chars += detail::code_points(s);
    }

    // Length of a value's JSON text as written (tool definitions are billed as the text the
    // provider renders from them; their JSON length is a close, conservative stand-in).
    void raw_length(child_positions& container, std::size_t k) {
        w_.chars += container.spans().text(container.at(k)).size();
    }

    // A positive integer, or 0 when the value is anything else (the field then counts as
    // unset).
    static void positive_integer(dom::element v, std::uint64_t& out) {
        std::int64_t i = 0;
        out = !v.get_int64().get(i) && i > 0 ? static_cast<std::uint64_t>(i) : 0;
    }

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

void walk_body(dom::object body, const value_spans& spans, std::uint32_t body_at, body_walk& w) {
    child_positions fields(spans, body_at, true);
    body_walker(w).walk(body, fields);
}

void walk_stream(dom::object body, body_walk& w) {
    for (const dom::key_value_pair field : body)
        if (field.key == "stream")
            return read_stream(field.value, w);
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
    dom::parser parser;
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
    dom::element root;
    dom::object object;
    detail::body_walk w;
    // The whole body is validated: one that is not JSON anywhere is estimated by its length.
    const bool ok = !state_->parser.parse(buf.data(), body.size(), false).get(root) &&
                    !root.get_object().get(object);
    if (ok) {
        const value_spans spans(state_->parser, buf.data());
        detail::walk_body(object, spans, value_spans::root, w);
    }
    return detail::finish_estimate(ok, w, body.size(), opts_);
}

token_estimate estimate_tokens(std::string_view body, const estimate_options& opts) {
    token_estimator estimator(opts);
    return estimator(body);
}

} // namespace sluice
