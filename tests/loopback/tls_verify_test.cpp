// TLS refuses what it should, through the built `sluice run` and `sluice bench` as a user runs
// them: certificates made at test time with the `openssl` command (a root CA, an intermediate
// CA, leaves signed by it and served with it, a self-signed leaf), served by the mock on
// 127.0.0.1. Each refusal must name the check that failed, stop the run after one handshake
// (not one per line, not retried), exit 2 and leave an output that a resumed run completes.
#include "support/loopback.hpp"
#include "support/mock_process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace tls_verify_test {

using namespace sluice;
using namespace sluice::test;

namespace {

constexpr int lines_in_batch = 3;

// Makes the certificates in the current directory. `openssl ca` is the tool of OpenSSL 3.0
// (Debian 12) that sets a validity period in the past or the future (`openssl x509` has no
// -not_before before 3.4); the minimal configuration below is all it needs. Each leaf is
// signed by the intermediate and written as NAME.pem, the leaf then the intermediate, the
// chain a server sends; its key as NAME.key.
constexpr const char* make_certificates = R"(set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1"; }
cat > ca.cnf <<'END'
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = any_name
unique_subject = no
[any_name]
commonName = supplied
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SAN
END
mkdir issued
: > index.txt
echo 01 > serial
key root.key
openssl req -x509 -new -key root.key -subj "/CN=sluice test root" -days 2 -out root.pem
key intermediate.key
openssl req -new -key intermediate.key -subj "/CN=sluice test intermediate" -out intermediate.csr
SAN=none openssl ca -batch -notext -config ca.cnf -extensions intermediate -cert root.pem \
    -keyfile root.key -in intermediate.csr -out intermediate.pem -days 2
leaf() { # NAME SAN VALIDITY...
    name=$1 san=$2
    shift 2
    key "$name.key"
    openssl req -new -key "$name.key" -subj "/CN=$name" -out "$name.csr"
    SAN=$san openssl ca -batch -notext -config ca.cnf -extensions leaf -cert intermediate.pem \
        -keyfile intermediate.key -in "$name.csr" -out "$name.crt" "$@"
    cat "$name.crt" intermediate.pem > "$name.pem"
}
leaf good IP:127.0.0.1,DNS:localhost -days 1
leaf other_name DNS:other.example,IP:127.0.0.2 -days 1
leaf expired IP:127.0.0.1 -startdate 20200101000000Z -enddate 20200102000000Z
leaf not_yet_valid IP:127.0.0.1 -startdate 20990101000000Z -enddate 20991231000000Z
key self_signed.key
openssl req -x509 -new -key self_signed.key -subj /CN=self_signed \
    -addext subjectAltName=IP:127.0.0.1 -days 1 -out self_signed.pem
)";

// The certificates of one test, in a temp dir.
class test_pki {
public:
    test_pki() {
        write_file(dir_.file("make.sh"), make_certificates);
        const std::string log = dir_.file("openssl.log");
        if (run_shell("cd " + dir_.path().string() + " && sh make.sh >" + log + " 2>&1") != 0)
            FAIL("openssl could not make the test certificates:\n" << read_file(log));
    }
    std::string file(const std::string& name) const { return dir_.file(name); }

    // The mock serving leaf `name` (its chain and key) on 127.0.0.1.
    mock_options server(const std::string& name) const {
        mock_options o = mock_with_tls();
        o.cert_file = file(name + ".pem");
        o.key_file = file(name + ".key");
        return o;
    }

private:
    temp_dir dir_;
};

// Whether the openssl command is here; when not, the test says so and passes (CI installs it
// through .ci/install-deps).
bool have_openssl() {
    if (run_shell("command -v openssl >/dev/null 2>&1") == 0)
        return true;
    WARN("the openssl command is not installed (.ci/install-deps installs it): skipped");
    return false;
}

std::string base_url(const std::string& host, const mock_server& server) {
    return "https://" + host + ":" + std::to_string(server.port()) + "/v1";
}

// Connections the server accepted, once every one a finished client made is counted: a client
// that gave up during the handshake may exit before the server's accept loop has taken the
// connection from the backlog. Waits for at least `at_least`, at most 5 s, then 100 ms for
// any more.
std::uint64_t accepted(mock_server& server, std::uint64_t at_least) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (server.stats().connections < at_least && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return server.stats().connections;
}

// What one `sluice` command did: its exit status and its stderr.
struct outcome {
    int status = -1;
    std::string err;
};

// `sluice ARGS` bounded by `timeout`, so that a client that hangs fails the test instead of
// stalling it.
outcome run_sluice_cmd(const temp_dir& dir, const std::string& args) {
    const std::string err = dir.file("stderr.txt");
    outcome o;
    o.status =
        run_shell("timeout 120 " + std::string(SLUICE_EXE) + " " + args + " >/dev/null 2>" + err);
    o.err = read_file(err);
    return o;
}

// `sluice run` of the batch in `dir` against `url`, its output in out.jsonl.
outcome run_batch(const temp_dir& dir, const std::string& url, const std::string& flags) {
    return run_sluice_cmd(dir,
                          "run " + dir.file("in.jsonl") + " -o " + dir.file("out.jsonl") +
                              " --base-url " + url + " -q " + flags);
}

// A refusal through `sluice run`: the mock serves `pki`'s leaf `name`, the client connects to
// `host` with `flags` and must stop after one handshake with exit status 2, stderr and every
// certificate_rejected record naming the failed check (`words`), and every line recorded as
// one a resumed run sends again. Then that resume, with the flags `fix`, must send all the
// lines once and succeed.
void check_refused(const test_pki& pki,
                   const std::string& name,
                   const std::string& host,
                   const std::string& flags,
                   const std::string& words,
                   const std::string& fix) {
    loopback_mock mock(pki.server(name));
    temp_dir dir;
    make_input(dir, lines_in_batch);
    const std::string url = base_url(host, mock.server());
    INFO("sluice run against " << name << ".pem at " << url << " " << flags);

    const outcome refused = run_batch(dir, url, flags);
    INFO(refused.err);
    CHECK(refused.status == 2);
    CHECK(refused.err.find("certificate was rejected (" + words + ")") != std::string::npos);
    CHECK(refused.err.find("resume") != std::string::npos);
    CHECK(accepted(mock.server(), 1) == 1);
    CHECK(mock.server().stats().requests == 0);

    // As a stopped run leaves it (docs/batch.md): one record per line, each one a resumed run
    // drops and sends again.
    tally t = read_output(dir.file("out.jsonl"));
    CHECK(t.per_id.size() == lines_in_batch);
    for (const auto& [id, n] : t.per_id)
        CHECK(n == 1);
    CHECK(t.by_code.count("ok") == 0);
    CHECK(t.by_code["certificate_rejected"] + t.by_code["not_attempted"] == lines_in_batch);
    CHECK(t.by_code["certificate_rejected"] >= 1);
    for (const std::string& line : read_lines(dir.file("out.jsonl"))) {
        if (line.find("certificate_rejected") != std::string::npos)
            CHECK(line.find(words) != std::string::npos);
    }

    const outcome resumed = run_batch(dir, url, fix);
    INFO(resumed.err);
    CHECK(resumed.status == 0);
    tally done = read_output(dir.file("out.jsonl"));
    CHECK(done.per_id.size() == lines_in_batch);
    CHECK(done.by_code["ok"] == lines_in_batch);
    CHECK(mock.server().stats().requests == lines_in_batch);
}

} // namespace

TEST_CASE("an unknown self-signed certificate is refused without --ca-file") {
    if (!have_openssl())
        return;
    const test_pki pki;
    check_refused(pki,
                  "self_signed",
                  "127.0.0.1",
                  "",
                  "self-signed certificate",
                  "--ca-file " + pki.file("self_signed.pem"));
}

TEST_CASE("a chain from an unknown root is refused as an unknown issuer") {
    if (!have_openssl())
        return;
    const test_pki pki;
    check_refused(pki,
                  "good",
                  "127.0.0.1",
                  "",
                  "unable to get local issuer certificate",
                  "--ca-file " + pki.file("root.pem"));
}

TEST_CASE("a certificate for another host name is refused by name and by address") {
    if (!have_openssl())
        return;
    const test_pki pki;
    const std::string root = "--ca-file " + pki.file("root.pem");
    check_refused(pki, "other_name", "localhost", root, "hostname mismatch", "--insecure");
    check_refused(pki, "other_name", "127.0.0.1", root, "IP address mismatch", "--insecure");
}

TEST_CASE("certificates outside their validity period are refused, naming which end") {
    if (!have_openssl())
        return;
    const test_pki pki;
    const std::string root = "--ca-file " + pki.file("root.pem");
    check_refused(pki, "expired", "127.0.0.1", root, "certificate has expired", "--insecure");
    check_refused(
        pki, "not_yet_valid", "127.0.0.1", root, "certificate is not yet valid", "--insecure");
}

TEST_CASE("a chain through an intermediate CA is accepted with the root as --ca-file") {
    if (!have_openssl())
        return;
    const test_pki pki;
    loopback_mock mock(pki.server("good"));
    temp_dir dir;
    make_input(dir, lines_in_batch);
    // By address and by name: the leaf has both in its subjectAltName.
    for (const std::string host : {"127.0.0.1", "localhost"}) {
        INFO(host);
        std::filesystem::remove(dir.file("out.jsonl"));
        const outcome o =
            run_batch(dir, base_url(host, mock.server()), "--ca-file " + pki.file("root.pem"));
        INFO(o.err);
        CHECK(o.status == 0);
        CHECK(o.err.find("WARNING") == std::string::npos);
        tally t = read_output(dir.file("out.jsonl"));
        CHECK(t.per_id.size() == lines_in_batch);
        CHECK(t.by_code["ok"] == lines_in_batch);
    }
    CHECK(mock.server().stats().requests == 2 * lines_in_batch);
}

TEST_CASE("sluice run with --insecure connects to an untrusted certificate and warns") {
    if (!have_openssl())
        return;
    const test_pki pki;
    loopback_mock mock(pki.server("self_signed"));
    temp_dir dir;
    make_input(dir, lines_in_batch);
    const outcome o = run_batch(dir, base_url("127.0.0.1", mock.server()), "--insecure");
    INFO(o.err);
    CHECK(o.status == 0);
    CHECK(o.err.find("WARNING: --insecure: TLS certificates are NOT verified") !=
          std::string::npos);
    tally t = read_output(dir.file("out.jsonl"));
    CHECK(t.by_code["ok"] == lines_in_batch);
}

TEST_CASE("sluice bench stops at once on an expired certificate, naming the check") {
    if (!have_openssl())
        return;
    const test_pki pki;
    loopback_mock mock(pki.server("expired"));
    temp_dir dir;
    const outcome o =
        run_sluice_cmd(dir,
                       "bench --base-url " + base_url("127.0.0.1", mock.server()) + " --ca-file " +
                           pki.file("root.pem") + " --model m --requests 20 -c 4 --no-stream -q");
    INFO(o.err);
    CHECK(o.status == 2);
    CHECK(o.err.find("certificate was rejected (certificate has expired)") != std::string::npos);
    CHECK(accepted(mock.server(), 1) == 1);
    CHECK(mock.server().stats().requests == 0);
}

} // namespace tls_verify_test
