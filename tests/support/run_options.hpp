#pragma once

#include "cli/run_options.hpp"
#include "support/temp_dir.hpp"

#include <exception>
#include <string>

namespace sluice::test {

/// Options that read the config file `toml`, written as c.toml in `dir`.
inline cli::run_options with_config(const temp_dir& dir, const std::string& toml) {
    cli::run_options o;
    o.config_file = dir.file("c.toml");
    write_file(o.config_file, toml);
    return o;
}

/// What build_options says of `o`; empty when it accepts them.
inline std::string refusal(const cli::run_options& o) {
    try {
        cli::build_options(o);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

} // namespace sluice::test
