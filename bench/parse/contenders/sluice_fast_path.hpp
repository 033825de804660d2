#pragma once

#include "contenders/extract.hpp"

#include <sluice/parse/completion_parser.hpp>

// sluice's own fast path, reading the padded body in place.
struct sluice_fast_path {
    static constexpr const char* name = "sluice completion_parser";
    sluice::completion_parser parser;
    sluice::completion c;

    // The timed part: the parse, producing sluice::completion as the engine does.
    bool parse(const std::string& body) { return !parser.parse(body, c); }

    // The answer, converted for comparison (not timed).
    extract result() const {
        extract out;
        out.id = c.id;
        for (const auto& ch : c.choices) {
            out.contents.push_back(ch.content.value_or("<null>"));
            out.finish_reasons.push_back(ch.finish_reason);
        }
        if (c.usage) {
            out.prompt_tokens = c.usage->prompt_tokens;
            out.completion_tokens = c.usage->completion_tokens;
            out.total_tokens = c.usage->total_tokens;
        }
        if (c.error)
            out.error_code = c.error->code;
        return out;
    }
};
