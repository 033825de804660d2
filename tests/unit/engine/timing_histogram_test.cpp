#include <sluice/timing_histogram.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

using namespace sluice;
using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;

namespace {

// Latencies from about 10 us to 10 s, log-normally spread, as a mixed benchmark produces.
std::vector<ns> random_latencies(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> dist(std::log(5e6), 2.0); // median 5 ms in ns
    std::vector<ns> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        out.emplace_back(static_cast<std::int64_t>(std::min(dist(rng), 1e13)));
    return out;
}

// Nearest rank with integer arithmetic: rank ceil(permille x n / 100000), p in 1/1000 %.
ns exact_percentile(const std::vector<ns>& sorted, std::uint64_t milli_percent) {
    const std::uint64_t n = sorted.size();
    std::uint64_t rank = (milli_percent * n + 99'999) / 100'000;
    rank = std::clamp<std::uint64_t>(rank, 1, n);
    return sorted[rank - 1];
}

} // namespace

TEST_CASE("histogram percentiles are within the documented error of the exact ones") {
    auto values = random_latencies(200'000, 7);
    timing_histogram h;
    for (ns v : values)
        h.record(v);
    std::sort(values.begin(), values.end());
    for (std::uint64_t mp : {1'000u,
                             10'000u,
                             25'000u,
                             50'000u,
                             75'000u,
                             90'000u,
                             95'000u,
                             99'000u,
                             99'900u,
                             99'990u}) {
        const double p = static_cast<double>(mp) / 1000;
        CAPTURE(p);
        const double exact = static_cast<double>(exact_percentile(values, mp).count());
        const double got = static_cast<double>(h.percentile(p).count());
        // Relative above 256 us; half a microsecond below, where buckets are 1 us wide.
        CHECK(std::abs(got - exact) <= exact * timing_histogram::relative_error + 500);
    }
    CHECK(timing_histogram::relative_error <= 0.01);
}

TEST_CASE("count, min, max, mean and std are exact") {
    const auto values = random_latencies(50'000, 11);
    timing_histogram h;
    double sum = 0;
    for (ns v : values) {
        h.record(v);
        sum += static_cast<double>(v.count());
    }
    const double mean = sum / static_cast<double>(values.size());
    double sq = 0;
    for (ns v : values)
        sq += (static_cast<double>(v.count()) - mean) * (static_cast<double>(v.count()) - mean);
    CHECK(h.count() == values.size());
    CHECK(h.min() == *std::min_element(values.begin(), values.end()));
    CHECK(h.max() == *std::max_element(values.begin(), values.end()));
    CHECK(h.percentile(0) == h.min());
    CHECK(h.percentile(100) == h.max());
    CHECK(h.mean_ns() == Approx(mean).epsilon(1e-12));
    CHECK(h.stddev_ns() ==
          Approx(std::sqrt(sq / static_cast<double>(values.size()))).epsilon(1e-9));
}

TEST_CASE("the std of long latencies with a small spread keeps its digits") {
    // An hour give or take a microsecond: sum(x^2) - n mean^2 over raw nanoseconds would
    // lose the spread in the rounding of the squares (about 1.3e25 each).
    timing_histogram h;
    for (int i = 0; i < 10'000; ++i)
        h.record(std::chrono::hours(1) + std::chrono::microseconds(i % 2 == 0 ? 0 : 2));
    CHECK(h.stddev_ns() == Approx(1000.0).epsilon(1e-9));
    CHECK(h.mean_ns() == Approx(3600e9 + 1000.0).epsilon(1e-15));
    timing_histogram other;
    other.record(std::chrono::hours(1) + std::chrono::microseconds(1));
    h.merge(other); // merged across different first values
    CHECK(h.stddev_ns() == Approx(std::sqrt(10'000.0 / 10'001.0) * 1000.0).epsilon(1e-9));
}

TEST_CASE("the rank of a percentile is not pushed up by floating-point rounding") {
    // 999 fast values and one slow one: p99.9 is the 999th value, the fast one.
    timing_histogram h;
    for (int i = 0; i < 999; ++i)
        h.record(1ms);
    h.record(100ms);
    CHECK(h.percentile(99.9) < 2ms);
    CHECK(h.percentile(99.95) > 90ms);
    CHECK(h.percentile(50) < 2ms);
}

TEST_CASE("merging per-thread histograms equals recording everything in one") {
    const auto values = random_latencies(30'000, 3);
    timing_histogram all, parts[3];
    for (std::size_t i = 0; i < values.size(); ++i) {
        all.record(values[i]);
        parts[i % 3].record(values[i]);
    }
    timing_histogram merged;
    for (const auto& part : parts)
        merged.merge(part);
    merged.merge(timing_histogram{}); // an empty one changes nothing
    CHECK(merged.count() == all.count());
    CHECK(merged.min() == all.min());
    CHECK(merged.max() == all.max());
    CHECK(merged.mean_ns() == all.mean_ns());
    CHECK(merged.stddev_ns() == Approx(all.stddev_ns()).epsilon(1e-9));
    for (double p : {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0})
        CHECK(merged.percentile(p) == all.percentile(p));
}

TEST_CASE("out-of-range values are kept in the edge buckets, with min and max exact") {
    timing_histogram h;
    h.record(-5ms); // a clock oddity counts as zero
    CHECK(h.min() == 0ns);
    h.record(48h); // beyond max_trackable: counts in the top bucket
    CHECK(h.max() == 48h);
    CHECK(h.percentile(100) == 48h);
    CHECK(h.percentile(75) <= 48h);
    CHECK(h.percentile(75) >= timing_histogram::max_trackable / 2);
}

TEST_CASE("an empty histogram reports zeros and reset empties a full one") {
    timing_histogram h;
    CHECK(h.empty());
    CHECK(h.percentile(50) == 0ns);
    CHECK(h.mean_ns() == 0);
    CHECK(h.stddev_ns() == 0);
    h.record(3ms);
    CHECK(double(h.percentile(50).count()) ==
          Approx(3e6).epsilon(timing_histogram::relative_error));
    h.reset();
    CHECK(h.empty());
    CHECK(h.max() == 0ns);
    CHECK(h.percentile(99) == 0ns);
}

TEST_CASE("count_at_most counts each value at most its bound, within one bucket, cumulatively") {
    timing_histogram h;
    std::vector<ns> values;
    for (int i = 0; i < 5000; ++i)
        values.push_back(ns(std::int64_t(i) * 7919 * 1013 % 3'000'000'000));
    for (auto v : values)
        h.record(v);
    CHECK(h.count_at_most(-1ns) == 0);
    CHECK(h.count_at_most(h.max()) == 5000);
    CHECK(h.count_at_most(1h) == 5000);
    CHECK(h.sum() == std::accumulate(values.begin(), values.end(), ns(0)));
    std::uint64_t last = 0;
    for (const ns b :
         std::initializer_list<ns>{1us, 255us, 256us, 1ms, 2500us, 5ms, 10ms, 100ms, 1s, 2500ms}) {
        std::uint64_t exact = 0, loose = 0;
        for (auto v : values) {
            exact += v <= b;
            // A value counts once its whole bucket (at most 1/128 wide) is at most the bound.
            loose += v <= b - b / 128 - 1us;
        }
        const std::uint64_t n = h.count_at_most(b);
        INFO(b.count() << " " << n << " " << exact);
        CHECK(n <= exact);
        CHECK(n >= loose);
        CHECK(n >= last);
        last = n;
    }
    // Below 256 us every microsecond is its own bucket: exact on whole microseconds.
    timing_histogram small;
    for (int us = 0; us < 256; ++us)
        small.record(std::chrono::microseconds(us) + 500ns);
    CHECK(small.count_at_most(100us) == 100); // 0.5 us ... 99.5 us
    CHECK(small.count_at_most(101us) == 101);
    CHECK(small.count_at_most(100us + 999ns) == 101); // the whole bucket [100, 101) us is below
    CHECK(small.count_at_most(100us + 998ns) == 100); // not all of it: 100.5 us is not counted
}
