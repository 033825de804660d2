#pragma once

#include <CLI/CLI.hpp>

namespace sluice::cli {

/// The flags that name the server and how to trust it, the same in every command that sends
/// requests (`sluice run`, `sluice bench`): `Options` has `base_url`, `api_key_env`, `ca_file`
/// (optional strings), `insecure`, `headers` (a vector of strings), `api_style`,
/// `api_version` and `proxy` (optional strings) and `no_proxy` (a flag).
template <class Options>
void add_server_flags(CLI::App* cmd, Options& o) {
    cmd->add_option("--base-url",
                    o.base_url,
                    "API base URL (default $OPENAI_BASE_URL or https://api.openai.com/v1)");
    cmd->add_option("--api-key-env",
                    o.api_key_env,
                    "Environment variable holding the API key (default OPENAI_API_KEY)");
    cmd->add_option(
        "--ca-file", o.ca_file, "PEM file of an extra trusted CA (self-signed local servers)");
    cmd->add_flag(
        "--insecure", o.insecure, "Do not verify TLS certificates (loud; local tests only)");
    cmd->add_option("--api-style",
                    o.api_style,
                    "openai (Authorization: Bearer) or azure (api-key header, api-version); "
                    "default: azure for a base URL with /openai/deployments/")
        ->check(CLI::IsMember({"openai", "azure", "auto"}));
    cmd->add_option("--api-version",
                    o.api_version,
                    "Azure OpenAI api-version query parameter (default $OPENAI_API_VERSION or "
                    "the base URL's)");
    cmd->add_option("--proxy",
                    o.proxy,
                    "HTTP proxy http://[user:password@]host[:port] to tunnel through (CONNECT); "
                    "'' for none (default $HTTPS_PROXY / $HTTP_PROXY, minus $NO_PROXY)");
    cmd->add_flag("--no-proxy", o.no_proxy, "Connect directly: ignore proxy settings");
    // One value per --header, so that a positional argument after it stays positional.
    cmd->add_option("-H,--header",
                    o.headers,
                    "Extra request header 'Name: value', sent with every request (repeatable; "
                    "the value is never printed)")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

} // namespace sluice::cli
