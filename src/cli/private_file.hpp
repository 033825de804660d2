#pragma once

#include <string>
#include <string_view>

// Whole files the commands write beside the output: summaries, plans and bench reports.

namespace sluice::cli {

/// Writes `text` as the whole content of `path`, creating it with mode 0600 (less whatever the
/// umask takes away): a summary or a report holds the job's figures and models, readable by
/// its owner alone like the output it describes. An existing file keeps its mode and is
/// truncated (a summary is the last run's). False when it cannot be created or written.
bool write_private_file(const std::string& path, std::string_view text);

} // namespace sluice::cli
