#include "harness/json_fields.hpp"
#include "harness/report_metrics.hpp"

#include <sluice/harness/report.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace sluice {

namespace detail {

std::string percentile_word(double p) {
    char buf[32];
    const auto res = std::to_chars(buf, buf + sizeof buf, p);
    return std::string(buf, res.ptr);
}

std::string_view process_name(arrival_process p) noexcept {
    switch (p) {
    case arrival_process::constant:
        return "constant";
    case arrival_process::poisson:
        return "poisson";
    case arrival_process::gamma:
        return "gamma";
    }
    return "unknown";
}

std::optional<double> goodput_of(const recorder& rec, const report_extras& extras) {
    if (!extras.goodput || !extras.goodput->slo().any())
        return std::nullopt;
    const double secs = std::chrono::duration<double>(rec.wall()).count();
    return secs > 0 ? static_cast<double>(extras.goodput->good()) / secs : 0.0;
}

std::string fixed2(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

} // namespace detail

namespace {

using detail::fixed2;
using detail::json_fields;

void json_context(json_fields& f, const report_context& ctx) {
    if (!ctx.date.empty())
        f.string("date", ctx.date);
    if (!ctx.backend.empty())
        f.string("backend", ctx.backend);
    if (!ctx.model_id.empty())
        f.string("model_id", ctx.model_id);
    const arrivals_options& load = ctx.load;
    if (load.max_requests)
        f.integer("num_prompts", load.max_requests);
    else
        f.null("num_prompts");
    if (load.rate > 0)
        f.number("request_rate", load.rate);
    else
        f.string("request_rate", "inf");
    f.string("arrivals", detail::process_name(load.process));
    f.number("burstiness", load.burstiness);
    if (load.concurrency)
        f.integer("max_concurrency", load.concurrency);
    else
        f.null("max_concurrency");
    f.integer("seed", load.seed);
}

void json_timeline(json_fields& f, const timeline& t) {
    using b = timeline_bucket;
    const auto mean_ms = [](std::chrono::nanoseconds sum, std::uint64_t n) {
        return n ? detail::to_ms(static_cast<double>(sum.count())) / static_cast<double>(n) : 0.0;
    };
    json_fields o = f.object("timeline");
    o.number("bucket_s", std::chrono::duration<double>(t.width()).count());
    const auto& v = t.buckets();
    o.numbers("sent", v, [](const b& x) { return static_cast<double>(x.sent); });
    o.numbers("completed", v, [](const b& x) { return static_cast<double>(x.completed); });
    o.numbers("failed", v, [](const b& x) { return static_cast<double>(x.failed); });
    o.numbers("output_tokens", v, [](const b& x) { return static_cast<double>(x.output_tokens); });
    o.numbers("mean_e2el_ms", v, [&](const b& x) { return mean_ms(x.e2el_sum, x.completed); });
    o.numbers("max_e2el_ms", v, [](const b& x) {
        return detail::to_ms(static_cast<double>(x.e2el_max.count()));
    });
    o.numbers("mean_ttft_ms", v, [&](const b& x) { return mean_ms(x.ttft_sum, x.ttft_count); });
    o.close();
}

// sluice's own fields from a load generator: goodput's terms, how requests were made, the
// run over time.
void json_extras(json_fields& f, const report_extras& x) {
    if (x.goodput && x.goodput->slo().any()) {
        const slo_options& slo = x.goodput->slo();
        f.integer("good_requests", x.goodput->good());
        json_fields o = f.object("goodput_slo_ms");
        if (slo.ttft)
            o.number("ttft", slo.ttft->count());
        if (slo.tpot)
            o.number("tpot", slo.tpot->count());
        if (slo.e2el)
            o.number("e2el", slo.e2el->count());
        o.close();
    }
    if (x.stream)
        f.boolean("stream", *x.stream);
    if (!x.input.empty())
        f.string("input", x.input);
    f.number("warmup_s", std::chrono::duration<double>(x.warmup).count());
    f.integer("warmup_requests", x.warmup_requests);
    f.integer("cancelled", x.cancelled);
    if (x.over_time)
        json_timeline(f, *x.over_time);
}

void json_metric(json_fields& f, const detail::report_metric& m, const timing_histogram& h) {
    const std::string stem = std::string(m.key) + "_ms";
    f.integer("count_" + std::string(m.key), h.count());
    f.number("mean_" + stem, detail::to_ms(h.mean_ns()));
    f.number("median_" + stem, detail::to_ms(static_cast<double>(h.percentile(50).count())));
    f.number("std_" + stem, detail::to_ms(h.stddev_ns()));
    f.number("min_" + stem, detail::to_ms(static_cast<double>(h.min().count())));
    f.number("max_" + stem, detail::to_ms(static_cast<double>(h.max().count())));
    for (double p : report_percentiles) {
        const double v = static_cast<double>(h.percentile(p).count());
        f.number("p" + detail::percentile_word(p) + "_" + stem, detail::to_ms(v));
    }
}

// One "label: value" line of the text table, vLLM's 40-column label.
void text_line(std::string& out, std::string_view label, std::string_view value) {
    out.append(label);
    out.append(label.size() < 41 ? 41 - label.size() : 1, ' ');
    out.append(value);
    out += '\n';
}

// `title` centred in a 50-column rule of `fill`, as Python's "{:{c}^50}" does.
void text_rule(std::string& out, std::string_view title, char fill) {
    const std::size_t width = 50;
    const std::size_t pad = title.size() < width ? width - title.size() : 0;
    out.append(pad / 2, fill);
    out.append(title);
    out.append(pad - pad / 2, fill);
    out += '\n';
}

void text_metric(std::string& out, const detail::report_metric& m, const timing_histogram& h) {
    text_rule(out, m.header, '-');
    const std::string name(m.name);
    const auto ms = [](timing_histogram::duration d) {
        return fixed2(detail::to_ms(static_cast<double>(d.count())));
    };
    text_line(out, "Mean " + name + " (ms):", fixed2(detail::to_ms(h.mean_ns())));
    text_line(out, "Median " + name + " (ms):", ms(h.percentile(50)));
    for (double p : report_percentiles)
        if (p != 50)
            text_line(
                out, "P" + detail::percentile_word(p) + " " + name + " (ms):", ms(h.percentile(p)));
    text_line(out, "Max " + name + " (ms):", ms(h.max()));
}

void text_load(std::string& out, const report_context& ctx) {
    const arrivals_options& load = ctx.load;
    if (!ctx.backend.empty())
        text_line(out, "Backend:", ctx.backend);
    if (!ctx.model_id.empty())
        text_line(out, "Model:", ctx.model_id);
    text_line(out, "Traffic request rate:", load.rate > 0 ? fixed2(load.rate) : "inf");
    std::string process(detail::process_name(load.process));
    if (load.process == arrival_process::gamma)
        process += ", burstiness " + fixed2(load.burstiness);
    text_line(out, "Arrival process:", load.rate > 0 ? process : "none (unpaced)");
    text_line(out,
              "Maximum request concurrency:",
              load.concurrency ? std::to_string(load.concurrency) : "None");
    const report_extras& x = ctx.extras;
    if (x.stream)
        text_line(out, "Streaming:", *x.stream ? "yes" : "no");
    if (!x.input.empty())
        text_line(out, "Input:", x.input);
    if (x.warmup.count() > 0)
        text_line(out,
                  "Warm-up (s, requests excluded):",
                  fixed2(std::chrono::duration<double>(x.warmup).count()) + ", " +
                      std::to_string(x.warmup_requests));
}

} // namespace

void detail::json_report_fields(json_fields& f, const recorder& rec, const report_context& ctx) {
    json_context(f, ctx);
    f.number("duration", std::chrono::duration<double>(rec.wall()).count());
    f.integer("completed", rec.completed());
    f.integer("failed", rec.failed());
    json_fields failures = f.object("failures");
    for (const auto& [kind, n] : rec.failures())
        failures.integer(kind, n);
    failures.close();
    f.integer("total_input_tokens", rec.input_tokens());
    f.integer("total_output_tokens", rec.output_tokens());
    f.number("request_throughput", rec.request_throughput());
    if (const auto goodput = detail::goodput_of(rec, ctx.extras))
        f.number("request_goodput", *goodput);
    else
        f.null("request_goodput");
    f.number("output_throughput", rec.output_throughput());
    f.number("total_token_throughput", rec.total_token_throughput());
    for (const auto& m : detail::report_metrics)
        json_metric(f, m, (rec.*m.histogram)());
    json_extras(f, ctx.extras);
}

std::string report_json(const recorder& rec, const report_context& ctx) {
    std::string out;
    json_fields f(out);
    detail::json_report_fields(f, rec, ctx);
    f.close();
    return out;
}

std::string report_text(const recorder& rec, const report_context& ctx) {
    std::string out;
    text_rule(out, " Serving Benchmark Result ", '=');
    text_load(out, ctx);
    text_line(out, "Successful requests:", std::to_string(rec.completed()));
    text_line(out, "Failed requests:", std::to_string(rec.failed()));
    text_line(
        out, "Benchmark duration (s):", fixed2(std::chrono::duration<double>(rec.wall()).count()));
    text_line(out, "Total input tokens:", std::to_string(rec.input_tokens()));
    text_line(out, "Total generated tokens:", std::to_string(rec.output_tokens()));
    text_line(out, "Request throughput (req/s):", fixed2(rec.request_throughput()));
    if (const auto goodput = detail::goodput_of(rec, ctx.extras))
        text_line(out, "Request goodput (req/s):", fixed2(*goodput));
    text_line(out, "Output token throughput (tok/s):", fixed2(rec.output_throughput()));
    text_line(out, "Total Token throughput (tok/s):", fixed2(rec.total_token_throughput()));
    // A metric with no values (TTFT of a run without streaming) says nothing: left out here,
    // reported with its zero count in the JSON.
    for (const auto& m : detail::report_metrics) {
        const timing_histogram& h = (rec.*m.histogram)();
        if (!h.empty())
            text_metric(out, m, h);
    }
    if (!rec.failures().empty()) {
        text_rule(out, "Failures", '-');
        for (const auto& [kind, n] : rec.failures())
            text_line(out, kind + ":", std::to_string(n));
    }
    if (ctx.extras.cancelled > 0)
        text_line(out, "Cancelled (not recorded):", std::to_string(ctx.extras.cancelled));
    text_rule(out, "", '=');
    return out;
}

} // namespace sluice
