#include "batch_api/multipart.hpp"

#include <cstdio>
#include <random>

namespace sluice::detail {

namespace {

// A filename goes inside a quoted header parameter: a quote, a backslash or a control
// character would end it early, so they are replaced.
std::string quoted_safe(std::string_view s) {
    std::string out;
    for (char c : s)
        out += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
    return out;
}

} // namespace

multipart_body::multipart_body(std::string_view purpose,
                               std::string_view filename,
                               std::string_view file) {
    std::random_device rd;
    std::string boundary;
    do {
        char buf[64];
        std::snprintf(buf,
                      sizeof buf,
                      "sluice-%08x%08x%08x",
                      static_cast<unsigned>(rd()),
                      static_cast<unsigned>(rd()),
                      static_cast<unsigned>(rd()));
        boundary = buf;
    } while (file.find(boundary) != std::string_view::npos);
    content_type_ = "multipart/form-data; boundary=" + boundary;
    preamble_ = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n" +
                std::string(purpose) + "\r\n--" + boundary +
                "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
                quoted_safe(filename) + "\"\r\nContent-Type: application/jsonl\r\n\r\n";
    epilogue_ = "\r\n--" + boundary + "--\r\n";
}

std::string url_segment(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

} // namespace sluice::detail
