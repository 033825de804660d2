// The config loader (src/cli/config_file.cpp, TOML) on arbitrary files. It either applies a
// file whose result passes dispatcher_options::validate(), or throws config_error and leaves
// the options as they were; no other exception escapes it, nor from load_prices/load_tiers.
#include "fuzz_support.hpp"

#include "cli/config_file.hpp"

#include <fstream>

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = (fuzz::scratch_dir() / "config.toml").string();
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    dispatcher_options opts;
    opts.base_url = "http://127.0.0.1:9/v1";
    opts.pool.max_connections = 7;
    opts.limits.rpm = 123;
    try {
        cli::apply_config_file(path, opts);
        opts.validate(); // throws std::invalid_argument, an escape the fuzzer reports
    } catch (const cli::config_error&) {
        SLUICE_FUZZ_CHECK(opts.base_url == "http://127.0.0.1:9/v1");
        SLUICE_FUZZ_CHECK(opts.pool.max_connections == 7);
        SLUICE_FUZZ_CHECK(opts.limits.rpm == 123);
    }
    try {
        cli::load_prices(path);
    } catch (const cli::config_error&) {
    }
    try {
        cli::load_tiers(path);
    } catch (const cli::config_error&) {
    }
    return 0;
}
