#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Reading back the records sluice wrote: the journal (a resumed run) and `sluice merge` judge
// an output line by the same rules.

namespace sluice::detail {

/// The top-level fields of one output record that decide its fate. Views point into the
/// parser: valid until the next line is parsed.
struct output_record_fields {
    std::string_view custom_id;
    bool failed = false;               ///< `error` is an object, not null
    std::string_view code;             ///< error.code when failed
    std::optional<std::uint64_t> line; ///< a bad-input-line record
};

/// Reads `text` as an output record; on failure `why` says what makes it foreign. Only
/// top-level members count (a `line` inside a response body is not the record's), and the
/// first of a repeated key wins, as in the input reader. `text` must have SIMDJSON_PADDING
/// readable bytes behind it, as detail::line_reader gives.
bool read_output_record(simdjson::dom::parser& parser,
                        std::string_view text,
                        output_record_fields& out,
                        std::string& why);

/// True for a record that is not a final answer: the request never got one (not_attempted,
/// stopped, quota_exhausted, unauthorized, certificate_rejected), so a resumed run sends it
/// again; with `retry_failed`, every failure.
bool is_unanswered(const output_record_fields& f, bool retry_failed);

} // namespace sluice::detail
