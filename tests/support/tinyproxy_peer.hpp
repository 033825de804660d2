#pragma once

#include "support/temp_dir.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

namespace sluice::test {

/// Debian's tinyproxy (1.11: CONNECT to any port when no ConnectPort is configured, BasicAuth),
/// started from a temporary directory on 127.0.0.1 with an ephemeral port, in the foreground
/// (-d), logging every request line at level Connect. Stopped by its PID at scope end. With a
/// user, it asks for Basic proxy authentication (it answers 407 without credentials and 401
/// for wrong ones).
class tinyproxy_peer {
public:
    explicit tinyproxy_peer(const std::string& user = "", const std::string& password = "") {
        if (::access("/usr/bin/tinyproxy", X_OK) != 0)
            throw std::runtime_error("tinyproxy is not installed (run .ci/install-deps)");
        port_ = free_port();
        const std::string d = dir_.path().string();
        std::string conf = "Port " + std::to_string(port_) +
                           "\nListen 127.0.0.1\nTimeout 30\nMaxClients 200\n"
                           "LogFile \"" +
                           d + "/tinyproxy.log\"\nLogLevel Connect\nPidFile \"" + d +
                           "/tinyproxy.pid\"\nDisableViaHeader Yes\n";
        if (!user.empty())
            conf += "BasicAuth " + user + " " + password + "\n";
        write_file(d + "/tinyproxy.conf", conf);
        start(d);
    }

    ~tinyproxy_peer() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }

    tinyproxy_peer(const tinyproxy_peer&) = delete;
    tinyproxy_peer& operator=(const tinyproxy_peer&) = delete;

    std::uint16_t port() const { return port_; }
    /// "http://127.0.0.1:PORT", or with `userinfo` ("user:pass") before the host.
    std::string url(const std::string& userinfo = "") const {
        return "http://" + (userinfo.empty() ? "" : userinfo + "@") +
               "127.0.0.1:" + std::to_string(port_);
    }
    /// Everything tinyproxy logged so far.
    std::string log() const { return read_file(dir_.file("tinyproxy.log")); }
    /// How many CONNECT requests it logged ("Request (file descriptor N): CONNECT ...").
    std::size_t connects() const {
        const std::string text = log();
        std::size_t n = 0;
        for (std::size_t at = text.find("): CONNECT "); at != std::string::npos;
             at = text.find("): CONNECT ", at + 1))
            ++n;
        return n;
    }

private:
    static std::uint16_t free_port() {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
        return a.local_endpoint().port();
    }

    void start(const std::string& d) {
        pid_ = ::fork();
        if (pid_ < 0)
            throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            const std::string conf = d + "/tinyproxy.conf";
            const std::string out = d + "/stderr.txt";
            // Its own stderr: the test's output stays readable.
            if (FILE* f = std::freopen(out.c_str(), "w", stderr); !f)
                ::_exit(126);
            ::execl("/usr/bin/tinyproxy",
                    "tinyproxy",
                    "-d",
                    "-c",
                    conf.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        // Ready when the port accepts; bounded to five seconds.
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
                throw std::runtime_error("tinyproxy exited: " + read_file(d + "/stderr.txt"));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        throw std::runtime_error("tinyproxy did not start listening");
    }

    temp_dir dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

} // namespace sluice::test
