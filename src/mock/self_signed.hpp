#pragma once

#include <string>

namespace sluice::detail {

// A certificate and its key, in PEM.
struct pem_pair {
    std::string certificate_pem;
    std::string private_key_pem;
};

// A self-signed certificate for 127.0.0.1, ::1 and localhost (EC P-256, valid one day), marked
// CA:TRUE so that clients can trust it directly as its own anchor. Throws std::runtime_error
// when OpenSSL fails.
pem_pair make_self_signed_certificate();

// The whole content of a text file; throws std::runtime_error when it cannot be read.
std::string read_text_file(const std::string& path);

} // namespace sluice::detail
