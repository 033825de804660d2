#include "cli/dry_run.hpp"

#include "cli/config_file.hpp"
#include "cli/exit_status.hpp"
#include "cli/private_file.hpp"
#include "cli/run_options.hpp"
#include "detail/json_string.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <ostream>
#include <sstream>

namespace sluice::cli {

namespace {

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

// Built by appending: GCC 12 warns falsely (-Warray-bounds) on the insert at the front.
std::string pad_left(std::string s, std::size_t width) {
    if (s.size() >= width)
        return s;
    std::string out(width - s.size(), ' ');
    out += s;
    return out;
}

void print_models(std::ostream& os, const batch_plan& plan, const plan_estimate& r) {
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
        const model_cost& p = r.models.at(model);
        std::string cost = "not priced";
        if (p.cost) {
            cost = usd(p.cost->total());
            if (p.priced_as != model)
                cost += " (priced as " + p.priced_as + ")";
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

void print_duration(std::ostream& os, const plan_estimate& r) {
    if (!r.slowest) {
        os << "  minimum duration: no limits configured (the run goes as fast as the connections "
              "allow, or at the limits the server's x-ratelimit-* headers name)\n";
        return;
    }
    const scope_estimate& s = *r.slowest_scope();
    os << "  minimum duration at the limits: " << duration_text(s.duration.minutes) << ", bound by "
       << (s.duration.binding == binding_limit::rpm ? "requests per minute (RPM)"
                                                    : "tokens per minute (TPM)");
    if (r.scopes.size() > 1)
        os << " of the " << scope_label(s.name) << " scope";
    os << '\n';
    for (const scope_estimate& scope : r.scopes) {
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
    for (const scope_estimate& scope : r.scopes) {
        if (scope.too_large)
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

void print_cost(std::ostream& os, const batch_plan& plan, const plan_estimate& r) {
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
    sluice::detail::append_json_string(out, s);
    return out;
}

std::string json_cost(const cost_estimate& c) {
    return R"({"prompt":)" + json_number(c.prompt) + R"(,"completion_max":)" +
           json_number(c.completion) + R"(,"total_max":)" + json_number(c.total()) + "}";
}

} // namespace

void print_plan(std::ostream& os, const batch_plan& plan, const plan_estimate& r) {
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

void write_plan_json(std::ostream& os, const batch_plan& plan, const plan_estimate& r) {
    const scope_estimate* slowest = r.slowest_scope();
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
        const model_cost& p = r.models.at(model);
        os << sep << json_string(model) << R"(:{"requests":)" << m.requests
           << R"(,"prompt_tokens":)" << m.prompt_tokens << R"(,"completion_budget":)"
           << m.completion_budget << R"(,"largest_request":)" << m.largest_request
           << R"(,"priced_as":)" << (p.cost ? json_string(p.priced_as) : "null")
           << R"(,"cost_usd":)" << (p.cost ? json_cost(*p.cost) : "null") << '}';
        sep = ",";
    }
    os << R"(},"duration":{"minimum_minutes":)"
       << json_number(slowest ? slowest->duration.minutes : 0) << R"(,"binding":")"
       << binding_name(slowest ? slowest->duration.binding : binding_limit::none) << R"(","scope":)"
       << (slowest ? json_string(slowest->name) : "null") << R"(,"scopes":[)";
    sep = "";
    for (const scope_estimate& s : r.scopes) {
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

int dry_run(const run_options& o, const batch_options& bo) {
    try {
        const price_table prices = load_prices(o.config_file);
        const batch_plan plan = plan_batch(batch_files{o.input, o.output, {}}, bo);
        const plan_estimate estimate = estimate_plan(plan, bo.engine, prices);
        print_plan(std::cout, plan, estimate);
        if (!o.summary_file.empty()) {
            std::ostringstream json;
            write_plan_json(json, plan, estimate);
            if (!write_private_file(o.summary_file, json.str())) {
                std::cerr << "sluice run: cannot write " << o.summary_file << '\n';
                return exit_io;
            }
        }
        return plan.bad_lines > 0 ? exit_invalid_input : exit_ok;
    } catch (const config_error& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "sluice run: " << e.what() << '\n';
        return exit_io;
    }
}

} // namespace sluice::cli
