#pragma once

#include <sluice/http_response.hpp>
#include <sluice/transport/connection_pool.hpp>

#include "transport/http1_parser.hpp"

#include <algorithm>
#include <string>
#include <string_view>

namespace sluice::detail {

// The pool-wide account of body bytes held by responses being read (pool_options::
// max_body_bytes_in_flight): each parser charges the capacity it reserves, and the exchange
// gives it back when its response is delivered.
struct body_budget {
    std::size_t used = 0;
    std::size_t limit = 0; // 0: none

    bool take(std::size_t n) noexcept {
        if (limit != 0 && used + n > limit)
            return false;
        used += n;
        return true;
    }
    void give(std::size_t n) noexcept { used -= std::min(n, used); }
};

// An HTTP/1.1 response parser that writes straight into an `http_response`: the headers the
// engine reads are copied into their members and the others are dropped (no per-field
// allocation, unlike a full beast::http::fields), and the body goes into a string that always
// keeps `parse_padding` spare bytes so the simdjson fast path can read it in place. The
// parsing is sluice's own (http1_parser.hpp), with Beast's semantics and errors.
class response_parser final : public http1_parser<response_parser> {
public:
    // `charged` is the exchange's share of `budget`, which outlives this parser: the body keeps
    // its memory until the response is delivered. `max_body` is the body limit, past which the
    // body never grows (the base class refuses what is longer).
    // `observer`, when not null, takes a 2xx event-stream body instead of `out.body`; the
    // body limit then bounds the bytes of the whole stream, none of which are held here.
    response_parser(http_response& out,
                    body_budget& budget,
                    std::size_t& charged,
                    std::size_t max_body,
                    body_observer* observer = nullptr,
                    bool observe_any = false)
        : out_(out)
        , budget_(budget)
        , charged_(charged)
        , max_body_(max_body)
        , observer_(observer)
        , observe_any_(observer && observe_any) {
        out_.body.clear();
        // A body any 2xx of which goes to the observer (a download to disk) has no limit;
        // one that is collected after all (an error answer) gets it with the head.
        if (observe_any_)
            body_limit(boost::none);
        else
            body_limit(max_body);
    }

    // The last failure was the pool-wide budget, not this body's own size.
    bool over_budget() const noexcept { return over_budget_; }

    // The body goes to the observer (known once the header is read).
    bool streaming() const noexcept { return out_.streamed; }

private:
    friend class http1_parser<response_parser>;

    void on_response(int code, int, error_code&) { out_.status = static_cast<unsigned>(code); }

    void on_field(std::string_view name, std::string_view value, error_code&) {
        keep_header(name, value);
    }

    // Decided with the header, not at the body's first byte: the exchange reads a stream
    // piece by piece from the moment the header is in.
    void on_header(error_code& ec) {
        out_.streamed = observer_ && out_.status >= 200 && out_.status < 300 &&
                        (observe_any_ || is_event_stream());
        if (observe_any_ && !out_.streamed) {
            if (content_length() && *content_length() > max_body_)
                ec = errc::body_too_large;
            body_limit(max_body_);
        }
    }

    void on_body_init(const boost::optional<std::uint64_t>& length, error_code& ec) {
        if (out_.streamed)
            return;
        // The base class has already refused a Content-Length above the body limit.
        if (length && !grow_to(static_cast<std::size_t>(*length) + parse_padding))
            ec = errc::body_too_large;
    }

    std::size_t on_body(std::string_view body, error_code& ec) { return append(body, ec); }

    void on_finish(error_code& ec) {
        if (!out_.streamed && !grow_to(out_.body.size() + parse_padding))
            ec = errc::body_too_large;
    }

    bool is_event_stream() const noexcept {
        const std::string_view type = out_.content_type;
        constexpr std::string_view sse = "text/event-stream";
        return http1::ascii_iequals(type.substr(0, sse.size()), sse);
    }

    std::size_t append(std::string_view piece, error_code& ec) {
        if (out_.streamed) {
            ec = observer_->on_body({piece.data(), piece.size()}, std::chrono::steady_clock::now());
            return ec ? 0 : piece.size();
        }
        if (!grow_to(out_.body.size() + piece.size() + parse_padding)) {
            ec = errc::body_too_large;
            return 0;
        }
        out_.body.append(piece.data(), piece.size());
        return piece.size();
    }

    // Doubling keeps appends amortised, but never past the largest body allowed: a body at
    // the limit costs the limit, not twice it.
    bool grow_to(std::size_t needed) {
        std::string& b = out_.body;
        if (b.capacity() >= needed)
            return true;
        const std::size_t ceiling = std::max(max_body_ + parse_padding, needed);
        const std::size_t target = std::max(needed, std::min(b.capacity() * 2, ceiling));
        if (target > charged_ && !budget_.take(target - charged_)) {
            over_budget_ = true;
            return false;
        }
        charged_ = std::max(charged_, target);
        // Not b.reserve(target): libstdc++ grows a string to at least twice its old capacity
        // whatever is asked, which would take a body near the cap to twice the cap. A new
        // string reserved from empty gets exactly what is asked.
        std::string grown;
        grown.reserve(target);
        grown.append(b);
        b.swap(grown);
        return true;
    }

    // Stores the value of a header sluice reads; the others are skipped.
    void keep_header(std::string_view name, std::string_view value) {
        const auto iequals = [](std::string_view a, std::string_view lower) {
            return http1::ascii_iequals(a, lower);
        };
        // Only x-request-id, retry-after*, x-should-retry and x-ratelimit-* are read.
        if (name.size() < 11)
            return;
        if (iequals(name, "x-request-id"))
            return out_.request_id.assign(value.data(), value.size());
        if (iequals(name, "content-type"))
            return out_.content_type.assign(value.data(), value.size());
        if (iequals(name, "retry-after"))
            return out_.retry_after.assign(value.data(), value.size());
        if (iequals(name, "retry-after-ms"))
            return out_.retry_after_ms.assign(value.data(), value.size());
        if (iequals(name, "x-should-retry"))
            return out_.should_retry.assign(value.data(), value.size());
        if (name.size() < 24 || !iequals(name.substr(0, 12), "x-ratelimit-"))
            return;
        const std::string_view rest = name.substr(12);
        if (iequals(rest, "limit-requests"))
            return out_.limit_requests.assign(value.data(), value.size());
        if (iequals(rest, "limit-tokens"))
            return out_.limit_tokens.assign(value.data(), value.size());
        if (iequals(rest, "remaining-requests"))
            return out_.remaining_requests.assign(value.data(), value.size());
        if (iequals(rest, "remaining-tokens"))
            return out_.remaining_tokens.assign(value.data(), value.size());
        if (iequals(rest, "reset-requests"))
            return out_.reset_requests.assign(value.data(), value.size());
        if (iequals(rest, "reset-tokens"))
            return out_.reset_tokens.assign(value.data(), value.size());
    }

    http_response& out_;
    body_budget& budget_;
    std::size_t& charged_;
    std::size_t max_body_;
    body_observer* observer_;
    bool observe_any_;
    bool over_budget_ = false;
};

} // namespace sluice::detail
