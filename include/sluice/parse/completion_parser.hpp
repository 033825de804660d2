#pragma once

#include <sluice/error.hpp>
#include <sluice/http_response.hpp>
#include <sluice/result.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace sluice {

/// What `completion_parser::parse` copies out of a body. Either way the whole body is checked,
/// and `usage` and the `error` object are read.
enum class completion_fields {
    all,   ///< also `id`, `model` and `choices[]` (content, finish_reason, tool calls, refusal)
    usage, ///< only usage and error: for a caller that keeps the body as it came (the batch
           ///< runner writes it out whole), three allocations per answer fewer
};

/// The simdjson on-demand fast path over a chat-completion response body. It reads the body
/// in place (no copy) and extracts `id`, `model`, `choices[]` (index, content or null,
/// finish_reason, presence of tool_calls and refusal), `usage`, and for error bodies
/// `error.message/type/code/param`. Unknown fields are ignored; a missing `usage` is allowed.
/// A body that is not JSON or not of the expected shape yields `errc::malformed_response`.
/// The fields it does not read are checked rather than skipped, so the one pass also tells
/// whether the whole body is valid JSON (`completion::body_is_json`).
///
/// Thread safety: distinct objects are independent; one object must not be used from two
/// threads at once. Keep one parser per connection or per thread: it reuses its buffers.
class completion_parser {
public:
    completion_parser();
    ~completion_parser();
    completion_parser(completion_parser&&) noexcept;
    completion_parser& operator=(completion_parser&&) noexcept;

    /// Parses `size` bytes at `data` into `out` (cleared first). `capacity` is the number of
    /// readable bytes at `data`; when it is less than `size + parse_padding` the body is copied
    /// into an internal padded buffer first.
    error_code parse(const char* data,
                     std::size_t size,
                     std::size_t capacity,
                     completion& out,
                     completion_fields fields = completion_fields::all);

    /// Parses a body held in a string, using its spare capacity as padding when there is enough.
    error_code parse(const std::string& body,
                     completion& out,
                     completion_fields fields = completion_fields::all) {
        return parse(body.data(), body.size(), body.capacity(), out, fields);
    }

    /// True when the `size` bytes at `data` are exactly one valid JSON value (RFC 8259;
    /// surrounding whitespace allowed, nesting at most 1024 deep). For a body changed after
    /// `parse` (a secret cut out of it); `parse` already says this of the body it read.
    bool is_json(const char* data, std::size_t size, std::size_t capacity);

    /// `is_json` of a body held in a string.
    bool is_json(const std::string& body) {
        return is_json(body.data(), body.size(), body.capacity());
    }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace sluice
