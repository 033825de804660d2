#pragma once

#include "contenders/extract.hpp"

#include <nlohmann/json.hpp>

// A full DOM parse with nlohmann::json, then the same fields: what a client written without
// simdjson typically does.
struct nlohmann_dom {
    static constexpr const char* name = "nlohmann::json DOM";

    extract out;

    extract result() const { return out; }

    bool parse(const std::string& body) {
        out = {};
        const auto doc = nlohmann::json::parse(body, nullptr, false);
        if (doc.is_discarded() || !doc.is_object())
            return false;
        out.id = doc.value("id", "");
        for (const auto& ch : doc.at("choices")) {
            const auto& content = ch.at("message").at("content");
            out.contents.push_back(content.is_null() ? "<null>" : content.get<std::string>());
            out.finish_reasons.push_back(ch.value("finish_reason", ""));
        }
        if (doc.contains("usage")) {
            const auto& u = doc.at("usage");
            out.prompt_tokens = u.value("prompt_tokens", 0ULL);
            out.completion_tokens = u.value("completion_tokens", 0ULL);
            out.total_tokens = u.value("total_tokens", 0ULL);
        }
        return true;
    }
};
