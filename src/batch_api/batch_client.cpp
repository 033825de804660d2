#include <sluice/batch_api/batch_client.hpp>

#include "batch_api/api_call.hpp"
#include "batch_api/file_io.hpp"
#include "batch_api/multipart.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <simdjson.h>

namespace sluice {

namespace asio = boost::asio;

struct batch_client::impl : detail::api_caller {
    using detail::api_caller::api_caller;
};

namespace {

// Runs `op` (a coroutine returning {ec, T}) on the client's executor and hands its outcome to
// `h`. An exception out of it (out of memory, a file that cannot be mapped) becomes the error
// the caller sees instead of escaping into the io_context.
template <class T, class Op>
void launch(const std::shared_ptr<detail::api_caller>& self,
            asio::any_completion_handler<void(error_code, T)> h,
            Op op) {
    asio::co_spawn(self->ex,
                   std::move(op),
                   [h = std::move(h)](std::exception_ptr e, std::pair<error_code, T> r) mutable {
                       if (e) {
                           T failed{};
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::system_error& se) {
                               failed.error_message = se.what();
                               return std::move(h)(se.code(), std::move(failed));
                           } catch (const std::exception& ex) {
                               failed.error_message = ex.what();
                           }
                           return std::move(h)(make_error_code(errc::malformed_response),
                                               std::move(failed));
                       }
                       std::move(h)(r.first, std::move(r.second));
                   });
}

// Fills `out`'s api_reply from `resp` and reads its object with `parse` when the call worked.
template <class T, class Parse>
std::pair<error_code, T> reply_of(const detail::api_answer& a, Parse parse) {
    T out{};
    out.http_status = a.resp.status;
    out.error_message = a.message;
    if (a.ec)
        return {a.ec, std::move(out)};
    if (!parse(a.resp.body, out)) {
        out.error_message = "the answer is not the object expected";
        return {make_error_code(errc::malformed_response), std::move(out)};
    }
    return {error_code{}, std::move(out)};
}

} // namespace

batch_client::batch_client(asio::any_io_executor ex, dispatcher_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts))) {}

batch_client::~batch_client() {
    if (impl_)
        impl_->close();
}

void batch_client::close() {
    impl_->close();
}

void batch_client::upload_erased(std::string path, std::string filename, handler<file_object> h) {
    auto self = impl_;
    launch<file_object>(self,
                        std::move(h),
                        [self, path = std::move(path), filename = std::move(filename)]()
                            -> asio::awaitable<std::pair<error_code, file_object>> {
                            const detail::mapped_file file(path);
                            const detail::multipart_body form("batch", filename, file.view());
                            request_spec spec;
                            spec.method = "POST";
                            const std::string target = self->target("/files");
                            spec.target = target;
                            spec.content_type = form.content_type();
                            spec.body = {form.preamble(), file.view(), form.epilogue()};
                            const detail::api_answer a = co_await self->call(spec);
                            co_return reply_of<file_object>(a, detail::parse_file_object);
                        });
}

void batch_client::create_erased(batch_create_request r, handler<batch_object> h) {
    auto self = impl_;
    launch<batch_object>(
        self,
        std::move(h),
        [self, r = std::move(r)]() -> asio::awaitable<std::pair<error_code, batch_object>> {
            const std::string body = detail::batch_create_body(r);
            const std::string target = self->target("/batches");
            request_spec spec;
            spec.target = target;
            spec.body = {body};
            const detail::api_answer a = co_await self->call(spec);
            co_return reply_of<batch_object>(a, detail::parse_batch_object);
        });
}

void batch_client::poll_erased(std::string id, bool cancel, handler<batch_object> h) {
    auto self = impl_;
    launch<batch_object>(self,
                         std::move(h),
                         [self,
                          id = std::move(id),
                          cancel]() -> asio::awaitable<std::pair<error_code, batch_object>> {
                             const std::string target = self->target(
                                 "/batches/" + detail::url_segment(id) + (cancel ? "/cancel" : ""));
                             request_spec spec;
                             spec.method = cancel ? "POST" : "GET";
                             spec.content_type = cancel ? "application/json" : "";
                             spec.target = target;
                             const detail::api_answer a = co_await self->call(spec);
                             co_return reply_of<batch_object>(a, detail::parse_batch_object);
                         });
}

void batch_client::list_batches_erased(std::string after, handler<batch_list> h) {
    auto self = impl_;
    launch<batch_list>(
        self,
        std::move(h),
        [self, after = std::move(after)]() -> asio::awaitable<std::pair<error_code, batch_list>> {
            const std::string target = self->target(
                "/batches",
                "limit=100" + (after.empty() ? "" : "&after=" + detail::url_segment(after)));
            request_spec spec;
            spec.method = "GET";
            spec.content_type = "";
            spec.target = target;
            const detail::api_answer a = co_await self->call(spec);
            co_return reply_of<batch_list>(a, detail::parse_batch_list);
        });
}

void batch_client::list_files_erased(handler<file_list> h) {
    auto self = impl_;
    launch<file_list>(
        self, std::move(h), [self]() -> asio::awaitable<std::pair<error_code, file_list>> {
            const std::string target = self->target("/files", "purpose=batch");
            request_spec spec;
            spec.method = "GET";
            spec.content_type = "";
            spec.target = target;
            const detail::api_answer a = co_await self->call(spec);
            co_return reply_of<file_list>(a, detail::parse_file_list);
        });
}

namespace {

// The byte count of a download, with the api_reply members the launcher fills on failure.
struct download_result : api_reply {
    std::uint64_t bytes = 0;
};

} // namespace

void batch_client::download_erased(std::string id, std::string path, handler<std::uint64_t> h) {
    auto self = impl_;
    // The byte count is the whole answer: the handler of T = uint64_t takes the code only.
    launch<download_result>(
        self,
        [h = std::move(h)](error_code ec, download_result r) mutable { std::move(h)(ec, r.bytes); },
        [self,
         id = std::move(id),
         path = std::move(path)]() -> asio::awaitable<std::pair<error_code, download_result>> {
            detail::file_sink sink(path);
            const std::string target =
                self->target("/files/" + detail::url_segment(id) + "/content");
            request_spec spec;
            spec.method = "GET";
            spec.content_type = "";
            spec.target = target;
            spec.observe_any_body = true;
            const detail::api_answer a =
                co_await self->call(spec, &sink, [&sink] { sink.restart(); });
            download_result out;
            out.http_status = a.resp.status;
            out.error_message = a.message;
            if (a.ec)
                co_return std::pair{a.ec, std::move(out)};
            if (!a.resp.streamed) // a 2xx without a body the pool handed over
                sink.take_collected(a.resp.body);
            out.bytes = sink.commit();
            co_return std::pair{error_code{}, std::move(out)};
        });
}

void batch_client::retrieve_erased(std::string id, handler<stored_completion> h) {
    auto self = impl_;
    launch<stored_completion>(
        self,
        std::move(h),
        [self, id = std::move(id)]() -> asio::awaitable<std::pair<error_code, stored_completion>> {
            const std::string target = self->target("/chat/completions/" + detail::url_segment(id));
            request_spec spec;
            spec.method = "GET";
            spec.content_type = "";
            spec.target = target;
            const detail::api_answer a = co_await self->call(spec);
            co_return reply_of<stored_completion>(
                a, [](std::string_view body, stored_completion& out) {
                    simdjson::dom::parser p;
                    if (p.parse(simdjson::padded_string(body)).error())
                        return false;
                    out.body.assign(body.data(), body.size());
                    return true;
                });
        });
}

} // namespace sluice
