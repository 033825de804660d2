#include <sluice/parse/stream_assembler.hpp>

#include "detail/json_string.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

namespace sluice {

namespace {

using detail::append_json_string;

struct tool_state {
    bool seen = false;
    std::string id, type, name, arguments;
};

// The elements of JSON arrays that came in pieces, joined with ',' and without the
// brackets; null until one came.
struct joined_array {
    bool present = false;
    std::string elements;
};

struct choice_state {
    bool seen = false;
    std::string role, content, refusal, finish_reason;
    bool has_logprobs = false;
    joined_array logprobs_content, logprobs_refusal;
    std::vector<tool_state> tools; // by tool-call index; `tool_slots` of them in use
    std::size_t tool_slots = 0;
};

// Every chunk repeats the id, the model and the rest: comparing is cheaper than assigning
// the same bytes again, which this does per event.
void set_if(std::string& field, std::string_view value) {
    if (!value.empty() && value != field)
        field.assign(value);
}

// Appends the elements of the JSON array text `array` to `joined` (',' separated).
void append_elements(joined_array& joined, std::string_view array) {
    if (array.empty())
        return;
    joined.present = true;
    const std::size_t open = array.find('[');
    const std::size_t close = array.rfind(']');
    std::string_view inner = array.substr(open + 1, close - open - 1);
    const std::size_t first = inner.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos)
        return;
    inner = inner.substr(first, inner.find_last_not_of(" \t\r\n") + 1 - first);
    if (!joined.elements.empty())
        joined.elements += ',';
    joined.elements.append(inner);
}

void append_number(std::string& out, std::int64_t n) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, n).ptr;
    out.append(buf, end);
}

void append_string_or_null(std::string& out, const std::string& s) {
    if (s.empty())
        out += "null";
    else
        append_json_string(out, s);
}

void append_array_or_null(std::string& out, const joined_array& joined) {
    if (!joined.present) {
        out += "null";
        return;
    }
    out += '[';
    out += joined.elements;
    out += ']';
}

void append_tool_calls(std::string& out, const choice_state& c) {
    out += ",\"tool_calls\":[";
    bool first = true;
    for (std::size_t i = 0; i < c.tool_slots; ++i) {
        const tool_state& t = c.tools[i];
        if (!t.seen)
            continue;
        out += first ? "{\"id\":" : ",{\"id\":";
        first = false;
        append_json_string(out, t.id);
        out += ",\"type\":";
        append_json_string(out, t.type.empty() ? std::string_view("function") : t.type);
        out += ",\"function\":{\"name\":";
        append_json_string(out, t.name);
        out += ",\"arguments\":";
        append_json_string(out, t.arguments);
        out += "}}";
    }
    out += ']';
}

bool has_tool_calls(const choice_state& c) {
    for (std::size_t i = 0; i < c.tool_slots; ++i) {
        if (c.tools[i].seen)
            return true;
    }
    return false;
}

void append_choice(std::string& out, std::size_t index, const choice_state& c) {
    out += "{\"index\":";
    append_number(out, static_cast<std::int64_t>(index));
    out += ",\"message\":{\"role\":";
    append_json_string(out, c.role.empty() ? std::string_view("assistant") : c.role);
    out += ",\"content\":";
    append_string_or_null(out, c.content);
    if (!c.refusal.empty()) {
        out += ",\"refusal\":";
        append_json_string(out, c.refusal);
    }
    if (has_tool_calls(c))
        append_tool_calls(out, c);
    out += "},\"logprobs\":";
    if (c.has_logprobs) {
        out += "{\"content\":";
        append_array_or_null(out, c.logprobs_content);
        out += ",\"refusal\":";
        append_array_or_null(out, c.logprobs_refusal);
        out += '}';
    } else {
        out += "null";
    }
    out += ",\"finish_reason\":";
    append_string_or_null(out, c.finish_reason);
    out += '}';
}

} // namespace

struct stream_assembler::impl {
    bool any = false;
    std::string id, model, system_fingerprint, service_tier, usage_json, error_json;
    std::int64_t created = 0;
    std::optional<sluice::usage> usage;
    std::optional<provider_error> error;
    std::vector<choice_state> choices; // by choice index; `choice_slots` of them in use
    std::size_t choice_slots = 0;

    choice_state& choice_at(std::uint32_t index) {
        if (index >= choices.size())
            choices.resize(index + 1);
        choice_slots = std::max<std::size_t>(choice_slots, index + 1);
        return choices[index];
    }

    static tool_state& tool_at(choice_state& c, std::uint32_t index) {
        if (index >= c.tools.size())
            c.tools.resize(index + 1);
        c.tool_slots = std::max<std::size_t>(c.tool_slots, index + 1);
        return c.tools[index];
    }

    void merge_choice(const completion_chunk& chunk, const chunk_choice& delta) {
        choice_state& c = choice_at(delta.index);
        c.seen = true;
        if (!delta.logprobs.empty()) {
            c.has_logprobs = true;
            append_elements(c.logprobs_content, delta.logprobs_content);
            append_elements(c.logprobs_refusal, delta.logprobs_refusal);
        }
        set_if(c.finish_reason, delta.finish_reason);
        if (!delta.refusal.empty())
            c.refusal.append(delta.refusal);
        set_if(c.role, delta.role);
        c.content.append(delta.content);
        if (delta.tool_call_count == 0)
            return;
        for (const tool_call_delta& d : chunk.tool_calls_of(delta)) {
            tool_state& t = tool_at(c, d.index);
            t.seen = true;
            set_if(t.id, d.id);
            set_if(t.type, d.type);
            set_if(t.name, d.name);
            t.arguments.append(d.arguments);
        }
    }

    void merge_top(const completion_chunk& chunk) {
        set_if(id, chunk.id);
        set_if(model, chunk.model);
        set_if(system_fingerprint, chunk.system_fingerprint);
        set_if(service_tier, chunk.service_tier);
        // 0 is absent, as "" is for the strings: Azure's content-filter chunks carry
        // `"id":"","created":0`, and the SDK takes nothing from a chunk without an id.
        if (chunk.created && *chunk.created != 0)
            created = *chunk.created;
        if (chunk.usage) {
            usage = chunk.usage;
            usage_json.assign(chunk.usage_json);
        }
        if (chunk.error) {
            const chunk_error& e = *chunk.error;
            error = provider_error{std::string(e.message),
                                   std::string(e.type),
                                   std::string(e.code),
                                   std::string(e.param)};
            error_json.assign(e.json);
        }
    }
};

stream_assembler::stream_assembler()
    : impl_(std::make_unique<impl>()) {}
stream_assembler::~stream_assembler() = default;
stream_assembler::stream_assembler(stream_assembler&&) noexcept = default;
stream_assembler& stream_assembler::operator=(stream_assembler&&) noexcept = default;

error_code stream_assembler::add(const completion_chunk& chunk) {
    for (const chunk_choice& c : chunk.choices) {
        if (c.index >= max_index)
            return errc::malformed_response;
    }
    for (const tool_call_delta& d : chunk.tool_calls) {
        if (d.index >= max_index)
            return errc::malformed_response;
    }
    impl_->any = true;
    impl_->merge_top(chunk);
    for (const chunk_choice& c : chunk.choices)
        impl_->merge_choice(chunk, c);
    return {};
}

error_code stream_assembler::add_repeat(const completion_chunk& chunk) {
    // A refusal would be appended again (the only other piece the parser's shortcut keeps):
    // such a chunk is merged whole.
    if (chunk.choices.size() != 1 || !chunk.tool_calls.empty() ||
        !chunk.choices.front().refusal.empty() || !chunk.choices.front().logprobs.empty())
        return add(chunk);
    const chunk_choice& delta = chunk.choices.front();
    return add_text(delta.index, delta.content);
}

error_code stream_assembler::add_text(std::uint32_t index, std::string_view content) {
    impl& m = *impl_;
    // Runs for nearly every event: a choice already in use takes no bounds or size checks.
    if (index < m.choice_slots) {
        m.any = true;
        choice_state& c = m.choices[index];
        c.seen = true;
        c.content.append(content);
        return {};
    }
    if (index >= max_index)
        return errc::malformed_response;
    m.any = true;
    choice_state& c = m.choice_at(index);
    c.seen = true;
    c.content.append(content);
    return {};
}

bool stream_assembler::empty() const noexcept {
    return !impl_->any;
}

error_code stream_assembler::result(completion& out, completion_fields fields) const {
    const impl& m = *impl_;
    out = completion{};
    out.body_is_json = true; // of the body append_json writes, refused or not
    if (m.error) {
        // `{"error":"text"}` is JSON but no error object: the parser refuses it.
        if (m.error_json.starts_with('"'))
            return errc::malformed_response;
        out.error = m.error;
        return {};
    }
    // The parser's rule for a body with neither choices nor an error object.
    const auto end = m.choices.begin() + static_cast<std::ptrdiff_t>(m.choice_slots);
    if (std::none_of(m.choices.begin(), end, [](const choice_state& c) { return c.seen; }))
        return errc::malformed_response;
    out.usage = m.usage;
    if (fields != completion_fields::all)
        return {};
    out.id = m.id;
    out.model = m.model;
    for (std::size_t i = 0; i < m.choice_slots; ++i) {
        const choice_state& c = m.choices[i];
        if (!c.seen)
            continue;
        choice& ch = out.choices.emplace_back();
        ch.index = static_cast<std::uint32_t>(i);
        if (!c.content.empty())
            ch.content = c.content;
        ch.finish_reason = c.finish_reason;
        ch.has_tool_calls = has_tool_calls(c);
        ch.has_refusal = !c.refusal.empty();
    }
    return {};
}

void stream_assembler::append_json(std::string& out) const {
    const impl& m = *impl_;
    if (m.error) {
        out += "{\"error\":";
        out += m.error_json;
        out += '}';
        return;
    }
    out += "{\"id\":";
    append_json_string(out, m.id);
    out += ",\"object\":\"chat.completion\",\"created\":";
    append_number(out, m.created);
    out += ",\"model\":";
    append_json_string(out, m.model);
    out += ",\"choices\":[";
    bool first = true;
    for (std::size_t i = 0; i < m.choice_slots; ++i) {
        if (!m.choices[i].seen)
            continue;
        if (!first)
            out += ',';
        first = false;
        append_choice(out, i, m.choices[i]);
    }
    out += ']';
    if (m.usage) {
        out += ",\"usage\":";
        out += m.usage_json;
    }
    if (!m.service_tier.empty()) {
        out += ",\"service_tier\":";
        append_json_string(out, m.service_tier);
    }
    if (!m.system_fingerprint.empty()) {
        out += ",\"system_fingerprint\":";
        append_json_string(out, m.system_fingerprint);
    }
    out += '}';
}

void stream_assembler::reset() noexcept {
    impl& m = *impl_;
    m.any = false;
    m.id.clear();
    m.model.clear();
    m.system_fingerprint.clear();
    m.service_tier.clear();
    m.usage_json.clear();
    m.error_json.clear();
    m.created = 0;
    m.usage.reset();
    m.error.reset();
    for (std::size_t i = 0; i < m.choice_slots; ++i) {
        choice_state& c = m.choices[i];
        c.seen = c.has_logprobs = false;
        c.role.clear();
        c.content.clear();
        c.refusal.clear();
        c.finish_reason.clear();
        for (joined_array* a : {&c.logprobs_content, &c.logprobs_refusal}) {
            a->present = false;
            a->elements.clear();
        }
        for (std::size_t k = 0; k < c.tool_slots; ++k) {
            tool_state& t = c.tools[k];
            t.seen = false;
            t.id.clear();
            t.type.clear();
            t.name.clear();
            t.arguments.clear();
        }
        c.tool_slots = 0;
    }
    m.choice_slots = 0;
}

} // namespace sluice
