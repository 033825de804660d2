#pragma once

#include <cstddef>
#include <string_view>

// The process's open-file limit, raised to what a command's connections need. A closed loop of
// 10,000 connections needs 10,000 descriptors, and a login shell's soft limit is often 1,024
// while its hard limit allows far more: raising the soft limit is what nginx's
// worker_rlimit_nofile does, and needs no privilege up to the hard limit.

namespace sluice::cli {

/// Descriptors a command keeps beside its connections: the event loop's, the input and output
/// files, the journal, the resolver's, a metrics listener and its scrapes, with room to spare.
inline constexpr std::size_t reserved_descriptors = 64;

/// Raises the soft RLIMIT_NOFILE to `needed` descriptors when it is lower, up to the hard
/// limit. True when the limit now allows `needed`; otherwise prints to stderr, under `command`,
/// what is needed and the command that raises the limit (`ulimit -n`), and returns false.
bool ensure_open_files(std::size_t needed, std::string_view command);

/// Raises the soft limit as far as the hard limit allows, for a server that does not know how
/// many clients will come (`sluice mock`). Never fails: a server below its wish still serves.
void raise_open_files_to_hard_limit();

} // namespace sluice::cli
