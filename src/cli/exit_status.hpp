#pragma once

// The exit statuses every `sluice` command shares, apart from the commands' flags so that the
// files printing a command's results need not see CLI11.

namespace sluice::cli {

/// Exit statuses of `sluice` commands (documented in docs/cli.md).
inline constexpr int exit_ok = 0;            ///< every input line ended in success
inline constexpr int exit_failures = 1;      ///< the run finished; some lines ended in errors
inline constexpr int exit_usage = 2;         ///< bad flags, config or environment; nothing sent
inline constexpr int exit_quota = 3;         ///< stopped: quota exhausted; rest not attempted
inline constexpr int exit_io = 4;            ///< input or output file could not be read/written
inline constexpr int exit_invalid_input = 5; ///< --strict found bad lines; nothing sent
inline constexpr int exit_auth = 6;          ///< stopped: the server refused the API key (401)
inline constexpr int exit_deadline = 7;      ///< stopped by --max-duration; records written
inline constexpr int exit_pending = 8; ///< sluice batch: parts not final yet; collect again later
inline constexpr int exit_interrupted = 130; ///< stopped by SIGINT/SIGTERM; records written

/// Thrown by a command's callback to end the process with `code` after it has reported.
struct command_exit {
    int code;
};

} // namespace sluice::cli
