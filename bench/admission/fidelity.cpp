// Rate-limit fidelity: RPM-bound and TPM-bound loads against the mock server enforcing its
// limits with a one-second bucket, for sluice's limiter (burst of one second) and for a naive
// client that lets the whole minute's budget go at once (burst of sixty seconds). Prints
// achieved rate / limit, 429s, and p50/p99 admission wait. Target for sluice: >= 95% of the
// binding limit with 429s < 0.5% of requests.
#include <sluice/dispatcher.hpp>
#include <sluice/metrics.hpp>
#include <sluice/mock/mock_server.hpp>
#include <sluice/source/token_estimate.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace sluice;

namespace {

struct outcome {
    double seconds = 0;
    std::uint64_t ok = 0;
    std::uint64_t rate_limited = 0;
    // Tokens the mock charged for the requests it served, from their usage: prompt + the whole
    // completion budget, since the mock answers with max_tokens words. 429s are not charged.
    std::uint64_t tokens = 0;
    // The client's own estimate of the same requests (what its token bucket paid).
    std::uint64_t estimated = 0;
    timing_histogram admission_wait;
};

std::string body(int i, int max_tokens) {
    return R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Question number )" +
           std::to_string(i) + R"(: what is the answer?"}],"max_tokens":)" +
           std::to_string(max_tokens) + "}";
}

outcome run(double rpm, double tpm, double client_burst_s, int n, int max_tokens) {
    asio::io_context server_ioc;
    mock_options mo;
    mo.rpm = rpm;
    mo.tpm = tpm;
    mo.answer_tokens = static_cast<std::uint32_t>(max_tokens);
    std::optional<mock_server> mock(std::in_place, server_ioc.get_executor(), mo);
    mock->start();
    std::thread server([&] { server_ioc.run(); });

    asio::io_context ioc;
    dispatcher_options opts;
    opts.base_url = mock->base_url();
    opts.limits.rpm = rpm;
    opts.limits.tpm = tpm;
    opts.limits.burst = std::chrono::duration<double>(client_burst_s);
    opts.retry.max_attempts = 50;
    dispatcher engine(ioc.get_executor(), opts);
    outcome out;
    int remaining = n;
    std::chrono::steady_clock::time_point first_admit{}, last_done{};
    for (int i = 0; i < n; ++i) {
        request req;
        req.custom_id = std::to_string(i);
        req.body = body(i, max_tokens);
        const std::uint64_t estimate = estimate_tokens(req.body, opts.estimate).total();
        engine.async_complete(std::move(req), [&, estimate](error_code ec, result r) {
            if (!ec) {
                ++out.ok;
                out.tokens += r.completion.usage ? r.completion.usage->total_tokens : 0;
                out.estimated += estimate;
            }
            out.admission_wait.record(r.times.admitted - r.times.queued);
            if (first_admit == std::chrono::steady_clock::time_point{} ||
                r.times.admitted < first_admit)
                first_admit = r.times.admitted;
            last_done = std::max(last_done, r.times.done);
            if (--remaining == 0)
                engine.stop();
        });
    }
    const auto start = std::chrono::steady_clock::now();
    ioc.run();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.rate_limited = mock->stats().rate_limited;
    asio::post(server_ioc, [&] { mock->stop(); });
    server.join();
    return out;
}

void report(const char* load,
            const char* client,
            const outcome& o,
            double achieved_per_min,
            double limit,
            int n) {
    std::printf("%-10s %-22s %8.1f%% %8llu %7.2f%% %10.0f %10.0f\n",
                load,
                client,
                100 * achieved_per_min / limit,
                static_cast<unsigned long long>(o.rate_limited),
                100.0 * static_cast<double>(o.rate_limited) / n,
                static_cast<double>(o.admission_wait.percentile(50).count()) / 1e6,
                static_cast<double>(o.admission_wait.percentile(99).count()) / 1e6);
}

} // namespace

int main() {
    std::printf("%-10s %-22s %9s %8s %8s %10s %10s\n",
                "load",
                "client",
                "rate/lim",
                "429s",
                "429/req",
                "wait p50",
                "wait p99");
    std::printf("%-10s %-22s %9s %8s %8s %10s %10s\n", "", "", "", "", "", "(ms)", "(ms)");
    // RPM-bound: 6,000 RPM (100/s) for about 20 s.
    {
        const int n = 2'000;
        const double rpm = 6'000;
        for (const auto& [name, burst] :
             {std::pair{"sluice (1 s burst)", 1.0}, {"naive (60 s burst)", 60.0}}) {
            const outcome o = run(rpm, 0, burst, n, 16);
            report("RPM-bound", name, o, static_cast<double>(o.ok) / o.seconds * 60, rpm, n);
        }
    }
    // TPM-bound: 200,000 TPM (3,333/s), requests of about 275 tokens, for about 20 s.
    std::string notes;
    {
        const int n = 250;
        const double tpm = 200'000;
        for (const auto& [name, burst] :
             {std::pair{"sluice (1 s burst)", 1.0}, {"naive (60 s burst)", 60.0}}) {
            const outcome o = run(0, tpm, burst, n, 256);
            // The tokens the mock charged, as its answers' usage counts them.
            const double charged_per_min = static_cast<double>(o.tokens) / o.seconds * 60;
            report("TPM-bound", name, o, charged_per_min, tpm, n);
            char line[256];
            std::snprintf(line,
                          sizeof line,
                          "TPM-bound %s: %llu tokens charged for %llu answers (%.1f each; the "
                          "client estimated %.1f)\n",
                          name,
                          static_cast<unsigned long long>(o.tokens),
                          static_cast<unsigned long long>(o.ok),
                          o.ok ? static_cast<double>(o.tokens) / static_cast<double>(o.ok) : 0.0,
                          o.ok ? static_cast<double>(o.estimated) / static_cast<double>(o.ok)
                               : 0.0);
            notes += line;
        }
    }
    std::printf("\n%s", notes.c_str());
    return 0;
}
