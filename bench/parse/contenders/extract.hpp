#pragma once

#include <cstdint>
#include <string>
#include <vector>

// What every contender extracts from a body: the fast-path fields, so that answers can be
// compared before anything is timed.
struct extract {
    std::string id;
    std::vector<std::string> contents; // "<null>" for a null content
    std::vector<std::string> finish_reasons;
    std::uint64_t prompt_tokens = 0;
    std::uint64_t completion_tokens = 0;
    std::uint64_t total_tokens = 0;
    std::string error_code;

    bool operator==(const extract&) const = default;
};
