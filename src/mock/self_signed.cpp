#include "mock/self_signed.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace sluice::detail {

namespace {

struct free_pkey {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct free_x509 {
    void operator()(X509* p) const { X509_free(p); }
};
struct free_bio {
    void operator()(BIO* p) const { BIO_free(p); }
};
struct free_ext {
    void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};

void check(bool ok, const char* what) {
    if (!ok)
        throw std::runtime_error(std::string("self-signed certificate: ") + what + " failed");
}

void add_extension(X509* cert, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    std::unique_ptr<X509_EXTENSION, free_ext> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    check(ext != nullptr, "X509V3_EXT_conf_nid");
    check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

} // namespace

pem_pair make_self_signed_certificate() {
    std::unique_ptr<EVP_PKEY, free_pkey> key(EVP_EC_gen("P-256"));
    check(key != nullptr, "EVP_EC_gen");
    std::unique_ptr<X509, free_x509> cert(X509_new());
    check(cert != nullptr, "X509_new");
    check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");

    unsigned char serial[16];
    check(RAND_bytes(serial, sizeof serial) == 1, "RAND_bytes");
    serial[0] &= 0x7f; // positive
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    check(bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr,
          "serial number");
    BN_free(bn);

    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    check(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name,
                               "CN",
                               MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("sluice mock server"),
                               -1,
                               -1,
                               0);
    check(X509_set_issuer_name(cert.get(), name) == 1, "X509_set_issuer_name");
    add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign");
    add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
    add_extension(cert.get(), NID_subject_alt_name, "IP:127.0.0.1,IP:::1,DNS:localhost");
    add_extension(cert.get(), NID_subject_key_identifier, "hash");
    check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

    pem_pair out;
    std::unique_ptr<BIO, free_bio> cert_bio(BIO_new(BIO_s_mem()));
    check(cert_bio && PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1, "PEM_write_bio_X509");
    out.certificate_pem = bio_text(cert_bio.get());
    std::unique_ptr<BIO, free_bio> key_bio(BIO_new(BIO_s_mem()));
    check(key_bio && PEM_write_bio_PrivateKey(
                         key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
    out.private_key_pem = bio_text(key_bio.get());
    return out;
}

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace sluice::detail
