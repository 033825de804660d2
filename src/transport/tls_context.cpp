#include <sluice/transport/tls_context.hpp>

#include "transport/tls_peer.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/system/system_error.hpp>

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace sluice {

namespace ssl = boost::asio::ssl;

// The warning for `insecure` is the caller's to print (the CLI does, once, on stderr): a
// library should not write to stderr on its own.
ssl::context make_client_tls_context(const tls_options& opts) {
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
    // TLS 1.2 is the oldest version with a cipher suite worth having; the floor is set as a
    // version rather than through the deprecated no_tlsv1* option bits.
    if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1)
        throw boost::system::system_error(
            error_code(static_cast<int>(::ERR_get_error()), boost::asio::error::get_ssl_category()),
            "TLS minimum version");
    if (opts.insecure) {
        ctx.set_verify_mode(ssl::verify_none);
        return ctx;
    }
    ctx.set_default_verify_paths();
    if (!opts.ca_file.empty())
        ctx.load_verify_file(opts.ca_file);
    if (!opts.ca_pem.empty())
        ctx.add_certificate_authority(boost::asio::buffer(opts.ca_pem));
    ctx.set_verify_mode(ssl::verify_peer);
    return ctx;
}

namespace detail {

void set_peer_name(SSL* ssl, const std::string& host, bool host_is_ip, error_code& ec) {
    ec = {};
    bool ok = false;
    // SNI carries host names only (RFC 6066 section 3); an IP literal is checked against the
    // certificate's IP addresses instead of its DNS names. OpenSSL checks either while it
    // verifies the chain, so the check applies exactly when the context says verify_peer.
    if (host_is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
    } else {
        // Names come from subjectAltName only, as browsers and Python's ssl (the SDKs) do:
        // a certificate with its name in the subject CN alone is refused.
        SSL_set_hostflags(
            ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
        ok = SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 &&
             SSL_set1_host(ssl, host.c_str()) == 1;
    }
    if (!ok)
        ec = {static_cast<int>(::ERR_get_error()), boost::asio::error::get_ssl_category()};
}

} // namespace detail

} // namespace sluice
