#pragma once

#include "support/temp_dir.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace sluice::test {

/// Debian's redis-server, started from a temporary directory on 127.0.0.1 with an ephemeral
/// port, in the foreground, with no persistence (a restart starts empty, as a lost Redis
/// does). Stopped by its PID at scope end; `stop()` and `start()` in between restart it on
/// the same port. With a password, AUTH is required (`requirepass`); with a user too, that
/// ACL user is created with the password and the default user is disabled. With `tls`, it
/// serves TLS only (rediss://), with a self-signed certificate for 127.0.0.1 made by the
/// `openssl` command (`ca_file()`), and asks no client certificate.
class redis_peer {
public:
    explicit redis_peer(std::string password = "", std::string user = "", bool tls = false)
        : password_(std::move(password))
        , user_(std::move(user))
        , tls_(tls) {
        if (::access("/usr/bin/redis-server", X_OK) != 0)
            throw std::runtime_error("redis-server is not installed (run .ci/install-deps)");
        port_ = free_port();
        if (tls_ && run_shell("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
                              "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
                              dir_.file("key.pem") + " -out " + dir_.file("cert.pem") +
                              " > /dev/null 2>&1") != 0)
            throw std::runtime_error("openssl could not make a certificate");
        start();
    }

    /// The certificate a TLS peer serves (its own CA).
    std::string ca_file() const { return dir_.file("cert.pem"); }

    ~redis_peer() { stop(); }

    redis_peer(const redis_peer&) = delete;
    redis_peer& operator=(const redis_peer&) = delete;

    std::uint16_t port() const { return port_; }
    pid_t pid() const { return pid_; }

    /// "redis://127.0.0.1:PORT", with `userinfo` ("user:pass", ":pass") before the host and
    /// `/db` after it when given.
    std::string url(const std::string& userinfo = "", int db = -1) const {
        return std::string(tls_ ? "rediss://" : "redis://") +
               (userinfo.empty() ? "" : userinfo + "@") + "127.0.0.1:" + std::to_string(port_) +
               (db >= 0 ? "/" + std::to_string(db) : "");
    }

    /// Stops the server (SIGTERM, then waits for it); a no-op when stopped.
    void stop() {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    /// Starts the server on its port; ready when the port accepts (bounded to five seconds).
    void start() {
        const std::string d = dir_.path().string();
        std::vector<std::string> args{"redis-server",
                                      "--bind",
                                      "127.0.0.1",
                                      "--port",
                                      tls_ ? "0" : std::to_string(port_),
                                      "--dir",
                                      d,
                                      "--save",
                                      "",
                                      "--appendonly",
                                      "no",
                                      "--daemonize",
                                      "no",
                                      "--logfile",
                                      d + "/redis.log"};
        if (!password_.empty() && user_.empty()) {
            args.push_back("--requirepass");
            args.push_back(password_);
        }
        if (tls_) {
            for (const char* a : {"--tls-port",
                                  "",
                                  "--tls-cert-file",
                                  "",
                                  "--tls-key-file",
                                  "",
                                  "--tls-ca-cert-file",
                                  "",
                                  "--tls-auth-clients",
                                  "no"})
                args.push_back(a);
            const std::size_t n = args.size();
            args[n - 9] = std::to_string(port_);
            args[n - 7] = dir_.file("cert.pem");
            args[n - 5] = dir_.file("key.pem");
            args[n - 3] = dir_.file("cert.pem");
        }
        if (!user_.empty()) {
            write_file(d + "/users.acl",
                       "user default off\nuser " + user_ + " on >" + password_ + " ~* &* +@all\n");
            args.push_back("--aclfile");
            args.push_back(d + "/users.acl");
        }
        pid_ = ::fork();
        if (pid_ < 0)
            throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv("/usr/bin/redis-server", argv.data());
            ::_exit(127);
        }
        boost::asio::io_context ioc;
        for (int i = 0; i < 500; ++i) {
            boost::asio::ip::tcp::socket s(ioc);
            boost::system::error_code ec;
            s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
            if (!ec)
                return;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("redis-server exited: " + log());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        throw std::runtime_error("redis-server did not start listening");
    }

    /// `redis-cli ARGS` against this server (with its credentials): its output.
    std::string cli(const std::string& args) const {
        const std::string out = dir_.file("cli.out");
        std::string auth;
        if (!password_.empty())
            auth = (user_.empty() ? "" : "--user " + user_ + " ") + "--pass " + password_ +
                   " --no-auth-warning ";
        run_shell("redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + " " + auth + args + " > " +
                  out + " 2>&1");
        return read_file(out);
    }

    std::string log() const { return read_file(dir_.file("redis.log")); }

private:
    static std::uint16_t free_port() {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
        return a.local_endpoint().port();
    }

    temp_dir dir_;
    std::string password_;
    std::string user_;
    bool tls_ = false;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

} // namespace sluice::test
