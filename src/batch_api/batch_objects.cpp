#include <sluice/batch_api/batch_objects.hpp>

#include "detail/json_string.hpp"

#include <simdjson.h>

namespace sluice {

namespace sj = simdjson;

std::optional<std::string_view> batch_object::metadata_value(std::string_view key) const {
    for (const auto& [k, v] : metadata)
        if (k == key)
            return std::string_view(v);
    return std::nullopt;
}

bool batch_object::is_final() const noexcept {
    return status == "completed" || status == "failed" || status == "expired" ||
           status == "cancelled";
}

namespace detail {

namespace {

// A string member, empty when absent or null; false only when present with another type.
bool string_member(sj::dom::object o, std::string_view key, std::string& out) {
    sj::dom::element e;
    if (o[key].get(e) || e.is_null())
        return true;
    std::string_view v;
    if (e.get_string().get(v))
        return false;
    out.assign(v.data(), v.size());
    return true;
}

template <class Int>
void number_member(sj::dom::object o, std::string_view key, Int& out) {
    sj::dom::element e;
    if (o[key].get(e))
        return;
    if (std::int64_t v = 0; !e.get_int64().get(v))
        out = static_cast<Int>(v);
}

bool read_file(sj::dom::object o, file_object& out) {
    number_member(o, "bytes", out.bytes);
    number_member(o, "created_at", out.created_at);
    return string_member(o, "id", out.id) && !out.id.empty() &&
           string_member(o, "filename", out.filename) && string_member(o, "purpose", out.purpose);
}

bool read_batch(sj::dom::object o, batch_object& out) {
    if (!string_member(o, "id", out.id) || out.id.empty() ||
        !string_member(o, "status", out.status) || out.status.empty() ||
        !string_member(o, "endpoint", out.endpoint) ||
        !string_member(o, "completion_window", out.completion_window) ||
        !string_member(o, "input_file_id", out.input_file_id) ||
        !string_member(o, "output_file_id", out.output_file_id) ||
        !string_member(o, "error_file_id", out.error_file_id))
        return false;
    number_member(o, "created_at", out.created_at);
    sj::dom::object counts;
    if (!o["request_counts"].get_object().get(counts)) {
        number_member(counts, "total", out.request_counts.total);
        number_member(counts, "completed", out.request_counts.completed);
        number_member(counts, "failed", out.request_counts.failed);
    }
    sj::dom::object metadata;
    if (!o["metadata"].get_object().get(metadata))
        for (auto [key, value] : metadata) {
            std::string_view v;
            if (!value.get_string().get(v))
                out.metadata.emplace_back(std::string(key), std::string(v));
        }
    sj::dom::array errors;
    if (!o["errors"]["data"].get_array().get(errors))
        for (sj::dom::element e : errors) {
            std::string_view message;
            if (e["message"].get_string().get(message))
                continue;
            if (!out.errors.empty())
                out.errors += "; ";
            out.errors += message;
        }
    return true;
}

sj::simdjson_result<sj::dom::object> parse_object(sj::dom::parser& p, std::string_view json) {
    return p.parse(sj::padded_string(json)).get_object();
}

} // namespace

bool parse_file_object(std::string_view json, file_object& out) {
    out = file_object{};
    sj::dom::parser p;
    sj::dom::object o;
    return !parse_object(p, json).get(o) && read_file(o, out);
}

bool parse_file_list(std::string_view json, file_list& out) {
    out = file_list{};
    sj::dom::parser p;
    sj::dom::object o;
    sj::dom::array data;
    if (parse_object(p, json).get(o) || o["data"].get_array().get(data))
        return false;
    for (sj::dom::element e : data) {
        sj::dom::object f;
        file_object item;
        if (e.get_object().get(f) || !read_file(f, item))
            return false;
        out.data.push_back(std::move(item));
    }
    return true;
}

bool parse_batch_object(std::string_view json, batch_object& out) {
    out = batch_object{};
    sj::dom::parser p;
    sj::dom::object o;
    return !parse_object(p, json).get(o) && read_batch(o, out);
}

bool parse_batch_list(std::string_view json, batch_list& out) {
    out = batch_list{};
    sj::dom::parser p;
    sj::dom::object o;
    sj::dom::array data;
    if (parse_object(p, json).get(o) || o["data"].get_array().get(data))
        return false;
    for (sj::dom::element e : data) {
        sj::dom::object b;
        batch_object item;
        if (e.get_object().get(b) || !read_batch(b, item))
            return false;
        out.data.push_back(std::move(item));
    }
    bool more = false;
    if (!o["has_more"].get_bool().get(more))
        out.has_more = more;
    string_member(o, "last_id", out.last_id);
    if (out.last_id.empty() && !out.data.empty())
        out.last_id = out.data.back().id;
    return true;
}

std::string batch_create_body(const batch_create_request& r) {
    std::string body = R"({"input_file_id":)";
    append_json_string(body, r.input_file_id);
    body += R"(,"endpoint":)";
    append_json_string(body, r.endpoint);
    body += R"(,"completion_window":)";
    append_json_string(body, r.completion_window);
    if (!r.metadata.empty()) {
        body += R"(,"metadata":{)";
        bool first = true;
        for (const auto& [k, v] : r.metadata) {
            if (!first)
                body += ',';
            first = false;
            append_json_string(body, k);
            body += ':';
            append_json_string(body, v);
        }
        body += '}';
    }
    body += '}';
    return body;
}

} // namespace detail

} // namespace sluice
