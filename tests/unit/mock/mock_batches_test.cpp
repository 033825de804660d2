// The mock's Batch API without its sockets: uploads, batches moving through their states on an
// explicit `now`, the output and error files they leave, expiry, cancel and the listings a
// client searches for what it made before a crash.

#include "mock/mock_behavior.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <set>
#include <string>
#include <string_view>

using namespace sluice;
using namespace std::chrono_literals;
using detail::mock_behavior;
using detail::mock_reply;

namespace {

const std::string boundary = "sluice-test-boundary";

std::string line(int i, std::string_view url = "/v1/chat/completions") {
    return R"({"custom_id":"r)" + std::to_string(i) + R"(","method":"POST","url":")" +
           std::string(url) +
           R"(","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}})";
}

std::string lines(int n) {
    std::string s;
    for (int i = 1; i <= n; ++i)
        s += line(i) + "\n";
    return s;
}

std::string multipart(std::string_view content, std::string_view purpose = "batch") {
    std::string b = "--" + boundary +
                    "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n" +
                    std::string(purpose) + "\r\n--" + boundary +
                    "\r\nContent-Disposition: form-data; name=\"file\"; "
                    "filename=\"in.part1.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n";
    b += content;
    b += "\r\n--" + boundary + "--\r\n";
    return b;
}

struct fixture {
    explicit fixture(mock_options o = {})
        : opts(o)
        , t0(std::chrono::steady_clock::now())
        , m(opts, t0) {}

    mock_reply call(std::string_view method,
                    std::string_view target,
                    std::string_view body = {},
                    std::chrono::milliseconds at = 0ms,
                    std::string_view type = "application/json") {
        return m.on_request(method, target, body, t0 + at, std::nullopt, type);
    }

    std::string upload(std::string_view content) {
        auto r = call("POST",
                      "/v1/files",
                      multipart(content),
                      0ms,
                      "multipart/form-data; boundary=" + boundary);
        REQUIRE(r.status == 200);
        return field(r.body, "id");
    }

    std::string create(const std::string& file, std::string_view metadata = R"({"part":"1"})") {
        auto r = call("POST",
                      "/v1/batches",
                      R"({"input_file_id":")" + file +
                          R"(","endpoint":"/v1/chat/completions","completion_window":"24h",)"
                          R"("metadata":)" +
                          std::string(metadata) + "}");
        REQUIRE(r.status == 200);
        return field(r.body, "id");
    }

    static std::string field(const std::string& json, const char* name) {
        simdjson::dom::parser p;
        std::string_view v;
        if (p.parse(json)[name].get_string().get(v))
            return {};
        return std::string(v);
    }

    static std::uint64_t count(const std::string& json, const char* name) {
        simdjson::dom::parser p;
        std::uint64_t v = 0;
        REQUIRE_FALSE(p.parse(json)["request_counts"][name].get_uint64().get(v));
        return v;
    }

    mock_options opts;
    std::chrono::steady_clock::time_point t0;
    mock_behavior m;
};

std::set<std::string> custom_ids(const std::string& file) {
    std::set<std::string> ids;
    simdjson::dom::parser p;
    for (std::size_t at = 0; at < file.size();) {
        const std::size_t end = file.find('\n', at);
        std::string_view id;
        REQUIRE_FALSE(p.parse(file.substr(at, end - at))["custom_id"].get_string().get(id));
        ids.emplace(id);
        at = end + 1;
    }
    return ids;
}

} // namespace

TEST_CASE("mock batches: an upload is stored and counted, its content served back",
          "[mock][batch_api]") {
    fixture f;
    const std::string content = lines(3);
    const std::string id = f.upload(content);
    CHECK(f.m.counters().files_uploaded == 1);
    auto meta = f.call("GET", "/v1/files/" + id);
    CHECK(fixture::field(meta.body, "filename") == "in.part1.jsonl");
    CHECK(fixture::field(meta.body, "purpose") == "batch");
    auto got = f.call("GET", "/v1/files/" + id + "/content");
    CHECK(got.status == 200);
    CHECK(got.body == content);
    auto listed = f.call("GET", "/v1/files?purpose=batch");
    CHECK(listed.body.find(id) != std::string::npos);
    CHECK(f.call("GET", "/v1/files/file-nope").status == 404);
    CHECK(f.call("POST",
                 "/v1/files",
                 multipart(content, "fine-tune"),
                 0ms,
                 "multipart/form-data; boundary=" + boundary)
              .status == 400);
}

TEST_CASE("mock batches: a batch moves through its states, then leaves one output per line",
          "[mock][batch_api]") {
    mock_options o;
    o.batch.processing_time = 1000ms;
    o.batch.fail_every = 4;
    fixture f(o);
    const std::string batch = f.create(f.upload(lines(10)));
    CHECK(f.m.counters().batches_created == 1);
    auto at = [&](std::chrono::milliseconds t) {
        return f.call("GET", "/v1/batches/" + batch, {}, t).body;
    };
    CHECK(fixture::field(at(50ms), "status") == "validating");
    CHECK(fixture::field(at(500ms), "status") == "in_progress");
    const auto mid = at(500ms);
    CHECK(fixture::count(mid, "completed") + fixture::count(mid, "failed") == 5);
    CHECK(fixture::field(at(950ms), "status") == "finalizing");
    const auto done = at(1000ms);
    CHECK(fixture::field(done, "status") == "completed");
    CHECK(fixture::count(done, "total") == 10);
    CHECK(fixture::count(done, "completed") == 8);
    CHECK(fixture::count(done, "failed") == 2);
    CHECK(done.find(R"("metadata":{"part":"1"})") != std::string::npos);
    const auto out =
        f.call("GET", "/v1/files/" + fixture::field(done, "output_file_id") + "/content");
    const auto err =
        f.call("GET", "/v1/files/" + fixture::field(done, "error_file_id") + "/content");
    const auto ok_ids = custom_ids(out.body);
    const auto failed_ids = custom_ids(err.body);
    CHECK(ok_ids.size() == 8);
    CHECK(failed_ids == std::set<std::string>{"r4", "r8"});
    CHECK(out.body.find(R"("response":{"status_code":200,"request_id":"req_mock)") !=
          std::string::npos);
    CHECK(out.body.find(R"("object":"chat.completion")") != std::string::npos);
    CHECK(err.body.find(R"("status_code":500)") != std::string::npos);
    // The files are written once: a later retrieval names the same ones.
    CHECK(fixture::field(at(2000ms), "output_file_id") == fixture::field(done, "output_file_id"));
}

TEST_CASE("mock batches: an expiring batch keeps half its answers, the rest batch_expired",
          "[mock][batch_api]") {
    mock_options o;
    o.batch.processing_time = 100ms;
    o.batch.expire_every = 2;
    fixture f(o);
    const std::string first = f.create(f.upload(lines(6)));
    const std::string second = f.create(f.upload(lines(6)));
    CHECK(fixture::field(f.call("GET", "/v1/batches/" + first, {}, 200ms).body, "status") ==
          "completed");
    const auto b = f.call("GET", "/v1/batches/" + second, {}, 200ms).body;
    CHECK(fixture::field(b, "status") == "expired");
    const auto out = f.call("GET", "/v1/files/" + fixture::field(b, "output_file_id") + "/content");
    const auto err = f.call("GET", "/v1/files/" + fixture::field(b, "error_file_id") + "/content");
    CHECK(custom_ids(out.body) == std::set<std::string>{"r1", "r2", "r3"});
    CHECK(custom_ids(err.body) == std::set<std::string>{"r4", "r5", "r6"});
    CHECK(err.body.find(R"("error":{"code":"batch_expired")") != std::string::npos);
}

TEST_CASE("mock batches: bad input files fail validation, naming the line", "[mock][batch_api]") {
    mock_options o;
    o.batch.processing_time = 100ms;
    fixture f(o);
    const std::string dup = f.create(f.upload(line(1) + "\n" + line(1) + "\n"));
    const std::string url = f.create(f.upload(line(1, "/v1/embeddings") + "\n"));
    const auto d = f.call("GET", "/v1/batches/" + dup, {}, 200ms).body;
    CHECK(fixture::field(d, "status") == "failed");
    CHECK(d.find(R"("code":"duplicate_custom_id")") != std::string::npos);
    CHECK(d.find(R"("line":2)") != std::string::npos);
    CHECK(f.call("GET", "/v1/batches/" + url, {}, 200ms).body.find("invalid_url") !=
          std::string::npos);
    CHECK(
        f.call(
             "POST",
             "/v1/batches",
             R"({"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h"})")
            .status == 404);
}

TEST_CASE("mock batches: cancel stops a batch, the requests not done as batch_cancelled",
          "[mock][batch_api]") {
    mock_options o;
    o.batch.processing_time = 1000ms;
    fixture f(o);
    const std::string batch = f.create(f.upload(lines(10)));
    const auto c = f.call("POST", "/v1/batches/" + batch + "/cancel", {}, 500ms).body;
    CHECK(fixture::field(c, "status") == "cancelling");
    CHECK(f.m.counters().batches_cancelled == 1);
    const auto b = f.call("GET", "/v1/batches/" + batch, {}, 700ms).body;
    CHECK(fixture::field(b, "status") == "cancelled");
    const auto out = f.call("GET", "/v1/files/" + fixture::field(b, "output_file_id") + "/content");
    const auto err = f.call("GET", "/v1/files/" + fixture::field(b, "error_file_id") + "/content");
    CHECK(custom_ids(out.body).size() == 5);
    CHECK(custom_ids(err.body).size() == 5);
    CHECK(err.body.find("batch_cancelled") != std::string::npos);
    CHECK(f.call("POST", "/v1/batches/" + batch + "/cancel", {}, 800ms).status == 409);
}

TEST_CASE("mock batches: the list finds batches by their metadata, newest first, in pages",
          "[mock][batch_api]") {
    fixture f;
    const std::string file = f.upload(lines(1));
    const std::string a = f.create(file, R"({"sluice_part":"a"})");
    const std::string b = f.create(file, R"({"sluice_part":"b"})");
    const std::string c = f.create(file, R"({"sluice_part":"c"})");
    const auto page1 = f.call("GET", "/v1/batches?limit=2").body;
    CHECK(page1.find(c) < page1.find(b));
    CHECK(page1.find(a) == std::string::npos);
    CHECK(page1.find(R"("has_more":true)") != std::string::npos);
    const auto page2 = f.call("GET", "/v1/batches?limit=2&after=" + b).body;
    CHECK(page2.find(a) != std::string::npos);
    CHECK(page2.find(R"("sluice_part":"a")") != std::string::npos);
    CHECK(page2.find(R"("has_more":false)") != std::string::npos);
}

TEST_CASE("mock batches: the API delay and a paced download", "[mock][batch_api]") {
    mock_options o;
    o.batch.api_delay = 30ms;
    o.batch.download_piece_interval = 1ms;
    fixture f(o);
    std::string big = lines(2000); // more than one 64 KiB piece
    const std::string id = f.upload(big);
    CHECK(f.m.counters().files_uploaded == 1); // stored before the delayed answer
    const auto got = f.call("GET", "/v1/files/" + id + "/content");
    CHECK(got.delay == 30ms);
    REQUIRE(got.what == mock_reply::action::stream);
    std::string joined;
    for (const auto& piece : got.stream.pieces)
        joined += piece.bytes;
    CHECK(joined == big);
    CHECK(got.stream.pieces.size() == (big.size() + 65535) / 65536);
    CHECK(got.stream.pieces.back().at > got.stream.pieces.front().at);
}
