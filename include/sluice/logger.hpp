#pragma once

#include <functional>
#include <string_view>

namespace sluice {

/// How much a log line matters.
enum class log_level {
    debug,
    info,    ///< what the engine learned or decided (limits taken from the server's headers)
    warning, ///< the run goes on, but not as configured
    error,   ///< the run stops (quota exhausted, the key refused)
};

/// The name of `level` ("debug", "info", "warning", "error").
std::string_view to_string(log_level level) noexcept;

/// Where the library's own messages go: the library never prints. An embedding service routes
/// them to its log; the `sluice` tool writes them to stderr. Lines below `min_level`, and all
/// lines when `sink` is empty (the default), are dropped. The sink is called on the engine's
/// executor, with a message that holds no secret (the API key is never part of one) and has
/// no trailing newline; it must not call back into the dispatcher.
struct logger {
    log_level min_level = log_level::info;
    std::function<void(log_level, std::string_view message)> sink;

    /// True when a line at `level` would be written: test it before building a costly one.
    bool enabled(log_level level) const noexcept { return sink && level >= min_level; }

    void log(log_level level, std::string_view message) const {
        if (enabled(level))
            sink(level, message);
    }
};

} // namespace sluice
