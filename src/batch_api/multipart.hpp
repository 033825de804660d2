#pragma once

#include <string>
#include <string_view>

namespace sluice::detail {

// The framing of a `multipart/form-data` upload with two parts, `purpose` and `file`, around
// a file's bytes that are sent from where they lie (a mapping): only the preamble and the
// epilogue are built. The boundary is random and checked not to occur in the file.
class multipart_body {
public:
    multipart_body(std::string_view purpose, std::string_view filename, std::string_view file);

    // "multipart/form-data; boundary=..."
    const std::string& content_type() const noexcept { return content_type_; }
    // Everything before the file's bytes, and everything after them.
    const std::string& preamble() const noexcept { return preamble_; }
    const std::string& epilogue() const noexcept { return epilogue_; }

private:
    std::string content_type_;
    std::string preamble_;
    std::string epilogue_;
};

// `s` as one path segment of a URL: every byte but unreserved ones percent-encoded.
std::string url_segment(std::string_view s);

} // namespace sluice::detail
