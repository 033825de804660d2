#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The objects of the provider's Batch API (`/v1/files`, `/v1/batches`) as sluice reads them,
// and the reading of their JSON. Plain values: no I/O here.
namespace sluice {

/// What every answer of the Batch API carries besides its object: the HTTP status, and when
/// the call failed, the provider's `error.message` (or the transport's reason) in words.
struct api_reply {
    unsigned http_status = 0;
    std::string error_message;
};

/// A file stored by the provider (`POST /v1/files`, `GET /v1/files/{id}`).
struct file_object : api_reply {
    std::string id;
    std::string filename;
    std::string purpose;
    std::uint64_t bytes = 0;
    long long created_at = 0;
};

/// The files `GET /v1/files` lists.
struct file_list : api_reply {
    std::vector<file_object> data;
};

/// How far a batch has come: requests in all, answered, failed.
struct batch_request_counts {
    std::uint64_t total = 0;
    std::uint64_t completed = 0;
    std::uint64_t failed = 0;
};

/// A batch as the provider last reported it (`POST /v1/batches`, `GET /v1/batches/{id}`). The
/// statuses are `validating`, `in_progress`, `finalizing`, `completed`, `failed`, `expired`,
/// `cancelling` and `cancelled`; `completed`, `failed`, `expired` and `cancelled` are final.
struct batch_object : api_reply {
    std::string id;
    std::string status;
    std::string endpoint;
    std::string completion_window;
    std::string input_file_id;
    std::string output_file_id; ///< empty until there is one
    std::string error_file_id;  ///< empty until there is one
    long long created_at = 0;
    batch_request_counts request_counts;
    /// The string members of `metadata`, in order.
    std::vector<std::pair<std::string, std::string>> metadata;
    /// `errors.data[].message` of a batch that failed validation, joined by "; ".
    std::string errors;

    /// The value of metadata key `key`; absent when the batch has none.
    std::optional<std::string_view> metadata_value(std::string_view key) const;

    /// True for `completed`, `failed`, `expired` and `cancelled`: the batch will not change.
    bool is_final() const noexcept;
};

/// A page of `GET /v1/batches` (newest first): pass `last_id` as `after` for the next.
struct batch_list : api_reply {
    std::vector<batch_object> data;
    bool has_more = false;
    std::string last_id;
};

/// What `POST /v1/batches` is asked to create.
struct batch_create_request {
    std::string input_file_id;
    /// The endpoint of every request line; the default is the one sluice sends.
    std::string endpoint = "/v1/chat/completions";
    /// The only window the providers offer today.
    std::string completion_window = "24h";
    /// Up to 16 string pairs the provider keeps with the batch (a client finds its own
    /// batches by them after a crash).
    std::vector<std::pair<std::string, std::string>> metadata;
};

namespace detail {

/// Readers of the Batch API's JSON answers: `out` is reset first; false when `json` is not the
/// object expected.
bool parse_file_object(std::string_view json, file_object& out);
bool parse_file_list(std::string_view json, file_list& out);
bool parse_batch_object(std::string_view json, batch_object& out);
bool parse_batch_list(std::string_view json, batch_list& out);
/// The body of `POST /v1/batches` for `r`.
std::string batch_create_body(const batch_create_request& r);

} // namespace detail

} // namespace sluice
