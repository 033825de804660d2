#include "mock/mock_behavior.hpp"
#include "detail/json_string.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace sluice::detail {

namespace {

namespace od = simdjson::ondemand;

// What the mock needs to know of a chat-completion request.
struct parsed_request {
    std::string model = "gpt-4o-mini";
    std::uint64_t message_chars = 0;
    std::uint64_t messages = 0;
    std::uint64_t max_tokens = 0; // 0: not set
    std::uint64_t n = 1;
    bool stream = false;
    bool include_usage = false;
    bool store = false; // "store": true: kept for GET /v1/chat/completions/{id}
};

std::uint64_t count_text(simdjson::simdjson_result<od::value> content) {
    od::json_type t;
    if (content.type().get(t))
        return 0;
    if (t == od::json_type::string) {
        std::string_view s;
        return content.get_string().get(s) ? 0 : s.size();
    }
    std::uint64_t chars = 0;
    if (t == od::json_type::array) {
        od::array parts;
        if (content.get_array().get(parts))
            return 0;
        for (auto part : parts) {
            std::string_view text;
            if (!part.find_field_unordered("text").get_string().get(text))
                chars += text.size();
        }
    }
    return chars;
}

bool parse_request(std::string_view body, parsed_request& out) {
    simdjson::padded_string padded(body);
    od::parser parser;
    od::document doc;
    if (parser.iterate(padded).get(doc))
        return false;
    od::object root;
    if (doc.get_object().get(root))
        return false;
    bool have_messages = false;
    for (auto field : root) {
        std::string_view key;
        if (field.unescaped_key().get(key))
            return false;
        if (key == "model") {
            std::string_view model;
            if (field.value().get_string().get(model))
                return false;
            out.model.assign(model.data(), model.size());
        } else if (key == "messages") {
            od::array messages;
            if (field.value().get_array().get(messages))
                return false;
            for (auto message : messages) {
                ++out.messages;
                out.message_chars += count_text(message.find_field_unordered("content"));
            }
            have_messages = true;
        } else if (key == "max_tokens" || key == "max_completion_tokens") {
            std::uint64_t v = 0;
            if (field.value().get_uint64().get(v))
                return false;
            out.max_tokens = v;
        } else if (key == "n") {
            if (field.value().get_uint64().get(out.n) || out.n == 0 || out.n > 128)
                return false;
        } else if (key == "stream") {
            if (field.value().get_bool().get(out.stream))
                return false;
        } else if (key == "store") {
            if (field.value().get_bool().get(out.store))
                return false;
        } else if (key == "stream_options") {
            bool include = false;
            if (!field.value().find_field_unordered("include_usage").get_bool().get(include))
                out.include_usage = include;
        }
    }
    return have_messages;
}

// The answer to `req`: answer_tokens words, capped by max_tokens (then it stops for length).
answer_shape shape_answer(const parsed_request& req,
                          std::uint64_t prompt,
                          std::uint64_t answer_tokens,
                          const std::string& serial) {
    answer_shape a;
    a.model = req.model;
    a.n = req.n;
    a.include_usage = req.include_usage;
    a.completion_tokens =
        req.max_tokens ? std::min<std::uint64_t>(req.max_tokens, answer_tokens) : answer_tokens;
    a.finish = req.max_tokens && req.max_tokens < answer_tokens ? "length" : "stop";
    a.id = "chatcmpl-mock" + serial;
    a.created = static_cast<long long>(std::time(nullptr));
    const std::uint64_t completion = a.completion_tokens * req.n;
    a.usage = R"("usage":{"prompt_tokens":)" + std::to_string(prompt) + R"(,"completion_tokens":)" +
              std::to_string(completion) + R"(,"total_tokens":)" +
              std::to_string(prompt + completion) +
              R"(,"prompt_tokens_details":{"cached_tokens":0},)"
              R"("completion_tokens_details":{"reasoning_tokens":0}})";
    return a;
}

// Azure OpenAI's deployment route: /openai/deployments/NAME/chat/completions.
bool is_azure_chat_path(std::string_view path) {
    constexpr std::string_view prefix = "/openai/deployments/";
    constexpr std::string_view suffix = "/chat/completions";
    if (path.size() <= prefix.size() + suffix.size() || path.substr(0, prefix.size()) != prefix ||
        path.substr(path.size() - suffix.size()) != suffix)
        return false;
    const std::string_view name =
        path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
    return name.find('/') == std::string_view::npos;
}

// The value of `name` in a query string ("a=1&api-version=x"); absent when not there.
std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
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

// An api-version Azure would know the shape of: 2024-10-21 or 2025-01-01-preview.
bool looks_like_api_version(std::string_view v) {
    auto digits = [&](std::size_t from, std::size_t n) {
        for (std::size_t i = from; i < from + n; ++i)
            if (i >= v.size() || v[i] < '0' || v[i] > '9')
                return false;
        return true;
    };
    const bool date = v.size() >= 10 && digits(0, 4) && v[4] == '-' && digits(5, 2) &&
                      v[7] == '-' && digits(8, 2);
    return date && (v.size() == 10 || v.substr(10) == "-preview");
}

} // namespace

std::string format_go_duration(std::chrono::nanoseconds d) {
    const double ms = std::max(0.0, static_cast<double>(d.count()) / 1e6);
    char buf[48];
    if (ms < 1000) {
        std::snprintf(buf, sizeof buf, "%.0fms", std::ceil(ms));
    } else if (ms < 60'000) {
        std::snprintf(buf, sizeof buf, "%.3gs", ms / 1000);
    } else {
        const auto minutes = static_cast<long long>(ms / 60'000);
        std::snprintf(buf, sizeof buf, "%lldm%.3gs", minutes, (ms - minutes * 60'000.0) / 1000);
    }
    return buf;
}

mock_behavior::mock_behavior(const mock_options& opts, clock::time_point now)
    : opts_(opts)
    , rng_(opts.seed)
    , gaps_(opts.seed ^ 0x9e3779b97f4a7c15ULL)
    , batches_(
          opts.batch, counters_, [this](std::string_view body) { return batch_answer(body); }) {
    if (opts.rpm > 0)
        requests_ =
            token_bucket(opts.rpm / 60, std::max(1.0, opts.rpm / 60 * opts.bucket_seconds), now);
    if (opts.tpm > 0)
        tokens_ =
            token_bucket(opts.tpm / 60, std::max(1.0, opts.tpm / 60 * opts.bucket_seconds), now);
}

mock_reply mock_behavior::error_reply(unsigned status,
                                      std::string_view message,
                                      std::string_view type,
                                      std::string_view code) {
    mock_reply r;
    r.status = status;
    r.body = R"({"error":{"message":)";
    append_json_string(r.body, message);
    r.body += R"(,"type":)";
    append_json_string(r.body, type);
    r.body += R"(,"param":null,"code":)";
    if (code.empty())
        r.body += "null";
    else
        append_json_string(r.body, code);
    r.body += "}}";
    return r;
}

void mock_behavior::add_limit_headers(mock_reply& r, clock::time_point now) {
    if (opts_.hide_limits)
        return;
    auto add = [&](const char* what, token_bucket& b, double limit) {
        if (b.unlimited())
            return;
        const double available = std::max(0.0, b.available(now));
        const auto to_full = std::chrono::duration<double>((b.capacity() - available) / b.rate());
        r.headers.emplace_back(std::string("x-ratelimit-limit-") + what,
                               std::to_string(static_cast<long long>(limit)));
        r.headers.emplace_back(std::string("x-ratelimit-remaining-") + what,
                               std::to_string(static_cast<long long>(available)));
        r.headers.emplace_back(
            std::string("x-ratelimit-reset-") + what,
            format_go_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(to_full)));
    };
    add("requests", requests_, opts_.rpm);
    add("tokens", tokens_, opts_.tpm);
}

mock_reply mock_behavior::on_request(std::string_view method,
                                     std::string_view target,
                                     std::string_view body,
                                     clock::time_point now,
                                     std::optional<std::string_view> api_key,
                                     std::string_view content_type) {
    if (target == "/mock/stats") {
        const mock_counters& c = counters_;
        mock_reply r;
        char buf[1536];
        std::snprintf(buf,
                      sizeof buf,
                      R"({"requests":%llu,"ok":%llu,"rate_limited":%llu,"quota":%llu,)"
                      R"("server_errors":%llu,"client_errors":%llu,"resets":%llu,)"
                      R"("truncated":%llu,"malformed":%llu,"slow":%llu,"streamed":%llu,)"
                      R"("stream_errors":%llu,"stream_cuts":%llu,"connections":%llu,)"
                      R"("files_uploaded":%llu,"batches_created":%llu,"batches_cancelled":%llu,)"
                      R"("file_downloads":%llu,"batch_requests":%llu,"batch_api_calls":%llu})",
                      (unsigned long long)c.requests,
                      (unsigned long long)c.ok,
                      (unsigned long long)c.rate_limited,
                      (unsigned long long)c.quota,
                      (unsigned long long)c.server_errors,
                      (unsigned long long)c.client_errors,
                      (unsigned long long)c.resets,
                      (unsigned long long)c.truncated,
                      (unsigned long long)c.malformed,
                      (unsigned long long)c.slow,
                      (unsigned long long)c.streamed,
                      (unsigned long long)c.stream_errors,
                      (unsigned long long)c.stream_cuts,
                      (unsigned long long)c.connections,
                      (unsigned long long)c.files_uploaded,
                      (unsigned long long)c.batches_created,
                      (unsigned long long)c.batches_cancelled,
                      (unsigned long long)c.file_downloads,
                      (unsigned long long)c.batch_requests,
                      (unsigned long long)c.batch_api_calls);
        r.body = buf;
        return r;
    }
    const std::size_t question = target.find('?');
    const std::string_view path = target.substr(0, question);
    const std::string_view query =
        question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    constexpr std::string_view stored_prefix = "/v1/chat/completions/";
    if (path.substr(0, stored_prefix.size()) == stored_prefix && method == "GET") {
        auto it = stored_.find(std::string(path.substr(stored_prefix.size())));
        if (it == stored_.end())
            return error_reply(404,
                               "No chat completion found with id " +
                                   std::string(path.substr(stored_prefix.size())),
                               "invalid_request_error",
                               "");
        mock_reply r;
        r.body = it->second;
        return r;
    }
    if (mock_batches::handles(path))
        return batches_.on_request(method, path, query, content_type, body, now);
    const bool chat = path == "/v1/chat/completions" || path == "/chat/completions";
    const bool azure = is_azure_chat_path(path);
    if (!chat && !azure)
        return error_reply(404, "Unknown path " + std::string(path), "invalid_request_error", "");
    if (method != "POST")
        return error_reply(405, "Use POST", "invalid_request_error", "");

    ++counters_.requests;
    if (azure) {
        if (auto refusal = azure_refusal(query, api_key)) {
            ++counters_.client_errors;
            return std::move(*refusal);
        }
    }
    mock_reply r = chat_completion(body, now);
    if (opts_.close_every > 0 && ++responses_ % opts_.close_every == 0)
        r.close = true;
    return r;
}

// What Azure OpenAI answers a deployment request without its key or api-version, in its own
// error shape ({"error":{"code","message"}}, no type): 401 without the `api-key` header, 404
// "Resource not found" without `api-version` (Azure's answer, which says nothing of the
// cause: hence sluice refuses to send without one), 400 for a version it does not know.
std::optional<mock_reply> mock_behavior::azure_refusal(std::string_view query,
                                                       std::optional<std::string_view> api_key) {
    auto azure_error = [](unsigned status, std::string_view code, std::string_view message) {
        mock_reply r;
        r.status = status;
        r.body = R"({"error":{"code":)";
        append_json_string(r.body, code);
        r.body += R"(,"message":)";
        append_json_string(r.body, message);
        r.body += "}}";
        return r;
    };
    if (!api_key || api_key->empty())
        return azure_error(401,
                           "401",
                           "Access denied due to invalid subscription key or wrong API endpoint. "
                           "Make sure to provide a valid key for an active subscription and use "
                           "a correct regional API endpoint for your resource.");
    const auto version = query_param(query, "api-version");
    if (!version)
        return azure_error(404, "404", "Resource not found");
    if (!looks_like_api_version(*version))
        return azure_error(400, "BadRequest", "API version not supported");
    return std::nullopt;
}

// The faults decided before the limits are looked at: a reset, a 500 or 503, a quota 429.
std::optional<mock_reply> mock_behavior::early_fault(fault_draw& faults) {
    const mock_faults& f = opts_.faults;
    if (faults.hit(f.reset)) {
        ++counters_.resets;
        mock_reply r;
        r.what = mock_reply::action::reset;
        return r;
    }
    if (faults.hit(f.http_500)) {
        ++counters_.server_errors;
        return error_reply(
            500, "The server had an error while processing your request.", "server_error", "");
    }
    if (faults.hit(f.http_503)) {
        ++counters_.server_errors;
        mock_reply r = error_reply(503,
                                   "The engine is currently overloaded, please try again later.",
                                   "server_error",
                                   "server_is_overloaded");
        // Short hints keep tests quick; real servers send seconds.
        if (!opts_.hide_limits) {
            r.headers.emplace_back("retry-after-ms", "50");
            r.headers.emplace_back("retry-after", "1");
        }
        return r;
    }
    if (faults.hit(f.insufficient_quota) ||
        (opts_.quota_after > 0 && counters_.requests > opts_.quota_after)) {
        ++counters_.quota;
        return error_reply(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota");
    }
    return std::nullopt;
}

// A 429 as OpenAI words it when either bucket cannot pay for `cost` now; else both are charged.
// A request above the whole per-minute token limit can never be served ("Request too large");
// one above a bucket's burst but within the limit waits for a full bucket and leaves a debt.
std::optional<mock_reply> mock_behavior::over_limit(double cost, clock::time_point now) {
    if (opts_.tpm > 0 && cost > opts_.tpm) {
        ++counters_.rate_limited;
        return error_reply(429,
                           "Request too large for tokens per min (TPM): Limit " +
                               std::to_string(static_cast<long long>(opts_.tpm)) + ", Requested " +
                               std::to_string(static_cast<long long>(cost)) +
                               ". The input or output tokens must be reduced in order to run "
                               "successfully.",
                           "tokens",
                           "rate_limit_exceeded");
    }
    const auto req_wait = requests_.wait_for(now, 1);
    const auto tok_wait = tokens_.wait_for(now, cost);
    if (req_wait <= token_bucket::duration::zero() && tok_wait <= token_bucket::duration::zero()) {
        requests_.take(now, 1);
        tokens_.take(now, cost);
        return std::nullopt;
    }
    ++counters_.rate_limited;
    const bool by_requests = req_wait >= tok_wait;
    const auto wait = std::max(req_wait, tok_wait);
    std::string message = by_requests ? "Rate limit reached for requests per min (RPM): Limit "
                                      : "Rate limit reached for tokens per min (TPM): Limit ";
    message += std::to_string(static_cast<long long>(by_requests ? opts_.rpm : opts_.tpm));
    const auto ms =
        std::max<long long>(1, std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    // As OpenAI words it, the wait in the message too; with hide_limits, no wait anywhere.
    message += opts_.hide_limits ? ". Please try again later."
                                 : ". Please try again in " +
                                       format_go_duration(std::chrono::milliseconds(ms)) + ".";
    mock_reply r =
        error_reply(429, message, by_requests ? "requests" : "tokens", "rate_limit_exceeded");
    if (!opts_.hide_limits) {
        r.headers.emplace_back("retry-after-ms", std::to_string(ms));
        r.headers.emplace_back("retry-after", std::to_string((ms + 999) / 1000));
    }
    add_limit_headers(r, now);
    return r;
}

std::chrono::microseconds mock_behavior::answer_delay(fault_draw& faults) {
    if (faults.hit(opts_.faults.slow)) {
        ++counters_.slow;
        return std::chrono::duration_cast<std::chrono::microseconds>(opts_.faults.slow_delay);
    }
    if (opts_.latency.count() <= 0)
        return std::chrono::microseconds(0);
    if (!opts_.exponential_latency)
        return opts_.latency;
    std::exponential_distribution<double> d(1.0 / static_cast<double>(opts_.latency.count()));
    return std::chrono::microseconds(static_cast<long long>(d(rng_)));
}

mock_reply mock_behavior::chat_completion(std::string_view body, clock::time_point now) {
    parsed_request req;
    if (!parse_request(body, req)) {
        ++counters_.client_errors;
        return error_reply(
            400, "We could not parse the JSON body of your request.", "invalid_request_error", "");
    }
    fault_draw faults{std::uniform_real_distribution<double>(0, 1)(rng_)};
    if (auto fault = early_fault(faults))
        return std::move(*fault);

    // Enforced limits, charged like OpenAI does: the prompt plus the completion budget.
    const std::uint64_t prompt = (req.message_chars + 3) / 4 + 4 * req.messages + 3;
    const std::uint64_t budget = (req.max_tokens ? req.max_tokens : opts_.answer_tokens) * req.n;
    if (auto refused = over_limit(static_cast<double>(prompt + budget), now))
        return std::move(*refused);

    const std::string serial = std::to_string(next_id_++);
    const answer_shape a = shape_answer(req, prompt, opts_.answer_tokens, serial);
    mock_reply r;
    r.headers.emplace_back("x-request-id", "req_mock" + serial);
    add_limit_headers(r, now);
    r.delay = answer_delay(faults);
    if (req.stream) {
        stream_reply(r, a, faults);
        return r;
    }
    if (faults.hit(opts_.faults.malformed)) {
        ++counters_.malformed;
        r.body =
            "{\"id\":\"" + a.id + "\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,";
        r.body += "<html>not json</html>";
        return r;
    }
    r.body = completion_body(a);
    if (req.store)
        stored_[a.id] = r.body;
    if (faults.hit(opts_.faults.truncated)) {
        ++counters_.truncated;
        r.what = mock_reply::action::truncate;
        return r;
    }
    ++counters_.ok;
    return r;
}

// A batch's request line is answered as the live route would answer it, without the live
// route's faults and limits (a batch has its own: mock_batch_options).
batch_line_answer mock_behavior::batch_answer(std::string_view body) {
    parsed_request req;
    batch_line_answer a;
    const std::string serial = std::to_string(next_id_++);
    a.request_id = "req_mock" + serial;
    if (!parse_request(body, req)) {
        a.status = 400;
        a.body = error_reply(400,
                             "We could not parse the JSON body of your request.",
                             "invalid_request_error",
                             "")
                     .body;
        return a;
    }
    const std::uint64_t prompt = (req.message_chars + 3) / 4 + 4 * req.messages + 3;
    req.stream = false;
    a.body = completion_body(shape_answer(req, prompt, opts_.answer_tokens, serial));
    return a;
}

// A streamed answer: its schedule from the request, after the reply's delay; the streaming
// faults are drawn here, from where the draw stands after the ones all answers share.
void mock_behavior::stream_reply(mock_reply& r, const answer_shape& a, fault_draw& faults) {
    ++counters_.streamed;
    stream_fault fault = stream_fault::none;
    if (faults.hit(opts_.faults.stream_error)) {
        fault = stream_fault::error;
        ++counters_.stream_errors;
    } else if (faults.hit(opts_.faults.stream_cut)) {
        fault = stream_fault::cut;
        ++counters_.stream_cuts;
    } else {
        ++counters_.ok;
    }
    const stream_timing t{r.delay,
                          opts_.first_token,
                          opts_.chunk_interval,
                          opts_.exponential_chunks,
                          opts_.tokens_per_chunk};
    r.what = mock_reply::action::stream;
    r.content_type = "text/event-stream";
    r.stream = build_stream(a, t, fault, gaps_);
}

} // namespace sluice::detail
