#include <sluice/loadgen/prompt_source.hpp>

#include "detail/json_string.hpp"

#include <simdjson.h>

#include <charconv>
#include <iterator>
#include <stdexcept>
#include <utility>

// The bodies a benchmark sends: synthetic text and bodies, and a file's bodies with `stream`
// set.

namespace sluice {

namespace {

namespace od = simdjson::ondemand;

// Common English words that the usual BPE tokenizers (cl100k, o200k, Llama's) count as one
// token each after a space.
constexpr std::string_view vocabulary[] = {
    "the",   "of",    "and",    "to",     "in",    "is",      "you",   "that",   "it",    "he",
    "was",   "for",   "on",     "are",    "as",    "with",    "his",   "they",   "at",    "be",
    "this",  "have",  "from",   "or",     "one",   "had",     "by",    "word",   "but",   "not",
    "what",  "all",   "were",   "we",     "when",  "your",    "can",   "said",   "there", "use",
    "an",    "each",  "which",  "she",    "do",    "how",     "their", "if",     "will",  "up",
    "other", "about", "out",    "many",   "then",  "them",    "these", "so",     "some",  "her",
    "would", "make",  "like",   "him",    "into",  "time",    "has",   "look",   "two",   "more",
    "write", "go",    "see",    "number", "no",    "way",     "could", "people", "my",    "than",
    "first", "water", "been",   "call",   "who",   "its",     "now",   "find",   "long",  "down",
    "day",   "did",   "get",    "come",   "made",  "may",     "part",  "over",   "new",   "sound",
    "take",  "only",  "little", "work",   "know",  "place",   "year",  "live",   "me",    "back",
    "give",  "most",  "very",   "after",  "thing", "our",     "just",  "name",   "good",  "man",
    "think", "say",   "great",  "where",  "help",  "through", "much",  "before",
};

std::string_view trim_right(std::string_view s) {
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

// Byte ranges [first, second) of the values of every top-level "stream" key of `body`, and
// whether the object has any field at all.
std::pair<std::vector<std::pair<std::size_t, std::size_t>>, bool>
stream_values(const simdjson::padded_string& body) {
    od::parser parser;
    od::document doc;
    od::object object;
    if (parser.iterate(body).get(doc) || doc.get_object().get(object))
        throw std::invalid_argument("the request body is not a JSON object");
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    bool any = false;
    for (auto field : object) {
        std::string_view key;
        if (field.unescaped_key().get(key))
            throw std::invalid_argument("the request body is not valid JSON");
        any = true;
        if (key != "stream")
            continue; // the iteration skips the value
        od::value value;
        od::json_type type;
        if (field.value().get(value) || value.type().get(type) || type != od::json_type::boolean)
            throw std::invalid_argument("the request body's \"stream\" is not true or false");
        const std::string_view token = trim_right(value.raw_json_token());
        const auto at = static_cast<std::size_t>(token.data() - body.data());
        spans.emplace_back(at, at + token.size());
    }
    return {std::move(spans), any};
}

} // namespace

std::string synthetic_text(std::uint32_t tokens, std::mt19937_64& rng) {
    std::uniform_int_distribution<std::size_t> pick(0, std::size(vocabulary) - 1);
    std::string text;
    text.reserve(std::size_t(tokens) * 6);
    for (std::uint32_t i = 0; i < tokens; ++i) {
        if (i > 0)
            text += ' ';
        text.append(vocabulary[pick(rng)]);
    }
    return text;
}

std::string synthetic_body(std::string_view model,
                           std::string_view text,
                           std::uint32_t max_tokens,
                           bool stream,
                           bool ignore_eos) {
    // One allocation per body: room for the fixed text, the strings and a few escapes.
    std::string body;
    body.reserve(160 + model.size() + text.size() + text.size() / 8);
    body += "{\"model\":";
    detail::append_json_string(body, model);
    body += ",\"messages\":[{\"role\":\"user\",\"content\":";
    detail::append_json_string(body, text);
    body += "}],\"max_tokens\":";
    char digits[16];
    body.append(digits, std::to_chars(digits, digits + sizeof digits, max_tokens).ptr);
    body += stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"
                   : ",\"stream\":false";
    if (ignore_eos)
        body += ",\"ignore_eos\":true";
    body += '}';
    return body;
}

std::string with_stream(std::string_view body, bool stream) {
    const simdjson::padded_string padded(body);
    const auto [spans, any] = stream_values(padded);
    const std::string_view value = stream ? "true" : "false";
    std::string out;
    out.reserve(body.size() + 16);
    if (spans.empty()) {
        const std::size_t open = body.find('{'); // the object's, found by the parse above
        out.append(body.substr(0, open + 1));
        out += "\"stream\":";
        out.append(value);
        if (any)
            out += ',';
        out.append(body.substr(open + 1));
        return out;
    }
    std::size_t from = 0;
    for (const auto& [first, last] : spans) {
        out.append(body.substr(from, first - from));
        out.append(value);
        from = last;
    }
    out.append(body.substr(from));
    return out;
}

} // namespace sluice
