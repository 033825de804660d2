#include "batch_api/batch_state.hpp"

#include "detail/json_string.hpp"
#include "sink/atomic_file.hpp"

#include <simdjson.h>

#include <stdexcept>

namespace sluice::detail {

namespace sj = simdjson;

namespace {

void put(std::string& out, const char* key, std::string_view v) {
    out += '"';
    out += key;
    out += "\":";
    append_json_string(out, v);
    out += ',';
}

void put(std::string& out, const char* key, std::uint64_t v) {
    out += '"';
    out += key;
    out += "\":";
    out += std::to_string(v);
    out += ',';
}

void put(std::string& out, const char* key, bool v) {
    out += '"';
    out += key;
    out += "\":";
    out += v ? "true" : "false";
    out += ',';
}

void end_object(std::string& out) {
    if (out.back() == ',')
        out.pop_back();
    out += '}';
}

// Absent members keep their defaults: a state written by an older sluice still loads.
void get(sj::dom::object o, const char* key, std::string& v) {
    std::string_view s;
    if (!o[key].get_string().get(s))
        v.assign(s.data(), s.size());
}

template <class Int>
void get(sj::dom::object o, const char* key, Int& v) {
    std::int64_t n = 0;
    if (!o[key].get_int64().get(n))
        v = static_cast<Int>(n);
}

void get(sj::dom::object o, const char* key, bool& v) {
    bool b = false;
    if (!o[key].get_bool().get(b))
        v = b;
}

} // namespace

std::string batch_state::directory_of(const std::string& state_path) {
    return state_path + ".d";
}

batch_state batch_state::load(const std::string& path) {
    sj::dom::parser parser;
    sj::dom::object root;
    sj::padded_string text;
    if (sj::padded_string::load(path).get(text) || parser.parse(text).get_object().get(root))
        throw std::runtime_error(path + ": not a sluice batch state file (not a JSON object)");
    batch_state s;
    get(root, "version", s.version);
    if (s.version != 1)
        throw std::runtime_error(path + ": state file version " + std::to_string(s.version) +
                                 " is not one this sluice reads");
    get(root, "job", s.job);
    get(root, "input", s.input);
    get(root, "created_at", s.created_at);
    get(root, "endpoint", s.endpoint);
    get(root, "completion_window", s.completion_window);
    get(root, "input_lines", s.input_lines);
    get(root, "bad_lines", s.bad_lines);
    get(root, "bad_lines_file", s.bad_lines_file);
    sj::dom::array parts;
    if (s.job.empty() || root["parts"].get_array().get(parts))
        throw std::runtime_error(path + ": not a sluice batch state file (no job or parts)");
    for (sj::dom::element e : parts) {
        sj::dom::object o;
        if (e.get_object().get(o))
            throw std::runtime_error(path + ": a part is not an object");
        batch_part p;
        get(o, "index", p.index);
        get(o, "file", p.file);
        get(o, "lines", p.lines);
        get(o, "bytes", p.bytes);
        get(o, "upload_pending", p.upload_pending);
        get(o, "file_id", p.file_id);
        get(o, "create_pending", p.create_pending);
        get(o, "batch_id", p.batch_id);
        get(o, "status", p.status);
        get(o, "total", p.total);
        get(o, "completed", p.completed);
        get(o, "failed", p.failed);
        get(o, "output_file_id", p.output_file_id);
        get(o, "error_file_id", p.error_file_id);
        get(o, "merged", p.merged);
        get(o, "unfinished", p.unfinished);
        get(o, "unfinished_file", p.unfinished_file);
        get(o, "finished_by", p.finished_by);
        get(o, "generation", p.generation);
        s.parts.push_back(std::move(p));
    }
    return s;
}

void batch_state::save(const std::string& path) const {
    std::string out = "{";
    put(out, "version", std::uint64_t{version});
    put(out, "job", job);
    put(out, "input", input);
    put(out, "created_at", static_cast<std::uint64_t>(created_at));
    put(out, "endpoint", endpoint);
    put(out, "completion_window", completion_window);
    put(out, "input_lines", input_lines);
    put(out, "bad_lines", bad_lines);
    put(out, "bad_lines_file", bad_lines_file);
    out += "\"parts\":[";
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const batch_part& p = parts[i];
        out += i ? ",\n{" : "\n{";
        put(out, "index", std::uint64_t{p.index});
        put(out, "file", p.file);
        put(out, "lines", p.lines);
        put(out, "bytes", p.bytes);
        put(out, "upload_pending", p.upload_pending);
        put(out, "file_id", p.file_id);
        put(out, "create_pending", p.create_pending);
        put(out, "batch_id", p.batch_id);
        put(out, "status", p.status);
        put(out, "total", p.total);
        put(out, "completed", p.completed);
        put(out, "failed", p.failed);
        put(out, "output_file_id", p.output_file_id);
        put(out, "error_file_id", p.error_file_id);
        put(out, "merged", p.merged);
        put(out, "unfinished", p.unfinished);
        put(out, "unfinished_file", p.unfinished_file);
        put(out, "finished_by", p.finished_by);
        put(out, "generation", std::uint64_t{p.generation});
        end_object(out);
    }
    out += "]}\n";
    replacement_file f(path, std::nullopt);
    f.append(out);
    f.commit();
}

} // namespace sluice::detail
