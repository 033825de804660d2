#include "cli/tiers_command.hpp"

#include "cli/exit_status.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <ostream>

namespace sluice::cli {

namespace {

// 3500 -> "3,500"; a fraction (a tier of one's own may have one) to one decimal.
std::string thousands(double v) {
    const auto whole = static_cast<long long>(std::floor(v));
    std::string digits = std::to_string(whole);
    for (auto i = static_cast<long long>(digits.size()) - 3; i > 0; i -= 3)
        digits.insert(static_cast<std::size_t>(i), ",");
    if (v != std::floor(v)) {
        const auto tenth = std::llround((v - std::floor(v)) * 10);
        digits += "." + std::to_string(std::min<long long>(tenth, 9));
    }
    return digits;
}

std::string limits_text(double rpm, double tpm) {
    if (rpm <= 0 && tpm <= 0)
        return "no limit";
    std::string s = rpm > 0 ? thousands(rpm) + " RPM" : "no request limit";
    s += ", ";
    s += tpm > 0 ? thousands(tpm) + " TPM" : "no token limit";
    return s;
}

std::string padded(std::string s, std::size_t width) {
    if (s.size() < width)
        s.append(width - s.size(), ' ');
    return s;
}

} // namespace

void print_tiers(std::ostream& os, const std::vector<tier>& tiers) {
    std::size_t name_width = 0;
    std::size_t model_width = 0;
    for (const tier& t : tiers) {
        name_width = std::max(name_width, t.name.size());
        for (const auto& [model, limits] : t.models)
            model_width = std::max(model_width, model.size());
    }
    for (const tier& t : tiers) {
        os << padded(t.name, name_width) << "  ";
        if (!t.description.empty())
            os << t.description << ": ";
        if (t.rpm > 0 || t.tpm > 0 || t.models.empty())
            os << limits_text(t.rpm, t.tpm) << '\n';
        else
            os << "per model (others: the server's limits)\n";
        for (const auto& [model, limits] : t.models)
            os << "    " << padded(model, model_width) << "  "
               << limits_text(limits.rpm, limits.tpm) << '\n';
    }
}

int list_tiers(const tiers_command_options& o, std::ostream& out, std::ostream& err) {
    try {
        std::string file_tiers;
        if (!o.config_file.empty()) {
            dispatcher_options scratch;
            file_tiers = apply_config_file(o.config_file, scratch).tiers_file;
        }
        print_tiers(out, known_tiers(file_tiers, o.tiers_file));
    } catch (const std::exception& e) {
        err << "sluice tiers: " << e.what() << '\n';
        return exit_usage;
    }
    return exit_ok;
}

void add_tiers_command(CLI::App& app) {
    auto opts = std::make_shared<tiers_command_options>();
    CLI::App* cmd = app.add_subcommand(
        "tiers", "List the rate-limit tiers that --tier knows, with their limits per model");
    cmd->add_option("--tiers",
                    opts->tiers_file,
                    "Also a TOML file of tiers (format of configs/tiers.toml), as run --tiers");
    cmd->add_option("--config", opts->config_file, "Also the tiers_file of this config file");
    cmd->callback([opts] {
        const int code = list_tiers(*opts, std::cout, std::cerr);
        if (code != exit_ok)
            throw command_exit{code};
    });
}

} // namespace sluice::cli
