// The Batch API client against the mock over verified TLS: every step as an async operation
// with the three kinds of completion token, the download streamed to disk, the failures as
// error codes with the provider's words, and a stored completion retrieved by id.
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"

#include <sluice/batch_api/batch_client.hpp>
#include <sluice/dispatcher.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/asio/use_future.hpp>
#pragma GCC diagnostic pop

#include <catch2/catch.hpp>

#include <fstream>
#include <optional>
#include <set>
#include <thread>

// Its own namespace: the files of tests/loopback/ are compiled together, a few to a unity
// file (tests/CMakeLists.txt), and each keeps its helpers' names to itself.
namespace batch_client_test {

using namespace sluice;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Batch API lines of `n` requests, r1..rn.
std::string batch_lines(int n) {
    std::string s;
    for (int i = 1; i <= n; ++i)
        s += R"({"custom_id":"r)" + std::to_string(i) +
             R"(","method":"POST","url":"/v1/chat/completions","body":)" + test::chat_body(i) +
             "}\n";
    return s;
}

void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

// Runs `op(client, handler)` on a fresh loop until it completes.
template <class T, class Op>
std::pair<error_code, T> call(batch_client& client, asio::io_context& ioc, Op op) {
    std::optional<std::pair<error_code, T>> r;
    op(client, [&](error_code ec, T v) { r.emplace(ec, std::move(v)); });
    while (!r && ioc.run_one() > 0) {
    }
    REQUIRE(r);
    return std::move(*r);
}

} // namespace

TEST_CASE("batch client: upload, create, poll to completed, download streamed to disk",
          "[batch_api]") {
    mock_options mo = test::mock_with_tls();
    mo.batch.processing_time = 300ms;
    mo.batch.fail_every = 10;
    mo.batch.download_piece_interval = 100us; // the output arrives in many pieces
    test::loopback_mock mock(mo);
    test::temp_dir dir;
    const int n = 500;
    write(dir.file("in.jsonl"), batch_lines(n));

    asio::io_context ioc;
    batch_client client(ioc.get_executor(), mock.client_options());

    auto [uec, file] = call<file_object>(client, ioc, [&](batch_client& c, auto h) {
        c.async_upload(dir.file("in.jsonl"), "job-part-1.jsonl", std::move(h));
    });
    REQUIRE_FALSE(uec);
    CHECK(file.bytes == batch_lines(n).size());
    CHECK(file.filename == "job-part-1.jsonl");
    CHECK(file.purpose == "batch");
    CHECK(mock.server().stats().files_uploaded == 1);

    auto [lec, files] = call<file_list>(
        client, ioc, [&](batch_client& c, auto h) { c.async_list_files(std::move(h)); });
    REQUIRE_FALSE(lec);
    REQUIRE(files.data.size() == 1);
    CHECK(files.data[0].id == file.id);

    batch_create_request req;
    req.input_file_id = file.id;
    req.metadata = {{"sluice_job", "j1"}, {"sluice_part", "1"}};
    auto [cec, created] = call<batch_object>(
        client, ioc, [&](batch_client& c, auto h) { c.async_create_batch(req, std::move(h)); });
    REQUIRE_FALSE(cec);
    CHECK(created.status == "validating");
    CHECK(created.metadata_value("sluice_part") == std::string_view("1"));
    CHECK_FALSE(created.is_final());

    // Polled with use_awaitable until it is final.
    batch_object done;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            for (;;) {
                auto [ec, b] =
                    co_await client.async_poll(created.id, asio::as_tuple(asio::use_awaitable));
                REQUIRE_FALSE(ec);
                if (b.is_final()) {
                    done = std::move(b);
                    co_return;
                }
                asio::steady_timer t(ioc, 50ms);
                co_await t.async_wait(asio::use_awaitable);
            }
        },
        asio::detached);
    while (done.id.empty() && ioc.run_one() > 0) {
    }
    CHECK(done.status == "completed");
    CHECK(done.request_counts.total == n);
    CHECK(done.request_counts.completed == 450);
    CHECK(done.request_counts.failed == 50);
    REQUIRE_FALSE(done.output_file_id.empty());

    auto [dec, bytes] = call<std::uint64_t>(client, ioc, [&](batch_client& c, auto h) {
        c.async_download(done.output_file_id, dir.file("out.jsonl"), std::move(h));
    });
    REQUIRE_FALSE(dec);
    const auto lines = test::read_lines(dir.file("out.jsonl"));
    CHECK(lines.size() == 450);
    CHECK(bytes == test::read_file(dir.file("out.jsonl")).size());
    CHECK(bytes > 64 * 1024); // more than one piece of the mock's paced download
    CHECK_FALSE(std::filesystem::exists(dir.file("out.jsonl.part")));
    CHECK(lines[0].find(R"("response":{"status_code":200)") != std::string::npos);

    auto [list_ec, page] = call<batch_list>(
        client, ioc, [&](batch_client& c, auto h) { c.async_list_batches("", std::move(h)); });
    REQUIRE_FALSE(list_ec);
    REQUIRE(page.data.size() == 1);
    CHECK(page.data[0].metadata_value("sluice_job") == std::string_view("j1"));
}

TEST_CASE("batch client: cancel, and failures carry the provider's words", "[batch_api]") {
    mock_options mo = test::mock_with_tls();
    mo.batch.processing_time = 10s;
    test::loopback_mock mock(mo);
    test::temp_dir dir;
    write(dir.file("in.jsonl"), batch_lines(3));
    asio::io_context ioc;
    batch_client client(ioc.get_executor(), mock.client_options());

    // use_future on a loop run by another thread: a failure would throw system_error.
    auto work = asio::make_work_guard(ioc);
    std::thread runner([&] { ioc.run(); });
    const file_object file =
        client.async_upload(dir.file("in.jsonl"), "x.jsonl", asio::use_future).get();
    batch_create_request req;
    req.input_file_id = file.id;
    const batch_object b = client.async_create_batch(req, asio::use_future).get();
    const batch_object cancelled = client.async_cancel(b.id, asio::use_future).get();
    CHECK(cancelled.status == "cancelling");
    CHECK(mock.server().stats().batches_cancelled == 1);
    CHECK_THROWS_AS(client.async_poll("batch_nope", asio::use_future).get(),
                    boost::system::system_error);
    work.reset();
    ioc.stop(); // the pool's idle connections would keep run() going until their timeout
    runner.join();
    ioc.restart();

    // Callbacks: the failure's code, status and the provider's words.
    auto [nec, missing] = call<batch_object>(
        client, ioc, [&](batch_client& c, auto h) { c.async_poll("batch_nope", std::move(h)); });
    CHECK(nec == errc::client_error);
    CHECK(missing.http_status == 404);
    CHECK(missing.error_message.find("batch_nope") != std::string::npos);

    batch_create_request bad;
    bad.input_file_id = file.id;
    bad.completion_window = "1h";
    auto [bec, refused] = call<batch_object>(
        client, ioc, [&](batch_client& c, auto h) { c.async_create_batch(bad, std::move(h)); });
    CHECK(bec == errc::client_error);
    CHECK(refused.http_status == 400);
    CHECK(refused.error_message.find("24h") != std::string::npos);

    auto [fec, gone] = call<std::uint64_t>(client, ioc, [&](batch_client& c, auto h) {
        c.async_download("file-nope", dir.file("x.jsonl"), std::move(h));
    });
    CHECK(fec == errc::client_error);
    CHECK(gone == 0);
    CHECK_FALSE(std::filesystem::exists(dir.file("x.jsonl")));
    CHECK_FALSE(std::filesystem::exists(dir.file("x.jsonl.part")));

    auto [mec, nofile] = call<file_object>(client, ioc, [&](batch_client& c, auto h) {
        c.async_upload(dir.file("absent.jsonl"), "a.jsonl", std::move(h));
    });
    CHECK(mec);
    CHECK(nofile.error_message.find("absent.jsonl") != std::string::npos);
}

TEST_CASE("batch client: a completion sent with store true is retrieved by its id", "[batch_api]") {
    test::loopback_mock mock(test::mock_with_tls());
    asio::io_context ioc;
    dispatcher engine(ioc.get_executor(), mock.client_options());
    request r;
    r.custom_id = "stored";
    r.body = R"({"model":"gpt-4o-mini","store":true,"messages":[{"role":"user","content":"hi"}]})";
    std::optional<result> sent;
    engine.async_complete(std::move(r), [&](error_code, result res) {
        sent = std::move(res);
        engine.stop();
    });
    ioc.run();
    REQUIRE(sent);
    REQUIRE(sent->ok());
    const std::string id = sent->completion.id.str();
    REQUIRE_FALSE(id.empty());

    asio::io_context ioc2;
    batch_client client(ioc2.get_executor(), mock.client_options());
    auto [ec, stored] = call<stored_completion>(
        client, ioc2, [&](batch_client& c, auto h) { c.async_retrieve(id, std::move(h)); });
    REQUIRE_FALSE(ec);
    CHECK(stored.body == sent->body);
    auto [mec, missing] = call<stored_completion>(client, ioc2, [&](batch_client& c, auto h) {
        c.async_retrieve("chatcmpl-nope", std::move(h));
    });
    CHECK(mec == errc::client_error);
    CHECK(missing.http_status == 404);
}

TEST_CASE("batch client: 503s are retried after the server's hint, and close ends a wait",
          "[batch_api]") {
    mock_options mo = test::mock_with_tls();
    mo.batch.fail_first_calls = 2;
    test::loopback_mock mock(mo);
    test::temp_dir dir;
    write(dir.file("in.jsonl"), batch_lines(2));
    asio::io_context ioc;
    batch_client client(ioc.get_executor(), mock.client_options());
    auto [ec, file] = call<file_object>(client, ioc, [&](batch_client& c, auto h) {
        c.async_upload(dir.file("in.jsonl"), "in.jsonl", std::move(h));
    });
    REQUIRE_FALSE(ec);
    CHECK(mock.server().stats().batch_api_calls == 3);
    CHECK(mock.server().stats().files_uploaded == 1);

    // Retries spent: the last failure, with its status and words.
    auto opts = mock.client_options();
    opts.retry.max_attempts = 2;
    mock_options always = test::mock_with_tls();
    always.batch.fail_first_calls = 1000;
    test::loopback_mock busy(always);
    opts.base_url = busy.server().base_url();
    opts.tls.ca_pem = busy.server().certificate_pem();
    batch_client impatient(ioc.get_executor(), opts);
    auto [pec, polled] = call<batch_object>(
        impatient, ioc, [&](batch_client& c, auto h) { c.async_poll("batch_x", std::move(h)); });
    CHECK(pec == errc::server_error);
    CHECK(polled.http_status == 503);
    CHECK(polled.error_message.find("overloaded") != std::string::npos);
    CHECK(busy.server().stats().batch_api_calls == 2);

    // close() during the backoff before a retry (a refused connection: no hint, so the
    // backoff rules, drawn up to a minute): the operation ends at once, aborted.
    dispatcher_options refused;
    refused.base_url = "http://127.0.0.1:1/v1";
    refused.retry.initial_backoff = std::chrono::milliseconds(60'000);
    refused.retry.max_backoff = std::chrono::milliseconds(60'000);
    batch_client closing(ioc.get_executor(), refused);
    std::optional<error_code> done;
    closing.async_poll("batch_x", [&](error_code e, batch_object) { done = e; });
    const auto start = std::chrono::steady_clock::now();
    ioc.run_for(200ms);
    REQUIRE_FALSE(done);
    closing.close();
    while (!done)
        ioc.run_one();
    CHECK(*done == asio::error::operation_aborted);
    CHECK(std::chrono::steady_clock::now() - start < 10s);
}

TEST_CASE("batch client: Azure OpenAI's files and batches are the resource's, with api-version",
          "[batch_api]") {
    mock_options mo = test::mock_with_tls();
    mo.batch.processing_time = 0ms;
    test::loopback_mock mock(mo);
    test::temp_dir dir;
    std::string lines;
    for (int i = 1; i <= 3; ++i)
        lines += R"({"custom_id":"a)" + std::to_string(i) +
                 R"(","method":"POST","url":"/chat/completions","body":)" + test::chat_body(i) +
                 "}\n";
    write(dir.file("in.jsonl"), lines);
    auto opts = mock.client_options();
    const std::string root = opts.base_url.substr(0, opts.base_url.size() - 3); // without /v1
    opts.base_url = root + "/openai/deployments/gpt-4o-mini?api-version=2024-10-21";
    REQUIRE(opts.effective_style() == api_style::azure);
    asio::io_context ioc;
    batch_client client(ioc.get_executor(), opts);
    auto [uec, file] = call<file_object>(client, ioc, [&](batch_client& c, auto h) {
        c.async_upload(dir.file("in.jsonl"), "in.jsonl", std::move(h));
    });
    REQUIRE_FALSE(uec); // /openai/files: the deployment's path would be a 404
    batch_create_request req;
    req.input_file_id = file.id;
    req.endpoint = "/chat/completions";
    auto [cec, b] = call<batch_object>(
        client, ioc, [&](batch_client& c, auto h) { c.async_create_batch(req, std::move(h)); });
    REQUIRE_FALSE(cec);
    auto [pec, done] = call<batch_object>(
        client, ioc, [&](batch_client& c, auto h) { c.async_poll(b.id, std::move(h)); });
    REQUIRE_FALSE(pec);
    CHECK(done.status == "completed");
    CHECK(done.request_counts.completed == 3);
}

} // namespace batch_client_test
