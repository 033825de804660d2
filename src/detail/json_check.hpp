#pragma once

#include <simdjson.h>

#include <string_view>
#include <utility>

namespace sluice::detail {

// How deep check_json follows nesting: simdjson's default for its parsers. On-demand does not
// bound nesting, so the check does (as RFC 8259 allows), keeping the recursion off a hostile
// document's depth.
inline constexpr int max_check_depth = 1024;

// The first error in a value, all the way down, or SUCCESS. On-demand skipping counts brackets
// without checking what it passes over: whoever needs a whole document valid (a body sent or
// embedded as JSON) walks what it does not read through here instead. Keys and strings are
// unescaped, so their escapes are checked; numbers are parsed. `depth` is the value's own.
// One frame per level of nesting (children are taken out of their results first): a thousand
// levels fit in a sanitizer build's stack too.
inline simdjson::error_code check_json(simdjson::ondemand::value& v, int depth = 1) {
    namespace od = simdjson::ondemand;
    if (depth > max_check_depth)
        return simdjson::DEPTH_ERROR;
    od::json_type t;
    if (auto err = v.type().get(t))
        return err;
    od::value child;
    if (t == od::json_type::object) {
        od::object object;
        if (auto err = v.get_object().get(object))
            return err;
        for (auto field : object) {
            std::string_view key;
            if (auto err = field.unescaped_key().get(key))
                return err;
            if (auto err = field.value().get(child))
                return err;
            if (auto err = check_json(child, depth + 1))
                return err;
        }
        return simdjson::SUCCESS;
    }
    if (t == od::json_type::array) {
        od::array array;
        if (auto err = v.get_array().get(array))
            return err;
        for (auto element : array) {
            if (auto err = element.get(child))
                return err;
            if (auto err = check_json(child, depth + 1))
                return err;
        }
        return simdjson::SUCCESS;
    }
    switch (t) {
    case od::json_type::string: {
        std::string_view s;
        return v.get_string().get(s);
    }
    case od::json_type::number: {
        // As a double: an integer past 64 bits is valid JSON (RFC 8259), and an answer may
        // carry one.
        double d = 0;
        return v.get_double().get(d);
    }
    case od::json_type::boolean: {
        bool b = false;
        return v.get_bool().get(b);
    }
    case od::json_type::null: {
        bool is_null = false;
        if (auto err = v.is_null().get(is_null))
            return err;
        return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
    default:
        return simdjson::INCORRECT_TYPE;
    }
}

// check_json of a value still wrapped with the error that reaching it gave.
inline simdjson::error_code check_json(simdjson::simdjson_result<simdjson::ondemand::value> v,
                                       int depth = 1) {
    simdjson::ondemand::value value;
    if (auto err = std::move(v).get(value))
        return err;
    return check_json(value, depth);
}

// Whether nothing but whitespace follows the root value (`{"a":1} x` is not JSON): past the end
// of the document, current_location() answers OUT_OF_BOUNDS.
inline bool at_end(simdjson::ondemand::document& doc) {
    const char* where = nullptr;
    return doc.current_location().get(where) != simdjson::SUCCESS;
}

// check_json for a whole document, whose root may be a scalar (on-demand reads a scalar root
// through the document itself), trailing bytes included.
inline simdjson::error_code check_document(simdjson::ondemand::document& doc) {
    namespace od = simdjson::ondemand;
    od::json_type t;
    if (auto err = doc.type().get(t))
        return err;
    simdjson::error_code err = simdjson::SUCCESS;
    switch (t) {
    // A root object or array is opened through the document, which first checks that the
    // text ends with its closing bracket: a value opened any other way would be read past the
    // end of a truncated document (`[[[`).
    case od::json_type::object: {
        od::object object;
        if ((err = doc.get_object().get(object)))
            break;
        for (auto field : object) {
            std::string_view key;
            if ((err = field.unescaped_key().get(key)) || (err = check_json(field.value(), 2)))
                break;
        }
        break;
    }
    case od::json_type::array: {
        od::array array;
        if ((err = doc.get_array().get(array)))
            break;
        for (auto element : array)
            if ((err = check_json(element, 2)))
                break;
        break;
    }
    case od::json_type::string: {
        std::string_view s;
        err = doc.get_string().get(s);
        break;
    }
    case od::json_type::number: {
        double d = 0;
        err = doc.get_double().get(d);
        break;
    }
    case od::json_type::boolean: {
        bool b = false;
        err = doc.get_bool().get(b);
        break;
    }
    case od::json_type::null: {
        bool is_null = false;
        err = doc.is_null().get(is_null);
        if (!err && !is_null)
            err = simdjson::N_ATOM_ERROR;
        break;
    }
    }
    if (err)
        return err;
    return at_end(doc) ? simdjson::SUCCESS : simdjson::TRAILING_CONTENT;
}

} // namespace sluice::detail
