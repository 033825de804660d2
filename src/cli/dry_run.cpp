#include "cli/dry_run.hpp"

#include "detail/json_string.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <ostream>

namespace sluice::cli {

plan_builder::plan_builder(const estimate_options& estimate)
    : estimate_(estimate) {}

void plan_builder::add(const request& req) {
    // Always estimated from the body, even with token_cost set: the split into prompt and
    // completion is what prices need, and only the body has it.
    const token_estimate e = estimate_tokens(req.body, estimate_);
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

// The requests one rate-limit scope would admit, grouped as dispatcher::scope_for does.
struct scope_plan {
    std::string name; // a model, or "" for the endpoint's scope
    limit_options limits;
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;
    std::uint64_t largest_request = 0;
    duration_estimate duration;
};

// What the report says, worked out once for the text and the JSON form.
struct report {
    std::vector<scope_plan> scopes;     // the endpoint's first, then models by name
    std::optional<std::size_t> slowest; // index into scopes; empty when no scope has a limit
    struct priced {
        std::string name; // price table entry used, "" when not priced
        std::optional<cost_estimate> cost;
    };
    std::map<std::string, priced> models;
    cost_estimate total_cost; // over the priced models
    std::vector<std::string> unpriced;
};

report
make_report(const dry_run_plan& plan, const dispatcher_options& opts, const price_table& prices) {
    report r;
    std::map<std::string, scope_plan> scopes;
    for (const auto& [model, m] : plan.models) {
        std::string scope;
        const limit_options* limits = &opts.limits;
        if (!model.empty()) {
            if (auto it = opts.model_limits.find(model); it != opts.model_limits.end()) {
                scope = model;
                limits = &it->second;
            } else if (opts.per_model_limits) {
                scope = model;
            }
        }
        scope_plan& s = scopes[scope];
        s.name = scope;
        s.limits = *limits;
        s.requests += m.requests;
        s.tokens += m.tokens();
        s.largest_request = std::max(s.largest_request, m.largest_request);

        report::priced& p = r.models[model];
        if (const model_price* price = find_price(prices, model, &p.name)) {
            p.cost = estimate_cost(m, *price);
            r.total_cost.prompt += p.cost->prompt;
            r.total_cost.completion += p.cost->completion;
        } else {
            r.unpriced.push_back(model);
        }
    }
    for (auto& [name, s] : scopes) {
        s.duration = minimum_duration(s.requests, s.tokens, s.limits);
        r.scopes.push_back(std::move(s));
    }
    for (std::size_t i = 0; i < r.scopes.size(); ++i) {
        const duration_estimate& d = r.scopes[i].duration;
        if (d.binding != binding_limit::none &&
            (!r.slowest || d.minutes > r.scopes[*r.slowest].duration.minutes))
            r.slowest = i;
    }
    return r;
}

dispatcher_options one_scope(const limit_options& limits) {
    dispatcher_options opts;
    opts.limits = limits;
    return opts;
}

// 1234567 -> "1,234,567": token counts run to millions and are read at a glance.
std::string count(std::uint64_t n) {
    std::string digits = std::to_string(n);
    for (auto at = digits.size(); at > 3; at -= 3)
        digits.insert(at - 3, 1, ',');
    return digits;
}

std::string rate(double per_minute) {
    if (per_minute == std::floor(per_minute) && per_minute < 1e15)
        return count(static_cast<std::uint64_t>(per_minute));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", per_minute);
    return buf;
}

std::string duration_text(double minutes) {
    char buf[48];
    const double seconds = minutes * 60;
    if (seconds < 10)
        std::snprintf(buf, sizeof buf, "%.1f s", seconds);
    else if (seconds < 60)
        std::snprintf(buf, sizeof buf, "%.0f s", seconds);
    else if (minutes < 60)
        std::snprintf(buf, sizeof buf, "%.1f min", minutes);
    else {
        const auto whole = static_cast<std::uint64_t>(std::llround(minutes));
        std::snprintf(buf,
                      sizeof buf,
                      "%llu h %02llu min",
                      static_cast<unsigned long long>(whole / 60),
                      static_cast<unsigned long long>(whole % 60));
    }
    return buf;
}

std::string usd(double dollars) {
    if (dollars > 0 && dollars < 0.005)
        return "<$0.01";
    char buf[48];
    std::snprintf(buf, sizeof buf, "$%.2f", dollars);
    return buf;
}

std::string model_label(const std::string& model) {
    return model.empty() ? "(no model)" : model;
}

std::string scope_label(const std::string& scope) {
    return scope.empty() ? "endpoint" : "model " + scope;
}

std::string pad_right(std::string s, std::size_t width) {
    if (s.size() < width)
        s.append(width - s.size(), ' ');
    return s;
}

std::string pad_left(std::string s, std::size_t width) {
    if (s.size() < width)
        s.insert(0, width - s.size(), ' ');
    return s;
}

void print_models(std::ostream& os, const dry_run_plan& plan, const report& r) {
    std::size_t name_width = std::string_view("total").size();
    for (const auto& [model, m] : plan.models)
        name_width = std::max(name_width, model_label(model).size());
    constexpr std::size_t requests_width = 10;
    constexpr std::size_t prompt_width = 15;
    constexpr std::size_t budget_width = 19;
    auto row = [&](const std::string& name,
                   const std::string& requests,
                   const std::string& prompt,
                   const std::string& budget,
                   const std::string& cost) {
        os << "    " << pad_right(name, name_width) << pad_left(requests, requests_width)
           << pad_left(prompt, prompt_width) << pad_left(budget, budget_width) << "  " << cost
           << '\n';
    };
    os << "  by model (tokens are estimates, as admission charges them):\n";
    row("model", "requests", "prompt tokens", "completion budget", "cost (USD, at most)");
    model_plan total;
    for (const auto& [model, m] : plan.models) {
        const report::priced& p = r.models.at(model);
        std::string cost = "not priced";
        if (p.cost) {
            cost = usd(p.cost->total());
            if (p.name != model)
                cost += " (priced as " + p.name + ")";
        }
        row(model_label(model),
            count(m.requests),
            count(m.prompt_tokens),
            count(m.completion_budget),
            cost);
        total.requests += m.requests;
        total.prompt_tokens += m.prompt_tokens;
        total.completion_budget += m.completion_budget;
    }
    if (plan.models.size() > 1) {
        std::string cost = usd(r.total_cost.total());
        if (r.unpriced.size() == plan.models.size())
            cost = "not priced";
        else if (!r.unpriced.empty())
            cost += " (priced models only)";
        row("total",
            count(total.requests),
            count(total.prompt_tokens),
            count(total.completion_budget),
            cost);
    }
}

void print_duration(std::ostream& os, const report& r) {
    if (!r.slowest) {
        os << "  minimum duration: no limits configured (the run goes as fast as the connections "
              "allow, or at the limits the server's x-ratelimit-* headers name)\n";
        return;
    }
    const scope_plan& s = r.scopes[*r.slowest];
    os << "  minimum duration at the limits: " << duration_text(s.duration.minutes) << ", bound by "
       << (s.duration.binding == binding_limit::rpm ? "requests per minute (RPM)"
                                                    : "tokens per minute (TPM)");
    if (r.scopes.size() > 1)
        os << " of the " << scope_label(s.name) << " scope";
    os << '\n';
    for (const scope_plan& scope : r.scopes) {
        os << "    " << scope_label(scope.name) << ": " << count(scope.requests) << " requests";
        if (scope.limits.rpm > 0)
            os << " at " << rate(scope.limits.rpm)
               << " RPM = " << duration_text(scope.duration.rpm_minutes);
        else
            os << " (no RPM limit)";
        os << "; " << count(scope.tokens) << " tokens";
        if (scope.limits.tpm > 0)
            os << " at " << rate(scope.limits.tpm)
               << " TPM = " << duration_text(scope.duration.tpm_minutes);
        else
            os << " (no TPM limit)";
        os << '\n';
    }
    for (const scope_plan& scope : r.scopes) {
        if (scope.limits.tpm > 0 && static_cast<double>(scope.largest_request) > scope.limits.tpm)
            os << "    warning: the largest request of the " << scope_label(scope.name)
               << " scope (" << count(scope.largest_request) << " tokens) exceeds its "
               << rate(scope.limits.tpm)
               << " TPM: requests that large are refused (request_too_large), not sent\n";
    }
    if (s.duration.binding == binding_limit::tpm)
        os << "    (each completion is charged its whole budget; a server that sends no\n"
              "    x-ratelimit-remaining-tokens has the unused part refunded from usage, so\n"
              "    against such a server a TPM-bound run can finish sooner)\n";
}

void print_cost(std::ostream& os, const dry_run_plan& plan, const report& r) {
    if (r.unpriced.size() < plan.models.size()) {
        os << "  estimated cost: at most " << usd(r.total_cost.total()) << " (prompt "
           << usd(r.total_cost.prompt) << " + completion budget " << usd(r.total_cost.completion)
           << ")\n    the completion part is an upper bound: it prices every response at its "
              "full max_tokens\n";
    }
    if (!r.unpriced.empty()) {
        os << "  not priced:";
        const char* sep = " ";
        for (const std::string& model : r.unpriced) {
            os << sep << model_label(model);
            sep = ", ";
        }
        os << "\n    (set [prices.\"MODEL\"] input = ..., output = ..., in USD per 1M tokens, in "
              "the config file)\n";
    }
}

const char* binding_name(binding_limit b) {
    switch (b) {
    case binding_limit::rpm:
        return "rpm";
    case binding_limit::tpm:
        return "tpm";
    case binding_limit::none:
        break;
    }
    return "none";
}

std::string json_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", std::isfinite(v) ? v : 0.0);
    return buf;
}

std::string json_string(std::string_view s) {
    std::string out;
    detail::append_json_string(out, s);
    return out;
}

std::string json_cost(const cost_estimate& c) {
    return R"({"prompt":)" + json_number(c.prompt) + R"(,"completion_max":)" +
           json_number(c.completion) + R"(,"total_max":)" + json_number(c.total()) + "}";
}

} // namespace

void print_plan(std::ostream& os,
                const dry_run_plan& plan,
                const dispatcher_options& opts,
                const price_table& prices) {
    const report r = make_report(plan, opts, prices);
    os << "sluice run --dry-run: nothing sent\n";
    os << "  " << count(plan.lines) << " lines: " << count(plan.requests) << " requests, "
       << count(plan.bad_lines) << " bad lines\n";
    if (plan.skipped > 0)
        os << "  " << count(plan.skipped)
           << " more lines already have their record in the output: a resumed run skips them\n";
    if (!plan.bad_samples.empty()) {
        os << "  bad lines";
        if (plan.bad_samples.size() < plan.bad_lines)
            os << " (first " << plan.bad_samples.size() << " of " << count(plan.bad_lines) << ")";
        os << ":\n";
        for (const bad_line_sample& b : plan.bad_samples)
            os << "    line " << b.line_number << ": " << b.message << '\n';
    }
    if (plan.models.empty()) {
        os << "  nothing to send\n";
        return;
    }
    print_models(os, plan, r);
    print_duration(os, r);
    print_cost(os, plan, r);
}

void print_plan(std::ostream& os,
                const dry_run_plan& plan,
                const limit_options& limits,
                const price_table& prices) {
    print_plan(os, plan, one_scope(limits), prices);
}

void write_plan_json(std::ostream& os,
                     const dry_run_plan& plan,
                     const dispatcher_options& opts,
                     const price_table& prices) {
    const report r = make_report(plan, opts, prices);
    const scope_plan* slowest = r.slowest ? &r.scopes[*r.slowest] : nullptr;
    os << R"({"lines":)" << plan.lines << R"(,"requests":)" << plan.requests << R"(,"bad_lines":)"
       << plan.bad_lines << R"(,"skipped":)" << plan.skipped << R"(,"bad_line_samples":[)";
    const char* sep = "";
    for (const bad_line_sample& b : plan.bad_samples) {
        os << sep << R"({"line":)" << b.line_number << R"(,"message":)" << json_string(b.message)
           << '}';
        sep = ",";
    }
    os << R"(],"models":{)";
    sep = "";
    for (const auto& [model, m] : plan.models) {
        const report::priced& p = r.models.at(model);
        os << sep << json_string(model) << R"(:{"requests":)" << m.requests
           << R"(,"prompt_tokens":)" << m.prompt_tokens << R"(,"completion_budget":)"
           << m.completion_budget << R"(,"largest_request":)" << m.largest_request
           << R"(,"priced_as":)" << (p.cost ? json_string(p.name) : "null") << R"(,"cost_usd":)"
           << (p.cost ? json_cost(*p.cost) : "null") << '}';
        sep = ",";
    }
    os << R"(},"duration":{"minimum_minutes":)"
       << json_number(slowest ? slowest->duration.minutes : 0) << R"(,"binding":")"
       << binding_name(slowest ? slowest->duration.binding : binding_limit::none) << R"(","scope":)"
       << (slowest ? json_string(slowest->name) : "null") << R"(,"scopes":[)";
    sep = "";
    for (const scope_plan& s : r.scopes) {
        os << sep << R"({"scope":)" << json_string(s.name) << R"(,"requests":)" << s.requests
           << R"(,"tokens":)" << s.tokens << R"(,"rpm":)" << json_number(s.limits.rpm)
           << R"(,"tpm":)" << json_number(s.limits.tpm) << R"(,"rpm_minutes":)"
           << json_number(s.duration.rpm_minutes) << R"(,"tpm_minutes":)"
           << json_number(s.duration.tpm_minutes) << R"(,"binding":")"
           << binding_name(s.duration.binding) << R"("})";
        sep = ",";
    }
    os << R"(]},"cost_usd":{"total_max":)" << json_number(r.total_cost.total())
       << R"(,"unpriced_models":[)";
    sep = "";
    for (const std::string& model : r.unpriced) {
        os << sep << json_string(model);
        sep = ",";
    }
    os << "]}}\n";
}

} // namespace sluice::cli
