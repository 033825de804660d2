#include "mock/mock_batches.hpp"
#include "detail/json_string.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <set>

namespace sluice::detail {

namespace {

namespace sj = simdjson;

// The most requests and bytes one batch input file may hold, as OpenAI documents them.
constexpr std::size_t max_batch_lines = 50'000;
constexpr std::size_t piece_bytes = 64 * 1024;

mock_reply json_error(unsigned status, std::string_view message, std::string_view code = {}) {
    mock_reply r;
    r.status = status;
    r.body = R"({"error":{"message":)";
    append_json_string(r.body, message);
    r.body += R"(,"type":"invalid_request_error","param":null,"code":)";
    if (code.empty())
        r.body += "null";
    else
        append_json_string(r.body, code);
    r.body += "}}";
    return r;
}

void add_member(std::string& out, std::string_view name, std::string_view value) {
    out += '"';
    out += name;
    out += "\":";
    append_json_string(out, value);
}

std::string number_or_null(std::optional<long long> v) {
    return v ? std::to_string(*v) : std::string("null");
}

// The part of a multipart/form-data body named `name`: its content, and its filename when it
// is a file part. Parsed just enough for what clients send.
struct form_part {
    std::string_view content;
    std::string filename;
    bool found = false;
};

form_part find_part(std::string_view body, std::string_view boundary, std::string_view name) {
    const std::string delimiter = "--" + std::string(boundary);
    std::size_t at = body.find(delimiter);
    while (at != std::string_view::npos) {
        const std::size_t head_start = at + delimiter.size();
        if (body.substr(head_start, 2) == "--")
            break;
        const std::size_t head_end = body.find("\r\n\r\n", head_start);
        if (head_end == std::string_view::npos)
            break;
        const std::size_t next = body.find("\r\n" + delimiter, head_end + 4);
        if (next == std::string_view::npos)
            break;
        const std::string_view head = body.substr(head_start, head_end - head_start);
        const std::string want = "name=\"" + std::string(name) + "\"";
        if (head.find(want) != std::string_view::npos) {
            form_part p;
            p.found = true;
            p.content = body.substr(head_end + 4, next - head_end - 4);
            if (auto f = head.find("filename=\""); f != std::string_view::npos) {
                const std::size_t end = head.find('"', f + 10);
                p.filename = std::string(head.substr(f + 10, end - f - 10));
            }
            return p;
        }
        at = next + 2;
    }
    return {};
}

std::string batch_errors(std::string_view code, std::string_view message, std::uint64_t line) {
    std::string e = R"({"object":"list","data":[{)";
    add_member(e, "code", code);
    e += ',';
    add_member(e, "message", message);
    e += R"(,"param":null,"line":)";
    e += line ? std::to_string(line) : std::string("null");
    e += "}]}";
    return e;
}

} // namespace

std::optional<std::string_view> query_value(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const std::size_t eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    }
    return std::nullopt;
}

mock_batches::mock_batches(const mock_batch_options& opts,
                           mock_counters& counters,
                           batch_answerer answer)
    : opts_(opts)
    , counters_(counters)
    , answer_(std::move(answer)) {}

bool mock_batches::handles(std::string_view path) {
    for (std::string_view prefix : {"/v1/", "/openai/"}) {
        if (path.substr(0, prefix.size()) != prefix)
            continue;
        const std::string_view rest = path.substr(prefix.size());
        for (std::string_view what : {"files", "batches"})
            if (rest.substr(0, what.size()) == what &&
                (rest.size() == what.size() || rest[what.size()] == '/'))
                return true;
    }
    return false;
}

mock_reply mock_batches::on_request(std::string_view method,
                                    std::string_view path,
                                    std::string_view query,
                                    std::string_view content_type,
                                    std::string_view body,
                                    clock::time_point now) {
    const long long unix_now = static_cast<long long>(std::time(nullptr));
    path = path.substr(path.find('/', 1)); // "/files..." or "/batches..."
    mock_reply r;
    if (++counters_.batch_api_calls <= opts_.fail_first_calls) {
        r = json_error(503, "The engine is currently overloaded, please try again later.");
        r.headers.emplace_back("retry-after-ms", "20");
    } else if (path == "/files") {
        if (method == "POST")
            r = upload(content_type, body, unix_now);
        else if (method == "GET")
            r = list_files(query);
        else
            r = json_error(405, "Use GET or POST");
    } else if (path.substr(0, 7) == "/files/") {
        r = file_reply(path.substr(7), method);
    } else if (path == "/batches") {
        if (method == "POST")
            r = create(body, now, unix_now);
        else if (method == "GET")
            r = list_batches(query, now, unix_now);
        else
            r = json_error(405, "Use GET or POST");
    } else {
        r = batch_reply(path.substr(9), method, now, unix_now);
    }
    r.delay = std::chrono::duration_cast<std::chrono::microseconds>(opts_.api_delay);
    if (r.what == mock_reply::action::stream) {
        for (auto& piece : r.stream.pieces)
            piece.at += r.delay;
        r.stream.end_at += r.delay;
    }
    return r;
}

std::string mock_batches::add_file(std::string filename,
                                   std::string purpose,
                                   std::string content,
                                   long long unix_now) {
    file f;
    f.id = "file-mock" + std::to_string(next_file_++);
    f.filename = std::move(filename);
    f.purpose = std::move(purpose);
    f.created_at = unix_now;
    f.content = std::make_shared<const std::string>(std::move(content));
    const std::string id = f.id;
    files_.emplace(id, std::move(f));
    return id;
}

std::string mock_batches::file_json(const file& f) const {
    std::string j = "{";
    add_member(j, "id", f.id);
    j += R"(,"object":"file","bytes":)" + std::to_string(f.content->size());
    j += R"(,"created_at":)" + std::to_string(f.created_at) + ",";
    add_member(j, "filename", f.filename);
    j += ',';
    add_member(j, "purpose", f.purpose);
    j += R"(,"status":"processed","status_details":null})";
    return j;
}

mock_reply
mock_batches::upload(std::string_view content_type, std::string_view body, long long unix_now) {
    const std::size_t b = content_type.find("boundary=");
    if (content_type.substr(0, 19) != "multipart/form-data" || b == std::string_view::npos)
        return json_error(400, "Expected a multipart/form-data body with a boundary");
    std::string_view boundary = content_type.substr(b + 9);
    boundary = boundary.substr(0, boundary.find(';'));
    if (boundary.size() >= 2 && boundary.front() == '"')
        boundary = boundary.substr(1, boundary.size() - 2);
    const form_part purpose = find_part(body, boundary, "purpose");
    const form_part content = find_part(body, boundary, "file");
    if (!purpose.found || !content.found)
        return json_error(400, "Missing the 'purpose' or 'file' part");
    if (purpose.content != "batch")
        return json_error(400, "Only purpose 'batch' is supported by the mock");
    if (content.content.size() > opts_.max_file_bytes)
        return json_error(413, "File too large");
    ++counters_.files_uploaded;
    const std::string id = add_file(content.filename.empty() ? "upload.jsonl" : content.filename,
                                    "batch",
                                    std::string(content.content),
                                    unix_now);
    mock_reply r;
    r.body = file_json(files_.at(id));
    return r;
}

mock_reply mock_batches::list_files(std::string_view query) const {
    const auto purpose = query_value(query, "purpose");
    std::string j = R"({"object":"list","data":[)";
    bool first = true;
    for (auto it = files_.rbegin(); it != files_.rend(); ++it) {
        if (purpose && it->second.purpose != *purpose)
            continue;
        if (!first)
            j += ',';
        first = false;
        j += file_json(it->second);
    }
    j += R"(],"has_more":false})";
    mock_reply r;
    r.body = std::move(j);
    return r;
}

mock_reply mock_batches::file_reply(std::string_view rest, std::string_view method) {
    const bool content = rest.size() > 8 && rest.substr(rest.size() - 8) == "/content";
    const std::string id(content ? rest.substr(0, rest.size() - 8) : rest);
    auto it = files_.find(id);
    if (it == files_.end())
        return json_error(404, "No such File object: " + id);
    if (method != "GET")
        return json_error(405, "Use GET");
    if (content) {
        ++counters_.file_downloads;
        return content_reply(it->second);
    }
    mock_reply r;
    r.body = file_json(it->second);
    return r;
}

mock_reply mock_batches::content_reply(const file& f) const {
    mock_reply r;
    r.content_type = "application/octet-stream";
    const std::string& c = *f.content;
    if (opts_.download_piece_interval.count() <= 0 || c.empty()) {
        r.body = c;
        return r;
    }
    r.what = mock_reply::action::stream;
    std::chrono::microseconds at{0};
    for (std::size_t off = 0; off < c.size(); off += piece_bytes) {
        r.stream.pieces.push_back({at, c.substr(off, piece_bytes)});
        at += opts_.download_piece_interval;
    }
    r.stream.end_at = at - opts_.download_piece_interval;
    return r;
}

mock_reply mock_batches::create(std::string_view body, clock::time_point now, long long unix_now) {
    sj::dom::parser parser;
    sj::padded_string padded(body);
    sj::dom::object o;
    if (parser.parse(padded).get_object().get(o))
        return json_error(400, "We could not parse the JSON body of your request.");
    std::string_view input, endpoint, window;
    if (o["input_file_id"].get_string().get(input) || o["endpoint"].get_string().get(endpoint) ||
        o["completion_window"].get_string().get(window))
        return json_error(400,
                          "input_file_id, endpoint and completion_window are required strings");
    if (endpoint != "/v1/chat/completions" && endpoint != "/chat/completions")
        return json_error(400, "The mock serves batches of /v1/chat/completions only");
    if (window != "24h")
        return json_error(400, "completion_window must be 24h", "invalid_value");
    auto f = files_.find(std::string(input));
    if (f == files_.end())
        return json_error(404, "No such File object: " + std::string(input));

    batch b;
    b.id = "batch_mock" + std::to_string(next_batch_++);
    b.endpoint = endpoint;
    b.window = window;
    b.input_file_id = input;
    b.created_at = unix_now;
    b.start = now;
    b.expires = opts_.expire_every > 0 && (next_batch_ - 1) % opts_.expire_every == 0;
    sj::dom::element metadata;
    if (!o["metadata"].get(metadata) && metadata.is_object())
        b.metadata = sj::minify(metadata);

    // Validation, as the real service does it while `validating`: each line a request of
    // this endpoint with a custom_id unique in the file.
    const std::string& text = *f->second.content;
    std::set<std::string, std::less<>> ids;
    std::uint64_t number = 0;
    for (std::size_t at = 0; at < text.size();) {
        std::size_t end = text.find('\n', at);
        if (end == std::string::npos)
            end = text.size();
        const std::string_view raw(text.data() + at, end - at);
        at = end + 1;
        ++number;
        if (raw.empty())
            continue;
        sj::padded_string pl(raw);
        sj::dom::object l;
        std::string_view id, m, url;
        sj::dom::element lb;
        if (parser.parse(pl).get_object().get(l) || l["custom_id"].get_string().get(id) ||
            l["method"].get_string().get(m) || l["url"].get_string().get(url) ||
            l["body"].get(lb) || !lb.is_object()) {
            b.errors = batch_errors(
                "invalid_json_line", "This line is not a valid request of the Batch API.", number);
            break;
        }
        if (url != b.endpoint || m != "POST") {
            b.errors = batch_errors("invalid_url",
                                    "The url of the request does not match the batch's endpoint.",
                                    number);
            break;
        }
        if (!ids.emplace(id).second) {
            b.errors = batch_errors("duplicate_custom_id",
                                    "The custom_id of this line is used by an earlier line.",
                                    number);
            break;
        }
        b.lines.push_back({std::string(id), sj::minify(lb)});
    }
    if (b.errors == "null" && b.lines.size() > max_batch_lines)
        b.errors = batch_errors("too_many_requests", "A batch holds at most 50000 requests.", 0);
    if (b.errors == "null" && b.lines.empty())
        b.errors = batch_errors("empty_file", "The input file holds no request.", 0);
    ++counters_.batches_created;
    const std::string id = b.id;
    batch_order_.push_back(id);
    auto& stored = batches_.emplace(id, std::move(b)).first->second;
    mock_reply r;
    r.body = batch_json(stored, now, unix_now);
    return r;
}

// What `b` is at `now`, and the fraction of its requests done by then.
std::string mock_batches::status_of(batch& b, clock::time_point now, double& fraction) const {
    if (!b.final_status.empty()) {
        fraction = 1;
        return b.final_status;
    }
    const double p = std::chrono::duration<double>(opts_.processing_time).count();
    const double e = std::chrono::duration<double>(now - b.start).count();
    auto progress = [&](double t) {
        return p <= 0 ? 1.0 : std::clamp((t - p / 10) / (0.8 * p), 0.0, 1.0);
    };
    if (b.cancel_requested) {
        fraction = b.cancel_fraction;
        const double since = std::chrono::duration<double>(now - *b.cancel_requested).count();
        return since >= p / 10 ? "cancelled" : "cancelling";
    }
    fraction = progress(e);
    if (b.errors != "null")
        return e >= p / 10 ? "failed" : "validating";
    if (e >= p)
        return b.expires ? "expired" : "completed";
    if (e < p / 10)
        return "validating";
    return e < 0.9 * p ? "in_progress" : "finalizing";
}

// Writes the output and error files of a batch that is over: the first `fraction` of its
// lines answered (or failed), the rest `batch_expired` / `batch_cancelled`.
void mock_batches::finish(batch& b,
                          const std::string& status,
                          double fraction,
                          long long unix_now) {
    b.final_status = status;
    if (status == "failed")
        return;
    std::size_t done = b.lines.size();
    if (status == "expired")
        done = b.lines.size() / 2;
    else if (status == "cancelled")
        done = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(b.lines.size())));
    std::string out, err;
    for (std::size_t i = 0; i < b.lines.size(); ++i) {
        const line& l = b.lines[i];
        std::string rec = "{";
        add_member(rec, "id", "batch_req_mock" + std::to_string(next_record_++));
        rec += ',';
        add_member(rec, "custom_id", l.custom_id);
        if (i >= done) {
            const bool expired = status == "expired";
            rec += R"(,"response":null,"error":{"code":)";
            rec += expired ? R"("batch_expired")" : R"("batch_cancelled")";
            rec += R"(,"message":)";
            rec +=
                expired
                    ? R"("This request could not be executed before the completion window expired.")"
                    : R"("This request was not executed because the batch was cancelled.")";
            rec += "}}\n";
            err += rec;
            continue;
        }
        ++counters_.batch_requests;
        batch_line_answer a;
        if (opts_.fail_every > 0 && (i + 1) % opts_.fail_every == 0) {
            a.status = 500;
            a.body =
                R"({"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}})";
            a.request_id = "req_mockbatch" + std::to_string(next_record_);
        } else {
            a = answer_(l.body);
        }
        rec += R"(,"response":{"status_code":)" + std::to_string(a.status) + ",";
        add_member(rec, "request_id", a.request_id);
        rec += R"(,"body":)" + a.body + R"(},"error":null})" + "\n";
        if (a.status == 200) {
            ++b.completed;
            out += rec;
        } else {
            ++b.failed;
            err += rec;
        }
    }
    if (!out.empty())
        b.output_file_id =
            add_file(b.id + "_output.jsonl", "batch_output", std::move(out), unix_now);
    if (!err.empty())
        b.error_file_id = add_file(b.id + "_error.jsonl", "batch_output", std::move(err), unix_now);
}

std::string mock_batches::batch_json(batch& b, clock::time_point now, long long unix_now) {
    double fraction = 0;
    const std::string status = status_of(b, now, fraction);
    const bool over =
        status == "completed" || status == "expired" || status == "cancelled" || status == "failed";
    if (over && b.final_status.empty())
        finish(b, status, fraction, unix_now);
    std::uint64_t total = b.lines.size(), completed = b.completed, failed = b.failed;
    if (!over) {
        const auto processed = static_cast<std::uint64_t>(fraction * static_cast<double>(total));
        failed = opts_.fail_every ? processed / opts_.fail_every : 0;
        completed = processed - failed;
    }
    if (status == "failed")
        total = completed = failed = 0;
    const long long c = b.created_at;
    const bool started = status != "validating" && status != "failed";
    std::string j = "{";
    add_member(j, "id", b.id);
    j += R"(,"object":"batch",)";
    add_member(j, "endpoint", b.endpoint);
    j += R"(,"errors":)" + b.errors + ",";
    add_member(j, "input_file_id", b.input_file_id);
    j += ',';
    add_member(j, "completion_window", b.window);
    j += ',';
    add_member(j, "status", status);
    j += R"(,"output_file_id":)";
    j += b.output_file_id.empty() ? "null" : "\"" + b.output_file_id + "\"";
    j += R"(,"error_file_id":)";
    j += b.error_file_id.empty() ? "null" : "\"" + b.error_file_id + "\"";
    j += R"(,"created_at":)" + std::to_string(c);
    j += R"(,"in_progress_at":)" + number_or_null(started ? std::optional(c) : std::nullopt);
    j += R"(,"expires_at":)" + std::to_string(c + 86400);
    j += R"(,"finalizing_at":)" + number_or_null(status == "finalizing" || status == "completed"
                                                     ? std::optional(c)
                                                     : std::nullopt);
    j += R"(,"completed_at":)" +
         number_or_null(status == "completed" ? std::optional(unix_now) : std::nullopt);
    j += R"(,"failed_at":)" +
         number_or_null(status == "failed" ? std::optional(unix_now) : std::nullopt);
    j += R"(,"expired_at":)" +
         number_or_null(status == "expired" ? std::optional(unix_now) : std::nullopt);
    j += R"(,"cancelling_at":)" +
         number_or_null(b.cancel_requested ? std::optional(c) : std::nullopt);
    j += R"(,"cancelled_at":)" +
         number_or_null(status == "cancelled" ? std::optional(unix_now) : std::nullopt);
    j += R"(,"request_counts":{"total":)" + std::to_string(total) + R"(,"completed":)" +
         std::to_string(completed) + R"(,"failed":)" + std::to_string(failed) + "}";
    j += R"(,"metadata":)" + b.metadata + "}";
    return j;
}

mock_reply mock_batches::batch_reply(std::string_view rest,
                                     std::string_view method,
                                     clock::time_point now,
                                     long long unix_now) {
    const bool cancel = rest.size() > 7 && rest.substr(rest.size() - 7) == "/cancel";
    const std::string id(cancel ? rest.substr(0, rest.size() - 7) : rest);
    auto it = batches_.find(id);
    if (it == batches_.end())
        return json_error(404, "No such Batch object: " + id);
    batch& b = it->second;
    if (cancel != (method == "POST"))
        return json_error(405, cancel ? "Use POST" : "Use GET");
    if (cancel) {
        double fraction = 0;
        const std::string status = status_of(b, now, fraction);
        if (status != "validating" && status != "in_progress" && status != "finalizing" &&
            status != "cancelling")
            return json_error(
                409, "Cannot cancel a batch with status '" + status + "'.", "invalid_state");
        if (!b.cancel_requested) {
            ++counters_.batches_cancelled;
            b.cancel_requested = now;
            b.cancel_fraction = fraction;
        }
    }
    mock_reply r;
    r.body = batch_json(b, now, unix_now);
    return r;
}

mock_reply
mock_batches::list_batches(std::string_view query, clock::time_point now, long long unix_now) {
    std::size_t limit = 20;
    if (auto l = query_value(query, "limit")) {
        limit = 0;
        for (char ch : *l)
            limit = ch >= '0' && ch <= '9' ? limit * 10 + static_cast<std::size_t>(ch - '0') : 0;
        limit = std::clamp<std::size_t>(limit, 1, 100);
    }
    const auto after = query_value(query, "after");
    std::string j = R"({"object":"list","data":[)";
    std::size_t n = 0;
    bool skipping = after.has_value();
    bool more = false;
    std::string first, last;
    for (auto it = batch_order_.rbegin(); it != batch_order_.rend(); ++it) { // newest first
        if (skipping) {
            skipping = *it != *after;
            continue;
        }
        if (n == limit) {
            more = true;
            break;
        }
        if (n++)
            j += ',';
        j += batch_json(batches_.at(*it), now, unix_now);
        if (first.empty())
            first = *it;
        last = *it;
    }
    j += R"(],"first_id":)" + (first.empty() ? std::string("null") : "\"" + first + "\"");
    j += R"(,"last_id":)" + (last.empty() ? std::string("null") : "\"" + last + "\"");
    j += std::string(R"(,"has_more":)") + (more ? "true" : "false") + "}";
    mock_reply r;
    r.body = std::move(j);
    return r;
}

} // namespace sluice::detail
