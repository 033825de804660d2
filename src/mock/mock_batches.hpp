#pragma once

#include <sluice/mock/mock_server.hpp>

#include "mock/mock_reply.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::detail {

// What the mock answers one request line of a batch: its status and body, as the live route
// would have answered it.
struct batch_line_answer {
    unsigned status = 200;
    std::string body;
    std::string request_id;
};

using batch_answerer = std::function<batch_line_answer(std::string_view body)>;

// The mock's Batch API, without I/O: files uploaded and produced, batches and their life
// (mock_batch_options). Time is a parameter: a batch's status is what `now` makes it, and its
// output and error files are written when a retrieval first finds it over.
class mock_batches {
public:
    using clock = std::chrono::steady_clock;

    mock_batches(const mock_batch_options& opts, mock_counters& counters, batch_answerer answer);

    // True for the paths answered here: /v1/files..., /v1/batches... (and /openai/..., as
    // Azure OpenAI names them).
    static bool handles(std::string_view path);

    mock_reply on_request(std::string_view method,
                          std::string_view path,
                          std::string_view query,
                          std::string_view content_type,
                          std::string_view body,
                          clock::time_point now);

private:
    struct file {
        std::string id;
        std::string filename;
        std::string purpose;
        long long created_at = 0;
        std::shared_ptr<const std::string> content;
    };

    struct line {
        std::string custom_id;
        std::string body;
    };

    struct batch {
        std::string id;
        std::string endpoint;
        std::string window;
        std::string input_file_id;
        std::string metadata = "null"; // raw JSON
        std::string errors = "null";   // raw JSON: the validation failure, if any
        long long created_at = 0;      // unix seconds
        clock::time_point start;
        std::optional<clock::time_point> cancel_requested;
        double cancel_fraction = 0; // done fraction when the cancel came
        bool expires = false;
        std::vector<line> lines;
        // Set once the batch is over and its files are written.
        std::string final_status;
        std::string output_file_id, error_file_id;
        std::uint64_t completed = 0, failed = 0;
    };

    mock_reply upload(std::string_view content_type, std::string_view body, long long unix_now);
    mock_reply create(std::string_view body, clock::time_point now, long long unix_now);
    mock_reply file_reply(std::string_view rest, std::string_view method);
    mock_reply batch_reply(std::string_view rest,
                           std::string_view method,
                           clock::time_point now,
                           long long unix_now);
    mock_reply list_batches(std::string_view query, clock::time_point now, long long unix_now);
    mock_reply list_files(std::string_view query) const;
    std::string batch_json(batch& b, clock::time_point now, long long unix_now);
    std::string status_of(batch& b, clock::time_point now, double& fraction) const;
    void finish(batch& b, const std::string& status, double fraction, long long unix_now);
    std::string
    add_file(std::string filename, std::string purpose, std::string content, long long unix_now);
    std::string file_json(const file& f) const;
    mock_reply content_reply(const file& f) const;

    mock_batch_options opts_;
    mock_counters& counters_;
    batch_answerer answer_;
    std::map<std::string, file> files_;
    std::map<std::string, batch> batches_;
    std::vector<std::string> batch_order_; // ids, oldest first
    std::uint64_t next_file_ = 1;
    std::uint64_t next_batch_ = 1;
    std::uint64_t next_record_ = 1;
};

// The value of `name` in a query string ("limit=20&after=x"); absent when not there.
std::optional<std::string_view> query_value(std::string_view query, std::string_view name);

} // namespace sluice::detail
