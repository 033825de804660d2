#pragma once

#include "contenders/extract.hpp"

#include <simdjson.h>

// A bare simdjson on-demand walk written for these fields only, with exceptions: the floor
// the fast path is compared with.
struct simdjson_bare {
    static constexpr const char* name = "bare simdjson on-demand";
    simdjson::ondemand::parser parser;

    extract out;

    extract result() const { return out; }

    bool parse(const std::string& body) {
        out = {};
        try {
            simdjson::padded_string_view view(body.data(), body.size(), body.capacity());
            auto doc = parser.iterate(view);
            for (auto field : doc.get_object()) {
                const std::string_view key = field.unescaped_key();
                if (key == "id") {
                    out.id = std::string_view(field.value());
                } else if (key == "choices") {
                    for (auto choice : field.value().get_array()) {
                        for (auto cf : choice.get_object()) {
                            const std::string_view ck = cf.unescaped_key();
                            if (ck == "message") {
                                auto content = cf.value().find_field_unordered("content");
                                if (content.is_null())
                                    out.contents.emplace_back("<null>");
                                else
                                    out.contents.emplace_back(std::string_view(content));
                            } else if (ck == "finish_reason") {
                                out.finish_reasons.emplace_back(std::string_view(cf.value()));
                            }
                        }
                    }
                } else if (key == "usage") {
                    auto u = field.value();
                    out.prompt_tokens = u["prompt_tokens"];
                    out.completion_tokens = u["completion_tokens"];
                    out.total_tokens = u["total_tokens"];
                }
            }
        } catch (const simdjson::simdjson_error&) {
            return false;
        }
        return true;
    }
};
