#include <sluice/batch/batch_plan.hpp>

#include <sluice/admission/scope.hpp>
#include <sluice/batch/input_files.hpp>
#include <sluice/sink/journal.hpp>
#include <sluice/source/id_index.hpp>

#include <algorithm>

namespace sluice {

plan_builder::plan_builder(const estimate_options& estimate)
    : estimate_(estimate) {}

void plan_builder::add(const request& req) {
    // Always estimated from the body, even with token_cost set: the split into prompt and
    // completion is what prices need, and only the body has it.
    const token_estimate e = estimate_(req.body);
    model_plan& m = plan_.models[req.model];
    ++m.requests;
    m.prompt_tokens += e.prompt;
    m.completion_budget += e.completion;
    m.largest_request = std::max(m.largest_request, e.total());
    ++plan_.requests;
    ++plan_.lines;
}

void plan_builder::add_bad(std::uint64_t line_number, std::string_view message) {
    ++plan_.bad_lines;
    ++plan_.lines;
    if (plan_.bad_samples.size() < max_bad_samples)
        plan_.bad_samples.push_back({line_number, std::string(message)});
}

void plan_builder::add(const input_record& record) {
    if (record.ec)
        add_bad(record.line_number, record.message);
    else
        add(record.request);
}

batch_plan plan_batch(const batch_files& files, const batch_options& opts) {
    plan_builder plan(opts.engine.estimate);
    const bool streaming = !readable_twice(files.input);
    id_index index(streaming ? id_index_mode::one_pass : id_index_mode::two_pass);
    // What the output already answers is read as a resume would judge it, and nothing in it
    // changed: a dry run must leave a half-finished job as it found it.
    if (!files.output.empty() && files.output != "-") {
        journal_options jo;
        jo.retry_failed = opts.retry_failed;
        jo.read_only = true;
        recover_journal(
            files.output,
            jo,
            [&](std::string_view id) { index.add_done_id(id); },
            [&](std::uint64_t line) { index.add_done_line(line); });
    }
    if (!streaming)
        scan_ids(files.input, opts.reader, index);
    for_each_record(files.input, opts.reader, [&](input_record& rec) {
        if (decide_line(rec, index, streaming) == line_action::skip)
            plan.add_skipped();
        else
            plan.add(rec);
    });
    return plan.plan();
}

duration_estimate
minimum_duration(std::uint64_t requests, std::uint64_t tokens, const limit_options& limits) {
    duration_estimate d;
    if (limits.rpm > 0)
        d.rpm_minutes = static_cast<double>(requests) / limits.rpm;
    if (limits.tpm > 0)
        d.tpm_minutes = static_cast<double>(tokens) / limits.tpm;
    if (limits.rpm > 0 || limits.tpm > 0) {
        const bool tpm_binds = limits.tpm > 0 && (limits.rpm <= 0 || d.tpm_minutes > d.rpm_minutes);
        d.binding = tpm_binds ? binding_limit::tpm : binding_limit::rpm;
        d.minutes = std::max(d.rpm_minutes, d.tpm_minutes);
    }
    return d;
}

cost_estimate estimate_cost(const model_plan& model, const model_price& price) {
    constexpr double per_million = 1e-6;
    cost_estimate c;
    c.prompt = static_cast<double>(model.prompt_tokens) * price.input * per_million;
    c.completion = static_cast<double>(model.completion_budget) * price.output * per_million;
    return c;
}

namespace {

// Groups the plan's models into the scopes the dispatcher would admit them in.
std::vector<scope_estimate> scopes_of(const batch_plan& plan, const dispatcher_options& opts) {
    std::map<std::string, scope_estimate> scopes; // by key: "" sorts first
    for (const auto& [model, m] : plan.models) {
        const std::string& key = scope_key(model, opts.model_limits, opts.per_model_limits);
        scope_estimate& s = scopes[key];
        s.name = key;
        s.limits = scope_limits(key, opts.limits, opts.model_limits);
        s.requests += m.requests;
        s.tokens += m.tokens();
        s.largest_request = std::max(s.largest_request, m.largest_request);
    }
    std::vector<scope_estimate> out;
    out.reserve(scopes.size());
    for (auto& [key, s] : scopes) {
        s.duration = minimum_duration(s.requests, s.tokens, s.limits);
        // The limiter's own rule, so the plan refuses what admission will.
        s.too_large =
            rate_limiter(s.limits, rate_limiter::time_point{}).too_large(s.largest_request);
        out.push_back(std::move(s));
    }
    return out;
}

} // namespace

plan_estimate
estimate_plan(const batch_plan& plan, const dispatcher_options& opts, const price_table& prices) {
    plan_estimate r;
    r.scopes = scopes_of(plan, opts);
    for (std::size_t i = 0; i < r.scopes.size(); ++i) {
        const duration_estimate& d = r.scopes[i].duration;
        if (d.binding != binding_limit::none &&
            (!r.slowest || d.minutes > r.scopes[*r.slowest].duration.minutes))
            r.slowest = i;
    }
    for (const auto& [model, m] : plan.models) {
        model_cost& p = r.models[model];
        if (const model_price* price = find_price(prices, model, &p.priced_as)) {
            p.cost = estimate_cost(m, *price);
            r.total_cost.prompt += p.cost->prompt;
            r.total_cost.completion += p.cost->completion;
        } else {
            r.unpriced.push_back(model);
        }
    }
    return r;
}

} // namespace sluice
