#include "sink/output_record.hpp"

#include <sluice/error.hpp>

namespace sluice::detail {

namespace sj = simdjson;

bool read_output_record(sj::dom::parser& parser,
                        std::string_view text,
                        output_record_fields& out,
                        std::string& why) {
    out = output_record_fields{};
    sj::dom::element root;
    if (auto err = parser.parse(text.data(), text.size(), false).get(root)) {
        why = std::string("not JSON: ") + sj::error_message(err);
        return false;
    }
    sj::dom::object object;
    if (root.get_object().get(object)) {
        why = "not a JSON object";
        return false;
    }
    bool has_id = false;
    bool has_response = false;
    bool has_error = false;
    bool has_line = false;
    for (sj::dom::key_value_pair field : object) {
        if (field.key == "custom_id" && !has_id) {
            has_id = true;
            if (field.value.get_string().get(out.custom_id)) {
                why = "custom_id is not a string";
                return false;
            }
        } else if (field.key == "response" && !has_response) {
            has_response = true;
            if (!field.value.is_null() && !field.value.is_object()) {
                why = "response is neither null nor an object";
                return false;
            }
        } else if (field.key == "error" && !has_error) {
            has_error = true;
            if (field.value.is_null())
                continue;
            out.failed = true;
            sj::dom::object error;
            if (field.value.get_object().get(error) || error["code"].get_string().get(out.code)) {
                why = "error is neither null nor an object with a string code";
                return false;
            }
        } else if (field.key == "line" && !has_line) {
            has_line = true;
            std::uint64_t n = 0;
            if (field.value.get_uint64().get(n) || n == 0) {
                why = "line is not a positive integer";
                return false;
            }
            out.line = n;
        }
    }
    if (!has_id || !has_response || !has_error) {
        why = !has_id ? "no custom_id" : !has_response ? "no response" : "no error";
        return false;
    }
    return true;
}

bool is_unanswered(const output_record_fields& f, bool retry_failed) {
    if (!f.failed)
        return false;
    if (retry_failed)
        return true;
    for (const errc e : {errc::not_attempted,
                         errc::stopped,
                         errc::quota_exhausted,
                         errc::unauthorized,
                         errc::certificate_rejected,
                         errc::proxy_refused})
        if (f.code == error_kind(make_error_code(e)))
            return true;
    return false;
}

} // namespace sluice::detail
