// The assembled record against the official OpenAI Node SDK's own accumulation: every stream
// in tests/fixtures/sse/ goes through `node tests/node/assemble.mjs` (the SDK's
// `chat.completions.stream()` + `finalChatCompletion()`, offline) and through sse_parser +
// chunk_parser + stream_assembler, and the two chat.completion documents are compared field
// by field as a user reads them. Node and the pinned SDK come from .ci/install-deps; in CI
// (CI=true) their absence fails, elsewhere it is a warning.
#include "unit/parse/sse_feed.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace sluice;
using namespace sluice::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string script = std::string(SLUICE_SOURCE_DIR) + "/tests/node/assemble.mjs";
const std::string fixture_dir = std::string(SLUICE_TEST_FIXTURES) + "/sse";

// assemble.mjs's exit statuses.
constexpr int sdk_accepted = 0;
constexpr int sdk_rejected = 1;

/// A fixture the SDK does not accept, why, and a piece of the error it gives.
struct rejected_fixture {
    const char* reason;
    const char* error;
};

// Every fixture not listed here must be accepted by the SDK and give the same record; each one
// listed must be rejected by it, with that error (so the list cannot go stale).
const std::map<std::string, rejected_fixture> sdk_rejects = {
    {"error_mid_stream.sse",
     {"an error event mid-stream: the SDK throws it as an APIError; sluice makes the result an "
      "error with the server's body (stream_assembler_test checks that)",
      "The server had an error while processing your request"}},
    {"proxy_mixed_endings.sse",
     {"its `event: ping` block has no data line: the WHATWG rules drop such an event, and "
      "sse_parser does, but the SDK hands its empty data to JSON.parse and throws; the same "
      "stream without that block is compared below",
      "JSON"}},
};

bool in_ci() {
    const char* v = std::getenv("CI");
    return v && *v && std::string_view(v) != "0" && std::string_view(v) != "false";
}

std::optional<std::string> find_on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate;
    }
    return std::nullopt;
}

struct run_result {
    int status = -1; ///< exit status; -1 when it did not exit normally or timed out
    std::string out, err;
};

/// Runs `node args...` with stdin from /dev/null and stdout and stderr captured; killed (by
/// its own PID) after 60 s.
run_result run_node(const std::string& node, const std::vector<std::string>& args) {
    temp_dir dir;
    const std::string out = dir.file("out"), err = dir.file("err");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> argv_strings{node};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_strings)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int spawned = ::posix_spawn(&pid, node.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    run_result r;
    if (spawned != 0) {
        r.err = "posix_spawn " + node + ": " + std::strerror(spawned);
        return r;
    }
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool exited = false;
    while (!exited) {
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid)
            exited = true;
        else if (done < 0 && errno != EINTR)
            break;
        else if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            r.err = "node timed out after 60 s\n";
            break;
        } else
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    r.out = read_file(out);
    r.err += read_file(err);
    if (exited && WIFEXITED(status))
        r.status = WEXITSTATUS(status);
    return r;
}

/// Node and the pinned SDK, checked once: the node binary, or nothing after a FAIL in CI or a
/// WARN elsewhere naming what is missing.
std::optional<std::string> reference() {
    static const std::pair<std::optional<std::string>, std::string> found = [] {
        const std::optional<std::string> node = find_on_path("node");
        if (!node)
            return std::pair{node, std::string("node is not on PATH")};
        const run_result r = run_node(*node, {script, "--check"});
        if (r.status != 0) {
            std::string why = r.err;
            while (!why.empty() && (why.back() == '\n' || why.back() == '\r'))
                why.pop_back();
            return std::pair{std::optional<std::string>(), why};
        }
        return std::pair{node, std::string()};
    }();
    if (!found.first) {
        const std::string what = "the OpenAI Node SDK cross-check cannot run (" + found.second +
                                 "): run .ci/install-deps, which installs node and npm and runs "
                                 "`npm ci` in tests/node";
        if (in_ci())
            FAIL(what);
        WARN(what + "; skipped outside CI");
    }
    return found.first;
}

std::vector<std::string> fixture_names() {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(fixture_dir)) {
        if (entry.path().extension() == ".sse")
            names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

/// `j[key]`, an absent key read as null.
json field(const json& j, const char* key) {
    const auto it = j.find(key);
    return it == j.end() ? json() : *it;
}

/// The tool calls of a message; none written and `[]` read alike.
json tool_calls_of(const json& message) {
    json calls = field(message, "tool_calls");
    return calls.is_null() ? json::array() : calls;
}

/// `logprobs` with `content` and `refusal` both written, null when absent.
json logprobs_of(const json& choice) {
    json lp = field(choice, "logprobs");
    if (lp.is_object()) {
        lp["content"] = field(lp, "content");
        lp["refusal"] = field(lp, "refusal");
    }
    return lp;
}

/// The fields a user reads, equal between the SDK's record and ours. The normalisations are
/// the documented differences in how each writes the same answer, nothing more.
void check_same_record(const json& sdk, const json& ours) {
    INFO("SDK:    " << sdk.dump());
    INFO("sluice: " << ours.dump());
    CHECK(sdk.at("object") == "chat.completion");
    CHECK(ours.at("object") == "chat.completion");
    for (const char* key : {"id", "model", "created"}) {
        INFO(key);
        CHECK(sdk.at(key) == ours.at(key));
    }
    // The SDK copies these top-level keys as the chunks had them, `"usage": null` included,
    // and drops an empty system_fingerprint; stream_assembler writes each only when a value
    // came. Absent and null are the same answer.
    for (const char* key : {"usage", "system_fingerprint", "service_tier"}) {
        INFO(key);
        CHECK(field(sdk, key) == field(ours, key));
    }
    const json& sdk_choices = sdk.at("choices");
    const json& our_choices = ours.at("choices");
    REQUIRE(sdk_choices.size() == our_choices.size());
    for (std::size_t i = 0; i < sdk_choices.size(); ++i) {
        INFO("choices[" << i << "]");
        const json& s = sdk_choices[i];
        const json& o = our_choices[i];
        CHECK(s.at("index") == o.at("index"));
        CHECK(s.at("finish_reason") == o.at("finish_reason"));
        // stream_assembler always writes both arrays of a logprobs object; the SDK keeps the
        // keys the first chunk's object had.
        CHECK(logprobs_of(s) == logprobs_of(o));
        if (const json lp = field(s, "logprobs"); lp.is_object()) {
            for (const auto& [key, value] : lp.items()) {
                INFO("logprobs." << key << " (the SDK keeps it, stream_assembler drops it)");
                CHECK((key == "content" || key == "refusal"));
            }
        }
        const json& sm = s.at("message");
        const json& om = o.at("message");
        CHECK(sm.at("role") == om.at("role"));
        CHECK(sm.at("content") == om.at("content"));
        // The SDK writes `"refusal": null` on every message; stream_assembler writes refusal
        // only when one came (as a non-streamed answer without one does).
        const json sdk_refusal = field(sm, "refusal");
        const json our_refusal = field(om, "refusal");
        if (!sdk_refusal.is_null() || !our_refusal.is_null())
            CHECK(sdk_refusal == our_refusal);
        // The SDK writes `"tool_calls": []` when a delta carried an empty tool_calls array;
        // stream_assembler writes tool_calls only when a call came.
        const json sdk_calls = tool_calls_of(sm);
        const json our_calls = tool_calls_of(om);
        REQUIRE(sdk_calls.size() == our_calls.size());
        for (std::size_t t = 0; t < sdk_calls.size(); ++t) {
            INFO("tool_calls[" << t << "]");
            CHECK(sdk_calls[t].at("id") == our_calls[t].at("id"));
            CHECK(sdk_calls[t].at("type") == our_calls[t].at("type"));
            CHECK(sdk_calls[t].at("function").at("name") == our_calls[t].at("function").at("name"));
            CHECK(sdk_calls[t].at("function").at("arguments") ==
                  our_calls[t].at("function").at("arguments"));
        }
    }
}

/// What sluice assembles from `stream`, parsed.
json sluice_record(std::string_view stream) {
    const assembled a = assemble(stream);
    INFO(a.ec.message());
    REQUIRE_FALSE(a.ec);
    CHECK(a.done);
    return json::parse(a.json);
}

/// The SDK's record of the stream in `file`; fails the test when the SDK does not give one.
std::optional<json> sdk_record(const std::string& node, const std::string& file) {
    const run_result r = run_node(node, {script, file});
    INFO(r.err);
    CHECK(r.status == sdk_accepted);
    if (r.status != sdk_accepted)
        return std::nullopt;
    return json::parse(r.out);
}

} // namespace

TEST_CASE("every fixture stream assembles to the chat.completion the OpenAI Node SDK gives") {
    const std::optional<std::string> node = reference();
    if (!node)
        return;
    std::size_t compared = 0;
    for (const std::string& name : fixture_names()) {
        if (sdk_rejects.count(name))
            continue;
        INFO(name);
        const std::optional<json> sdk = sdk_record(*node, fixture_dir + "/" + name);
        if (!sdk)
            continue;
        check_same_record(*sdk, sluice_record(sse_fixture(name)));
        ++compared;
    }
    CHECK(compared + sdk_rejects.size() == fixture_names().size());
    CHECK(compared >= 10);
}

TEST_CASE("the fixtures left out are the ones the SDK rejects, for the reason given") {
    const std::optional<std::string> node = reference();
    if (!node)
        return;
    for (const auto& [name, why] : sdk_rejects) {
        INFO(name << ": " << why.reason);
        REQUIRE(fs::exists(fixture_dir + "/" + name));
        const run_result r = run_node(*node, {script, fixture_dir + "/" + name});
        INFO(r.err);
        CHECK(r.status == sdk_rejected);
        CHECK(r.err.find(why.error) != std::string::npos);
    }
}

TEST_CASE("the SDK and sse_parser frame a BOM, CR-only lines and split data lines alike") {
    const std::optional<std::string> node = reference();
    if (!node)
        return;
    // proxy_mixed_endings.sse without its data-less `event: ping` block (see sdk_rejects).
    std::string stream = sse_fixture("proxy_mixed_endings.sse");
    const std::string ping = "event: ping\r\n\r\n";
    const std::size_t at = stream.find(ping);
    REQUIRE(at != std::string::npos);
    stream.erase(at, ping.size());
    temp_dir dir;
    write_file(dir.file("no_ping.sse"), stream);
    const std::optional<json> sdk = sdk_record(*node, dir.file("no_ping.sse"));
    REQUIRE(sdk);
    const json ours = sluice_record(stream);
    check_same_record(*sdk, ours);
    CHECK(ours.at("choices").at(0).at("message").at("content") == "Hi!");
}

TEST_CASE("every fixture stream has an expected.json that stream_assembler gives exactly") {
    // Also covers fixtures that the split-point tests in this folder do not list.
    for (const std::string& name : fixture_names()) {
        INFO(name);
        const std::string stem = name.substr(0, name.size() - 4);
        REQUIRE(fs::exists(fixture_dir + "/" + stem + ".expected.json"));
        std::string expected = sse_fixture(stem + ".expected.json");
        while (!expected.empty() && (expected.back() == '\n' || expected.back() == '\r'))
            expected.pop_back();
        const assembled a = assemble(sse_fixture(name));
        REQUIRE_FALSE(a.ec);
        CHECK(a.json == expected);
    }
}

TEST_CASE("a chunk's created of 0 leaves the answer's own created, as in the SDK") {
    // Found by the cross-check (azure_async_filter.sse): Azure's prompt- and content-filter
    // chunks carry `"id":"","created":0`, the last one after the answer's own chunks.
    chunk_parser p;
    stream_assembler s;
    completion_chunk c;
    for (
        const char* event : {
            R"({"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]})",
            R"({"id":"c","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"x"},"finish_reason":"stop"}]})",
            R"({"choices":[{"content_filter_results":{},"finish_reason":null,"index":0}],"created":0,"id":"","model":"","object":""})",
        }) {
        REQUIRE_FALSE(p.parse(event, c));
        REQUIRE_FALSE(s.add(c));
    }
    const json record = json::parse(s.json());
    CHECK(record.at("created") == 7);
    CHECK(record.at("id") == "c");
    CHECK(record.at("model") == "m");
    CHECK(record.at("choices").at(0).at("message").at("content") == "x");
    CHECK(record.at("choices").at(0).at("finish_reason") == "stop");
}
