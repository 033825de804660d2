#pragma once

#include <sluice/loadgen/load_generator.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

// The progress line of `sluice bench`, fed by the load generator's once-a-second callback.

namespace sluice::cli {

/// The text of the status line for `p` (no control characters), e.g. "12.0 s  456/1,000
/// (45.6%)  98.7 req/s  3.4k tok/s  0 failed  64 in flight  TTFT p50 12.30 ms  E2EL p50
/// 45.60 ms  lag p99 0.12 ms". The rates are taken since `previous` (the last snapshot shown,
/// or none). During the warm-up the line says so and shows what was sent.
std::string bench_progress_text(const loadgen_progress& p,
                                const std::optional<loadgen_progress>& previous);

/// Writes the status line to `fd`: redrawn in place on a terminal at every update, a plain
/// "bench: ..." line every `plain_interval` elsewhere. Writes are best effort.
///
/// Thread safety: none; called from the loop's thread.
class bench_progress {
public:
    bench_progress(int fd, bool tty, std::chrono::milliseconds plain_interval);

    /// Shows `p` (a terminal at once, a plain line when `plain_interval` has passed).
    void update(const loadgen_progress& p);

    /// A new level of a sweep begins: its lines start with `label` ("level 2/4  rate 20/s")
    /// and its rates are not taken against the previous level's snapshots.
    void start_level(std::string label);

    /// On a terminal, erases the line so that a message can be printed on a clean line.
    void clear();

    /// Ends the display: on a terminal, erases the line (the report follows).
    void finish();

private:
    void write(const std::string& text);

    int fd_;
    bool tty_;
    std::chrono::milliseconds plain_interval_;
    std::string label_;
    std::optional<loadgen_progress> previous_;
    std::chrono::steady_clock::duration last_plain_{};
    bool drawn_ = false;
};

} // namespace sluice::cli
