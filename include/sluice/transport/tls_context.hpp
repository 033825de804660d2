#pragma once

#include <boost/asio/ssl/context.hpp>

#include <string>

namespace sluice {

/// How the client verifies TLS peers. Verification is on by default: the system trust store,
/// the host name (or IP) checked against the certificate, SNI sent.
struct tls_options {
    /// A PEM file of extra trusted CAs (a self-signed local server), added to the system store.
    std::string ca_file;
    /// PEM text of extra trusted CAs, as `ca_file` but in memory (the embedded mock's cert).
    std::string ca_pem;
    /// Skip verification entirely. Off by default; when on, a warning is printed on stderr.
    bool insecure = false;
};

/// Makes a client TLS context (TLS 1.2+) from `opts`. Throws boost::system::system_error
/// when a CA file cannot be read.
boost::asio::ssl::context make_client_tls_context(const tls_options& opts);

} // namespace sluice
