// The completion parser (src/parse/completion_parser.cpp) on arbitrary bodies: a body with
// simdjson's padding in place and the same body without spare capacity (the parser copies it)
// give the same completion, and body_is_json agrees with is_json().
#include "fuzz_support.hpp"

#include <sluice/http_response.hpp>
#include <sluice/parse/completion_parser.hpp>

#include <memory>

using namespace sluice;

namespace {

bool same(const completion& a, const completion& b) {
    if (a.id != b.id || a.model != b.model || a.body_is_json != b.body_is_json ||
        a.choices.size() != b.choices.size() || a.usage.has_value() != b.usage.has_value() ||
        a.error.has_value() != b.error.has_value())
        return false;
    for (std::size_t i = 0; i < a.choices.size(); ++i) {
        const choice& x = a.choices[i];
        const choice& y = b.choices[i];
        if (x.index != y.index || x.content != y.content || x.finish_reason != y.finish_reason ||
            x.has_tool_calls != y.has_tool_calls || x.has_refusal != y.has_refusal)
            return false;
    }
    if (a.usage && (a.usage->prompt_tokens != b.usage->prompt_tokens ||
                    a.usage->completion_tokens != b.usage->completion_tokens ||
                    a.usage->total_tokens != b.usage->total_tokens))
        return false;
    if (a.error && (a.error->message != b.error->message || a.error->type != b.error->type ||
                    a.error->code != b.error->code || a.error->param != b.error->param))
        return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // As the transport hands it over: the body with parse_padding spare bytes.
    std::string padded;
    padded.reserve(size + parse_padding);
    padded.assign(reinterpret_cast<const char*>(data), size);
    // Exactly `size` bytes on the heap, so reading past them is caught.
    const auto tight = std::make_unique<char[]>(size == 0 ? 1 : size);
    std::copy(data, data + size, tight.get());

    static completion_parser parser; // reused, as the engine reuses one per loop
    completion a, b;
    const error_code ea = parser.parse(padded, a);
    const error_code eb = parser.parse(tight.get(), size, size, b);
    SLUICE_FUZZ_CHECK(ea == eb);
    SLUICE_FUZZ_CHECK(same(a, b));
    SLUICE_FUZZ_CHECK(a.body_is_json == parser.is_json(padded));
    // A fresh parser agrees with the reused one: no state leaks from one body to the next.
    completion_parser fresh;
    completion c;
    SLUICE_FUZZ_CHECK(fresh.parse(padded, c) == ea);
    SLUICE_FUZZ_CHECK(same(a, c));
    return 0;
}
