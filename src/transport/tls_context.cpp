#include <sluice/transport/tls_context.hpp>

#include <boost/asio/buffer.hpp>

namespace sluice {

namespace ssl = boost::asio::ssl;

// The warning for `insecure` is the caller's to print (the CLI does, once, on stderr): a
// library should not write to stderr on its own.
ssl::context make_client_tls_context(const tls_options& opts) {
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
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

} // namespace sluice
