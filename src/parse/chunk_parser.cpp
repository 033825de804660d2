#include <sluice/parse/chunk_parser.hpp>

#include "parse/json_depth.hpp"
#include "parse/padded_input.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice {

namespace {

namespace od = simdjson::ondemand;

// A field's value, or the error that reaching it produced: every accessor on it reports that
// error, so the readers below need no separate check.
using value_result = simdjson::simdjson_result<od::value>;

std::string_view trim_end(std::string_view s) noexcept {
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool is_null(value_result v, bool& out) {
    od::json_type t;
    if (v.type().get(t))
        return false;
    out = t == od::json_type::null;
    return true;
}

// A string (unescaped into the parser's buffer), or null (left empty).
bool read_view(value_result v, std::string_view& out) {
    od::json_type t;
    if (v.type().get(t))
        return false;
    if (t == od::json_type::null)
        return !v.is_null().error();
    return !v.get_string().get(out);
}

// A string, null, or a number kept as its JSON text (servers send numeric error codes).
bool read_text(value_result v, std::string_view& out) {
    od::json_type t;
    if (v.type().get(t))
        return false;
    if (t != od::json_type::number)
        return read_view(v, out);
    if (v.raw_json_token().get(out))
        return false;
    out = trim_end(out);
    return true;
}

bool read_index(value_result v, std::uint32_t& out) {
    std::uint64_t n = 0;
    if (v.get_uint64().get(n) || n > std::numeric_limits<std::uint32_t>::max())
        return false;
    out = static_cast<std::uint32_t>(n);
    return true;
}

// Calls `on_field(key, value)` for each field of the object at `v`, in document order,
// until one returns false; null counts as an empty object.
template <class OnField>
bool each_field(value_result v, OnField&& on_field) {
    bool null = false;
    if (!is_null(v, null))
        return false;
    od::object object;
    if (null || v.get_object().get(object))
        return null;
    for (auto field : object) {
        od::raw_json_string key;
        if (field.key().get(key) || !on_field(key, field.value()))
            return false;
    }
    return true;
}

// Calls `on_element(value)` for each element of the array at `v` until one returns false;
// null counts as an empty array.
template <class OnElement>
bool each_element(value_result v, OnElement&& on_element) {
    bool null = false;
    if (!is_null(v, null))
        return false;
    od::array array;
    if (null || v.get_array().get(array))
        return null;
    for (auto element : array) {
        if (!on_element(element))
            return false;
    }
    return true;
}

// Past the closing quote of the JSON string token at `p` (its opening quote), or null when
// it does not end before `end`.
const char* string_token_end(const char* p, const char* end) noexcept {
    for (++p; p < end; ++p) {
        if (*p == '\\')
            ++p;
        else if (*p == '"')
            return p + 1;
    }
    return nullptr;
}

// 1: cannot stand in a JSON string as it is; 2: part of a multi-byte sequence.
constexpr auto string_byte_kind = [] {
    std::array<unsigned char, 256> k{};
    for (unsigned c = 0; c < 0x20; ++c)
        k[c] = 1;
    k['"'] = k['\\'] = 1;
    for (unsigned c = 0x80; c < 0x100; ++c)
        k[c] = 2;
    return k;
}();

// The first byte in [p, end) that cannot stand in a JSON string as it is (a quote, a
// backslash, a control character), or `end`; `wide` is set when a byte before it is part of a
// multi-byte sequence. Sixteen bytes a step where SSE2 is there: this runs for every event,
// and a piece of text is mostly shorter than that (a byte a step took half of the event's
// parse).
const char* plain_run_end(const char* p, const char* end, bool& wide) noexcept {
    unsigned seen = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1F);
    for (; end - p >= 16; p += 16) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i stop =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                         _mm_cmpeq_epi8(_mm_max_epu8(x, control), control)); // x <= 0x1F
        const auto stops = static_cast<unsigned>(_mm_movemask_epi8(stop));
        const auto high = static_cast<unsigned>(_mm_movemask_epi8(x)); // bytes >= 0x80
        if (stops != 0) {
            const auto at = static_cast<unsigned>(__builtin_ctz(stops));
            wide = wide || (high & ((1U << at) - 1)) != 0;
            return p + at;
        }
        wide = wide || high != 0;
    }
#endif
    for (; p < end; ++p) {
        const unsigned kind = string_byte_kind[static_cast<unsigned char>(*p)];
        if (kind & 1)
            break;
        seen |= kind;
    }
    wide = wide || seen != 0;
    return p;
}

bool has_line_break(std::string_view s) noexcept {
    return std::memchr(s.data(), '\n', s.size()) || std::memchr(s.data(), '\r', s.size());
}

// Whether `text` can stand between two quotes as a JSON string just as it is: no quote, no
// backslash (an escape is left to the full parse), no control character, valid UTF-8.
//
// This runs for every event: one table lookup per byte and no branch but the loop's (a test
// per byte for each of the four kinds took most of the shortcut's time).
bool plain_string_content(std::string_view text) noexcept {
    unsigned seen = 0;
    for (const char ch : text)
        seen |= string_byte_kind[static_cast<unsigned char>(ch)];
    if (seen & 1)
        return false;
    // Most pieces are a word or two of ASCII: no call for them.
    return seen == 0 || simdjson::validate_utf8(text.data(), text.size());
}

} // namespace

// Nearly every chunk of a stream is the one before it with another piece of text in
// `delta.content`: same id, model, created, index, same fields in the same order. When a
// chunk's bytes are those of the last chunk parsed in full outside that one string, the full
// parse would read the same fields with the same values (one valid string token replaced by
// another leaves the document valid and its structure unchanged), so only the new string is
// checked and read. Anything else, an escape in the text included, takes the full parse.
struct content_shape {
    std::string before;     // the bytes up to the content's opening quote, the quote included
    std::string after;      // the bytes from its closing quote on
    completion_chunk chunk; // what the full parse read, its views into `texts` (see `arm`)
    std::string texts;      // the strings of `chunk`: the workspace's parsers read on
    bool armed = false;
    bool framed_alone = false; // `match` may be used (see there)

    // Keeps the shape of a chunk just parsed in full when it is a plain content delta: one
    // choice, text in `delta.content` (its opening quote at `content_token`), nothing kept as
    // raw JSON (those views would point into bytes the next chunk replaces). The strings are
    // copied: the views `out` holds point into the workspace's string buffer, which the next
    // full parse of any stream sharing it overwrites.
    void arm(const char* data,
             std::size_t size,
             const char* content_token,
             const completion_chunk& out) {
        if (out.choices.size() != 1 || !out.tool_calls.empty() || out.error || out.usage ||
            !out.usage_json.empty() || !out.choices.front().logprobs.empty() || !content_token ||
            content_token < data || content_token >= data + size)
            return;
        const char* const close = string_token_end(content_token, data + size);
        if (!close)
            return;
        const auto open = static_cast<std::size_t>(content_token - data) + 1;
        before.assign(data, open);
        after.assign(close - 1, data + size);
        chunk.id = out.id;
        chunk.model = out.model;
        chunk.created = out.created;
        chunk.system_fingerprint = out.system_fingerprint;
        chunk.service_tier = out.service_tier;
        chunk.choices.assign(1, out.choices.front());
        chunk_choice& c = chunk.choices.front();
        c.content = {}; // each read sets it
        std::string_view* const kept[] = {&chunk.id,
                                          &chunk.model,
                                          &chunk.system_fingerprint,
                                          &chunk.service_tier,
                                          &c.role,
                                          &c.refusal,
                                          &c.finish_reason};
        std::size_t total = 0;
        for (const std::string_view* v : kept)
            total += v->size();
        texts.resize(total); // sized once: the views below stay put
        char* at = texts.data();
        for (std::string_view* v : kept) {
            if (v->empty()) { // most are: no copy
                *v = {};
                continue;
            }
            std::memcpy(at, v->data(), v->size());
            *v = std::string_view(at, v->size());
            at += v->size();
        }
        armed = true;
        // A refusal would be merged again with each repeat, and a line break would end the
        // event's line inside the bytes `match` compares.
        framed_alone = c.refusal.empty() && !has_line_break(before) && !has_line_break(after);
    }

    // `read` for bytes whose end is not known, such as those of a read holding many events:
    // the size of the chunk at their start when it is the last full parse with a new plain
    // content (its text is `content`), else 0. The text ends at its first quote, which a
    // plain string holds nowhere else. Only for a chunk with no refusal and no line break
    // outside its text (none inside: control characters are not plain), so that a framer can
    // take the bytes after it for the end of the event's line.
    std::size_t match(std::string_view bytes, std::string_view& content) const noexcept {
        if (!armed || !framed_alone || bytes.size() < before.size() + after.size() ||
            std::memcmp(bytes.data(), before.data(), before.size()) != 0)
            return 0;
        const char* const text = bytes.data() + before.size();
        // The last place the closing quote can be with `after` (which starts with it) whole.
        const char* const last = bytes.data() + bytes.size() - after.size();
        bool wide = false;
        const char* const q = plain_run_end(text, bytes.data() + bytes.size(), wide);
        if (q > last || *q != '"' || std::memcmp(q, after.data(), after.size()) != 0)
            return 0;
        const auto size = static_cast<std::size_t>(q - text);
        if (wide && !simdjson::validate_utf8(text, size))
            return 0;
        content = std::string_view(text, size);
        return static_cast<std::size_t>(q - bytes.data()) + after.size();
    }

    // Reads `data` as the last full parse with a new content; false when it is not that. The
    // content is a view into `data`: a plain string's text is its value, with nothing to
    // unescape. `chunk` has one choice and nothing else in its vectors and optionals (see
    // `arm`), so `out` is set field by field rather than copied whole: this runs per event.
    bool read(std::string_view data, completion_chunk& out) {
        if (!armed || data.size() < before.size() + after.size() ||
            data.compare(0, before.size(), before) != 0 ||
            data.compare(data.size() - after.size(), after.size(), after) != 0)
            return false;
        const std::string_view text =
            data.substr(before.size(), data.size() - before.size() - after.size());
        if (!plain_string_content(text))
            return false;
        out.id = chunk.id;
        out.model = chunk.model;
        out.created = chunk.created;
        out.system_fingerprint = chunk.system_fingerprint;
        out.service_tier = chunk.service_tier;
        out.choices.resize(1);
        out.choices.front() = chunk.choices.front();
        out.choices.front().content = text;
        out.tool_calls.clear();
        out.usage.reset();
        out.usage_json = {};
        out.error.reset();
        out.repeats_last = true;
        return true;
    }
};

// The parts kept as raw JSON are re-read from their own text: on-demand skips over them
// without checking what it skips, so each is first checked in full by the DOM parser (they
// are copied verbatim into assembled JSON, which must stay valid), then read by a second
// on-demand parser. Both read in place: the text lies inside the padded document.
struct chunk_workspace::impl {
    impl() {
        detail::limit_depth(parser);
        detail::limit_depth(sub_parser);
        detail::limit_depth(error_parser);
        detail::limit_depth(checker);
    }

    od::parser parser;
    od::parser sub_parser;   // usage and logprobs: nothing read there outlives the next use
    od::parser error_parser; // error strings are views into its buffer, kept to the end
    simdjson::dom::parser checker;
    detail::padded_input input;          // chunks without spare capacity are copied there
    const char* content_token = nullptr; // where the last `delta.content` read began

    // The object at `v` as checked raw text; `raw` stays empty for null. With `text`, a
    // string is accepted too, and its unescaped value stored there.
    bool raw_value(value_result v, std::string_view& raw, std::string_view* text = nullptr) {
        od::json_type t;
        if (v.type().get(t))
            return false;
        if (t == od::json_type::null)
            return !v.is_null().error();
        if (t == od::json_type::string && text) {
            if (v.raw_json_token().get(raw) || v.get_string().get(*text))
                return false;
        } else {
            od::object object;
            if (t != od::json_type::object || v.get_object().get(object) ||
                object.raw_json().get(raw))
                return false;
        }
        raw = trim_end(raw);
        return !checker.parse(raw.data(), raw.size(), false).error();
    }

    // Iterates the fields of the checked object text `raw` with `sub`.
    template <class OnField>
    static bool each_raw_field(od::parser& sub, std::string_view raw, OnField&& on_field) {
        od::document doc;
        od::object object;
        if (sub.iterate(raw.data(), raw.size(), raw.size() + parse_padding).get(doc) ||
            doc.get_object().get(object))
            return false;
        for (auto field : object) {
            od::raw_json_string key;
            if (field.key().get(key) || !on_field(key, field.value()))
                return false;
        }
        return true;
    }

    bool read_usage(value_result v, completion_chunk& out) {
        std::string_view raw;
        if (!raw_value(v, raw))
            return false;
        if (raw.empty())
            return true;
        usage u;
        const bool ok =
            each_raw_field(sub_parser, raw, [&](od::raw_json_string key, value_result value) {
                std::uint64_t* target = key == "prompt_tokens"       ? &u.prompt_tokens
                                        : key == "completion_tokens" ? &u.completion_tokens
                                        : key == "total_tokens"      ? &u.total_tokens
                                                                     : nullptr;
                return !target || !value.get_uint64().get(*target);
            });
        if (!ok)
            return false;
        out.usage = u;
        out.usage_json = raw;
        return true;
    }

    bool read_error(value_result v, completion_chunk& out) {
        std::string_view raw;
        chunk_error e;
        if (!raw_value(v, raw, &e.message))
            return false;
        if (raw.empty())
            return true;
        e.json = raw;
        if (raw.front() == '"') {
            out.error = e;
            return true;
        }
        const bool ok =
            each_raw_field(error_parser, raw, [&](od::raw_json_string key, value_result value) {
                std::string_view* target = key == "message" ? &e.message
                                           : key == "type"  ? &e.type
                                           : key == "code"  ? &e.code
                                           : key == "param" ? &e.param
                                                            : nullptr;
                return !target || read_text(value, *target);
            });
        if (ok)
            out.error = e;
        return ok;
    }

    bool read_logprobs(value_result v, chunk_choice& c) {
        std::string_view raw;
        if (!raw_value(v, raw))
            return false;
        if (raw.empty())
            return true;
        c.logprobs = raw;
        return each_raw_field(sub_parser, raw, [&](od::raw_json_string key, value_result value) {
            std::string_view* target = key == "content"   ? &c.logprobs_content
                                       : key == "refusal" ? &c.logprobs_refusal
                                                          : nullptr;
            if (!target)
                return true;
            bool null = false;
            if (!is_null(value, null))
                return false;
            if (null)
                return true;
            od::array array;
            if (value.get_array().get(array) || array.raw_json().get(*target))
                return false;
            *target = trim_end(*target);
            return true;
        });
    }

    bool read_tool_calls(value_result v, chunk_choice& c, completion_chunk& out) {
        return each_element(v, [&](value_result element) {
            tool_call_delta d;
            d.index = c.tool_call_count;
            const bool ok = each_field(element, [&](od::raw_json_string key, value_result value) {
                if (key == "index")
                    return read_index(value, d.index);
                if (key == "id")
                    return read_view(value, d.id);
                if (key == "type")
                    return read_view(value, d.type);
                if (key != "function")
                    return true;
                return each_field(value, [&](od::raw_json_string fkey, value_result fvalue) {
                    return fkey == "name"        ? read_view(fvalue, d.name)
                           : fkey == "arguments" ? read_view(fvalue, d.arguments)
                                                 : true;
                });
            });
            out.tool_calls.push_back(d);
            ++c.tool_call_count;
            return ok;
        });
    }

    bool read_choice(value_result v, chunk_choice& c, completion_chunk& out) {
        return each_field(v, [&](od::raw_json_string key, value_result value) {
            if (key == "index")
                return read_index(value, c.index);
            if (key == "finish_reason")
                return read_view(value, c.finish_reason);
            if (key == "logprobs")
                return read_logprobs(value, c);
            if (key != "delta")
                return true;
            return each_field(value, [&](od::raw_json_string dkey, value_result dvalue) {
                if (dkey == "content") {
                    std::string_view token;
                    const bool text = !dvalue.raw_json_token().get(token) && !token.empty() &&
                                      token.front() == '"';
                    content_token = text ? token.data() : nullptr; // null: no shortcut
                    return read_view(dvalue, c.content);
                }
                if (dkey == "role")
                    return read_view(dvalue, c.role);
                if (dkey == "tool_calls")
                    return read_tool_calls(dvalue, c, out);
                if (dkey == "refusal")
                    return read_view(dvalue, c.refusal);
                return true;
            });
        });
    }

    bool read_choices(value_result v, completion_chunk& out) {
        return each_element(v, [&](value_result element) {
            chunk_choice c;
            c.index = static_cast<std::uint32_t>(out.choices.size());
            c.first_tool_call = static_cast<std::uint32_t>(out.tool_calls.size());
            const bool ok = read_choice(element, c, out);
            out.choices.push_back(c);
            return ok;
        });
    }

    bool read_created(value_result v, completion_chunk& out) {
        bool null = false;
        if (!is_null(v, null))
            return false;
        std::int64_t created = 0;
        if (!null && v.get_int64().get(created))
            return false;
        if (!null)
            out.created = created;
        return true;
    }

    bool walk(const char* data, std::size_t size, std::size_t capacity, completion_chunk& out) {
        od::document doc;
        od::object root;
        if (parser.iterate(data, size, capacity).get(doc) || doc.get_object().get(root))
            return false;
        // One pass over the top level in document order; unknown fields are skipped unread.
        for (auto field : root) {
            od::raw_json_string key;
            if (field.key().get(key))
                return false;
            bool ok = true;
            if (key == "choices")
                ok = read_choices(field.value(), out);
            else if (key == "id")
                ok = read_view(field.value(), out.id);
            else if (key == "model")
                ok = read_view(field.value(), out.model);
            else if (key == "created")
                ok = read_created(field.value(), out);
            else if (key == "system_fingerprint")
                ok = read_view(field.value(), out.system_fingerprint);
            else if (key == "service_tier")
                ok = read_view(field.value(), out.service_tier);
            else if (key == "usage")
                ok = read_usage(field.value(), out);
            else if (key == "error")
                ok = read_error(field.value(), out);
            if (!ok)
                return false;
        }
        return true;
    }
};

namespace {

void clear(completion_chunk& c) noexcept {
    c.id = c.model = c.system_fingerprint = c.service_tier = c.usage_json = {};
    c.created.reset();
    c.choices.clear();
    c.tool_calls.clear();
    c.usage.reset();
    c.error.reset();
    c.repeats_last = false;
}

} // namespace

chunk_workspace::chunk_workspace()
    : impl_(std::make_unique<impl>()) {}
chunk_workspace::~chunk_workspace() = default;

// What one parser keeps: the shape of its stream's last full read, and its own workspace
// when it shares none.
struct chunk_parser::impl {
    explicit impl(chunk_workspace::impl& shared)
        : work(&shared) {}
    impl()
        : own(std::make_unique<chunk_workspace>())
        , work(own->impl_.get()) {}

    std::unique_ptr<chunk_workspace> own;
    chunk_workspace::impl* work;
    content_shape shape;
};

chunk_parser::chunk_parser()
    : impl_(std::make_unique<impl>()) {}
chunk_parser::chunk_parser(chunk_workspace& shared)
    : impl_(std::make_unique<impl>(*shared.impl_)) {}
chunk_parser::~chunk_parser() = default;
chunk_parser::chunk_parser(chunk_parser&&) noexcept = default;
chunk_parser& chunk_parser::operator=(chunk_parser&&) noexcept = default;

error_code chunk_parser::parse(const char* data,
                               std::size_t size,
                               std::size_t capacity,
                               completion_chunk& out) {
    content_shape& shape = impl_->shape;
    if (shape.read({data, size}, out))
        return {};
    chunk_workspace::impl& w = *impl_->work;
    clear(out);
    shape.armed = false;
    w.content_token = nullptr;
    w.input.pad(data, size, capacity);
    if (!w.walk(data, size, capacity, out)) {
        clear(out);
        return errc::malformed_response;
    }
    shape.arm(data, size, w.content_token, out);
    return {};
}

std::size_t chunk_parser::repeat_prefix(std::string_view bytes,
                                        std::uint32_t& index,
                                        std::string_view& content) const noexcept {
    const content_shape& shape = impl_->shape;
    const std::size_t size = shape.match(bytes, content);
    if (size != 0)
        index = shape.chunk.choices.front().index;
    return size;
}

} // namespace sluice
