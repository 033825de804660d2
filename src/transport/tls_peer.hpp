#pragma once

#include <sluice/error.hpp>

#include <openssl/ssl.h>

#include <string>

namespace sluice::detail {

// Prepares `ssl` (before its handshake) to talk to `host`: SNI for a host name, and the name
// or IP address the peer's certificate must carry. Sets `ec` when OpenSSL refuses the name.
void set_peer_name(SSL* ssl, const std::string& host, bool host_is_ip, error_code& ec);

} // namespace sluice::detail
