// The Batch API's objects read from the JSON the providers send, and the framing of an upload.
#include <sluice/batch_api/batch_objects.hpp>

#include "batch_api/multipart.hpp"

#include <catch2/catch.hpp>

using namespace sluice;

TEST_CASE("batch objects: a batch as OpenAI documents it", "[batch_api]") {
    const std::string json = R"({
      "id": "batch_abc123", "object": "batch", "endpoint": "/v1/chat/completions",
      "errors": null, "input_file_id": "file-abc123", "completion_window": "24h",
      "status": "completed", "output_file_id": "file-cvaTdG", "error_file_id": "file-HOWS94",
      "created_at": 1711471533, "in_progress_at": 1711471538, "expires_at": 1711557933,
      "finalizing_at": 1711493133, "completed_at": 1711493163, "failed_at": null,
      "expired_at": null, "cancelling_at": null, "cancelled_at": null,
      "request_counts": {"total": 100, "completed": 95, "failed": 5},
      "metadata": {"customer_id": "user_123456789", "batch_description": "Nightly eval job"}})";
    batch_object b;
    REQUIRE(detail::parse_batch_object(json, b));
    CHECK(b.id == "batch_abc123");
    CHECK(b.status == "completed");
    CHECK(b.is_final());
    CHECK(b.output_file_id == "file-cvaTdG");
    CHECK(b.error_file_id == "file-HOWS94");
    CHECK(b.created_at == 1711471533);
    CHECK(b.request_counts.total == 100);
    CHECK(b.request_counts.completed == 95);
    CHECK(b.request_counts.failed == 5);
    CHECK(b.metadata_value("customer_id") == std::string_view("user_123456789"));
    CHECK_FALSE(b.metadata_value("absent"));
}

TEST_CASE("batch objects: a failed validation's errors, null files, a list page", "[batch_api]") {
    batch_object b;
    REQUIRE(detail::parse_batch_object(
        R"({"id":"batch_1","status":"failed","output_file_id":null,"error_file_id":null,)"
        R"("errors":{"object":"list","data":[{"code":"invalid_json_line","message":"Line 3 is bad","line":3}]}})",
        b));
    CHECK(b.is_final());
    CHECK(b.output_file_id.empty());
    CHECK(b.errors == "Line 3 is bad");
    batch_object in_progress;
    REQUIRE(detail::parse_batch_object(R"({"id":"b","status":"in_progress"})", in_progress));
    CHECK_FALSE(in_progress.is_final());
    CHECK_FALSE(detail::parse_batch_object(R"({"status":"completed"})", b));
    CHECK_FALSE(detail::parse_batch_object(R"({"id":1,"status":"completed"})", b));
    CHECK_FALSE(detail::parse_batch_object("<html>", b));

    batch_list page;
    REQUIRE(detail::parse_batch_list(
        R"({"object":"list","data":[{"id":"b2","status":"completed"},{"id":"b1","status":"failed"}],)"
        R"("first_id":"b2","last_id":"b1","has_more":true})",
        page));
    REQUIRE(page.data.size() == 2);
    CHECK(page.has_more);
    CHECK(page.last_id == "b1");

    file_list files;
    REQUIRE(detail::parse_file_list(
        R"({"object":"list","data":[{"id":"file-1","object":"file","bytes":120,"created_at":1,"filename":"a.jsonl","purpose":"batch"}]})",
        files));
    REQUIRE(files.data.size() == 1);
    CHECK(files.data[0].bytes == 120);
    CHECK(files.data[0].filename == "a.jsonl");
}

TEST_CASE("batch objects: the create body carries the metadata, quoted", "[batch_api]") {
    batch_create_request r;
    r.input_file_id = "file-1";
    r.metadata = {{"sluice_job", "j\"1"}, {"sluice_part", "2"}};
    CHECK(
        detail::batch_create_body(r) ==
        R"({"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h",)"
        R"("metadata":{"sluice_job":"j\"1","sluice_part":"2"}})");
}

TEST_CASE("multipart: the file between a preamble and an epilogue, a boundary not in it",
          "[batch_api]") {
    const std::string file = "{\"custom_id\":\"a\"}\n";
    const detail::multipart_body m("batch", "in\"put.jsonl", file);
    const std::string type = m.content_type();
    REQUIRE(type.rfind("multipart/form-data; boundary=", 0) == 0);
    const std::string boundary = type.substr(type.find('=') + 1);
    CHECK(file.find(boundary) == std::string::npos);
    const std::string body = m.preamble() + file + m.epilogue();
    CHECK(body.rfind("--" + boundary + "\r\n", 0) == 0);
    CHECK(body.find("name=\"purpose\"\r\n\r\nbatch\r\n") != std::string::npos);
    CHECK(body.find("filename=\"in_put.jsonl\"") != std::string::npos);
    CHECK(body.substr(body.size() - boundary.size() - 6) == "--" + boundary + "--\r\n");
    CHECK(detail::url_segment("batch_a/b c") == "batch_a%2Fb%20c");
}
