#pragma once

#include <sluice/admission/token_bucket.hpp>
#include <sluice/mock/mock_server.hpp>

#include "mock/mock_batches.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::detail {

// Decides every answer of the mock: parses the request, charges the enforced buckets, draws
// faults and latency, and builds OpenAI-shaped bodies and headers.
class mock_behavior {
public:
    using clock = std::chrono::steady_clock;

    mock_behavior(const mock_options& opts, clock::time_point now);

    // `api_key`: the request's `api-key` header, absent when it had none. The Azure OpenAI
    // route (/openai/deployments/NAME/chat/completions?api-version=...) answers as Azure does
    // without it.
    mock_reply on_request(std::string_view method,
                          std::string_view target,
                          std::string_view body,
                          clock::time_point now,
                          std::optional<std::string_view> api_key = std::nullopt,
                          std::string_view content_type = {});

    mock_counters& counters() noexcept { return counters_; }

private:
    // Which injected fault, if any, one request gets: a single uniform draw against the
    // fault probabilities stacked in a fixed order, so one seed replays the same faults.
    struct fault_draw {
        double draw = 0;
        double edge = 0;
        bool hit(double p) {
            const bool h = draw >= edge && draw < edge + p;
            edge += p;
            return h;
        }
    };

    mock_reply chat_completion(std::string_view body, clock::time_point now);
    batch_line_answer batch_answer(std::string_view body);
    std::optional<mock_reply> azure_refusal(std::string_view query,
                                            std::optional<std::string_view> api_key);
    std::optional<mock_reply> early_fault(fault_draw& faults);
    std::optional<mock_reply> over_limit(double cost, clock::time_point now);
    std::chrono::microseconds answer_delay(fault_draw& faults);
    void stream_reply(mock_reply& r, const answer_shape& a, fault_draw& faults);
    void add_limit_headers(mock_reply& r, clock::time_point now);
    mock_reply error_reply(unsigned status,
                           std::string_view message,
                           std::string_view type,
                           std::string_view code);

    mock_options opts_;
    token_bucket requests_;
    token_bucket tokens_;
    std::mt19937_64 rng_;  // fault and latency draws
    std::mt19937_64 gaps_; // exponential gaps between streamed chunks
    std::uint64_t next_id_ = 1;
    std::uint64_t responses_ = 0;
    mock_counters counters_;
    std::map<std::string, std::string> stored_; // completions sent with "store": true, by id
    mock_batches batches_;                      // after counters_, which it counts into
};

// Formats a duration as OpenAI's x-ratelimit-reset-* headers do ("20ms", "1.5s", "6m0s").
std::string format_go_duration(std::chrono::nanoseconds d);

} // namespace sluice::detail
