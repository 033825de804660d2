#pragma once
// `sluice mock` as a separate process, and a reader of `sluice run`'s output, for the tests
// that run the sluice binary as a user does.
#include "support/temp_dir.hpp"

#include <simdjson.h>

#include <csignal>
#include <map>
#include <stdexcept>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace sluice::test {

// `sluice mock ARGS` in the background; its base URL read from its first line of output.
// Stopped with SIGTERM by its PID at scope end.
class mock_process {
public:
    mock_process(const temp_dir& dir, const std::string& args) {
        const std::string out = dir.file("mock.out");
        pid_ = ::fork();
        if (pid_ == 0) {
            const std::string cmd = std::string(SLUICE_EXE) + " mock --tls --write-cert " +
                                    dir.file("mock.pem") + " " + args + " > " + out + " 2>&1";
            ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 500 && base_url_.empty(); ++i) {
            const std::string text = read_file(out);
            const auto at = text.find("listening on ");
            const auto eol = text.find('\n', at);
            if (at != std::string::npos && eol != std::string::npos)
                base_url_ = text.substr(at + 13, eol - at - 13);
            else
                ::usleep(10'000);
        }
        if (base_url_.empty())
            throw std::runtime_error("sluice mock did not start: " + read_file(out));
        ca_file_ = dir.file("mock.pem");
    }
    ~mock_process() { stop(); }
    /// Stops it now (SIGKILL: a server that dies, its connections reset), once.
    void kill() { stop(SIGKILL); }
    void stop(int signal = SIGTERM) {
        if (pid_ <= 0)
            return;
        ::kill(pid_, signal);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
    const std::string& base_url() const { return base_url_; }
    const std::string& ca_file() const { return ca_file_; }

private:
    pid_t pid_ = -1;
    std::string base_url_, ca_file_;
};

struct tally {
    std::map<std::string, int> per_id;
    std::map<std::string, int> by_code; // "ok" or the error code
};

inline tally read_output(const std::string& path) {
    tally t;
    simdjson::dom::parser p;
    for (const auto& line : read_lines(path)) {
        auto doc = p.parse(line); // every line is one complete JSON record
        ++t.per_id[std::string(std::string_view(doc["custom_id"]))];
        if (doc["error"].is_null())
            ++t.by_code["ok"];
        else
            ++t.by_code[std::string(std::string_view(doc["error"]["code"]))];
    }
    return t;
}

/// A Batch API input of `n` requests with custom_ids id-0, id-1, ...
inline std::string make_input(const temp_dir& dir, int n, const std::string& name = "in.jsonl") {
    std::string text;
    for (int i = 0; i < n; ++i)
        text += R"({"custom_id":"id-)" + std::to_string(i) +
                R"(","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini",)"
                R"("messages":[{"role":"user","content":"question )" +
                std::to_string(i) + R"("}],"max_tokens":16}})" + "\n";
    const std::string path = dir.file(name);
    write_file(path, text);
    return path;
}

/// `sluice run INPUT -o OUTPUT` against `mock`, quiet; returns the exit status.
inline int run_sluice(const mock_process& mock,
                      const std::string& input,
                      const std::string& output,
                      const std::string& extra = "") {
    return run_shell(std::string(SLUICE_EXE) + " run " + input + " -o " + output + " --base-url " +
                     mock.base_url() + " --ca-file " + mock.ca_file() + " " + extra + " -q");
}

} // namespace sluice::test
