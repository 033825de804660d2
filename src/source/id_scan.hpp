#pragma once

#include <string_view>

namespace sluice::detail {

// What a scan of a line's top level says about its custom_id.
enum class id_scan_kind {
    found,  // the first top-level "custom_id" member is the string `id`, with no escapes
    absent, // the top level has no "custom_id" member
    unsure, // anything else: an escape where it matters, a value that is not a plain string,
            // text that is not the start of a JSON object; the line must be checked in full
};

struct id_scan {
    id_scan_kind kind = id_scan_kind::unsure;
    std::string_view id; // found: a view into the line
};

// Reads the custom_id of a JSONL line without checking the line: what the reader's full
// check would give the line's record *if* it finds the line good. Keys and values are
// followed far enough to find the top level's members and no further, so a line whose
// custom_id comes first costs a few dozen bytes of reading. The scan never claims more than
// it read: wherever an escape or a surprise could make the checked id differ, it is unsure.
id_scan scan_custom_id(std::string_view line) noexcept;

} // namespace sluice::detail
