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

/// A canned chat.completion, as nginx returns it on /v1/chat/completions.
inline const std::string canned_completion =
    R"({"id":"chatcmpl-nginx","object":"chat.completion","created":1,"model":"gpt-4o-mini",)"
    R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hello from nginx.",)"
    R"("refusal":null},"logprobs":null,"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}})";

/// How the nginx peer is set up.
struct nginx_options {
    bool tls = true;
    /// nginx closes a connection after this many requests.
    unsigned keepalive_requests = 1'000'000;
    /// With a rate, nginx's limit_req lets through `limit_rate` requests a second (and a burst
    /// of `limit_burst`) and answers the others 429 with an OpenAI-shaped body.
    unsigned limit_rate = 0;
    unsigned limit_burst = 0;
};

/// Debian's nginx, started from a temporary prefix on 127.0.0.1 with a self-signed certificate
/// made by the openssl command, answering a canned completion: a TLS/HTTP stack this project
/// did not write. Stopped by its PID at scope end.
class nginx_peer {
public:
    explicit nginx_peer(nginx_options opts = {})
        : opts_(opts) {
        if (::access("/usr/sbin/nginx", X_OK) != 0)
            throw std::runtime_error("nginx is not installed (run .ci/install-deps)");
        port_ = free_port();
        const std::string d = dir_.path().string();
        if (run_shell(
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                "-days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
                "-keyout " +
                d + "/key.pem -out " + d + "/cert.pem 2>/dev/null") != 0)
            throw std::runtime_error("openssl could not make a certificate");
        write_file(d + "/nginx.conf", config(d));
        start(d);
    }

    ~nginx_peer() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }

    nginx_peer(const nginx_peer&) = delete;
    nginx_peer& operator=(const nginx_peer&) = delete;

    std::string base_url() const {
        return std::string(opts_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) +
               "/v1";
    }
    std::string ca_file() const { return dir_.file("cert.pem"); }
    std::uint16_t port() const { return port_; }

private:
    static std::uint16_t free_port() {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
        return a.local_endpoint().port();
    }

    std::string config(const std::string& d) const {
        std::string c =
            "worker_processes 1;\ndaemon off;\npid " + d + "/nginx.pid;\nerror_log " + d +
            "/error.log;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n";
        for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
            c += std::string("  ") + t + "_temp_path " + d + "/" + t + ";\n";
        c += "  client_body_buffer_size 1m;\n  keepalive_timeout 65;\n";
        c += "  keepalive_requests " + std::to_string(opts_.keepalive_requests) + ";\n";
        c += "  server {\n    listen 127.0.0.1:" + std::to_string(port_) +
             (opts_.tls ? " ssl" : "") + ";\n";
        if (opts_.tls)
            c += "    ssl_certificate " + d + "/cert.pem;\n    ssl_certificate_key " + d +
                 "/key.pem;\n";
        if (opts_.limit_rate == 0) {
            c += "    location = /v1/chat/completions {\n      default_type application/json;\n";
            c += "      return 200 '" + canned_completion + "';\n    }\n  }\n}\n";
            return c;
        }
        // limit_req runs after the rewrite phase, where `return` would answer first: the answer
        // comes from a named location reached through try_files.
        c += "    location = /v1/chat/completions {\n";
        c += "      limit_req zone=api burst=" + std::to_string(opts_.limit_burst) + " nodelay;\n";
        c += "      limit_req_status 429;\n      error_page 429 = @rate_limited;\n";
        c += "      try_files /.nonexistent @answer;\n    }\n";
        c += "    location @answer {\n      default_type application/json;\n";
        c += "      return 200 '" + canned_completion + "';\n    }\n";
        c += "    location @rate_limited {\n      default_type application/json;\n";
        c += "      add_header retry-after 1 always;\n";
        c += "      return 429 '{\"error\":{\"message\":\"Rate limit "
             "reached\",\"type\":\"requests\","
             "\"param\":null,\"code\":\"rate_limit_exceeded\"}}';\n    }\n  }\n}\n";
        const std::string zone =
            "  limit_req_zone $binary_remote_addr zone=api:1m rate=" + std::to_string(opts_.limit_rate) +
            "r/s;\n";
        c.insert(c.find("  server {"), zone);
        return c;
    }

    void start(const std::string& d) {
        pid_ = ::fork();
        if (pid_ < 0)
            throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            const std::string conf = d + "/nginx.conf", err = d + "/error.log", prefix = d + "/";
            ::execl("/usr/sbin/nginx",
                    "nginx",
                    "-p",
                    prefix.c_str(),
                    "-c",
                    conf.c_str(),
                    "-e",
                    err.c_str(),
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
                throw std::runtime_error("nginx exited: " + read_file(d + "/error.log"));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        throw std::runtime_error("nginx did not start listening");
    }

    nginx_options opts_;
    temp_dir dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

} // namespace sluice::test
