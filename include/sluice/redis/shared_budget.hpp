#pragma once

#include <sluice/admission/budget_lease.hpp>
#include <sluice/error.hpp>
#include <sluice/transport/tls_context.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace sluice {

/// A Redis server's address as `redis://[[user]:password@]host[:port][/db]` (`rediss://`:
/// TLS) gives it. User and password are percent-decoded; the password is a secret: only
/// `redacted()` may be shown.
struct redis_url {
    bool tls = false;
    std::string user;     ///< ACL user; empty: the default user
    std::string password; ///< AUTH password; empty: no AUTH
    std::string host;
    std::uint16_t port = 6379;
    unsigned db = 0; ///< SELECT db (0: none sent)

    /// Parses `text`; on failure sets `ec` (errc::invalid_argument-like: std::errc) and
    /// returns an empty value.
    static redis_url parse(const std::string& text, error_code& ec);

    /// The URL with the password replaced by `***`: for logs and error messages.
    std::string redacted() const;
};

/// The URL of `text` with its password hidden, also when `text` does not parse (then only
/// its scheme and host part are kept, or nothing).
std::string redact_redis_url(const std::string& text);

/// Options of a rate-limit budget shared through Redis by several processes (or engine
/// loops): each is a member that leases blocks of the account's limits from buckets kept in
/// Redis (see docs/scale-out.md). Off while `url` is empty.
struct shared_budget_options {
    /// `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS; empty: no
    /// sharing. The password is never logged.
    std::string url;
    /// The budget's name: members naming the same budget share it. Empty: derived from the
    /// base URL and a hash of the API key (`default_budget_key`), so processes of one
    /// account on one endpoint share without saying so.
    std::string key;
    /// When Redis cannot be reached at start: run on 1/N of the limits (N = 1 until members
    /// are seen) instead of failing.
    bool optional = false;
    /// Block size and lease lifetime.
    lease_options lease;
    /// Connecting (TCP, TLS, AUTH, SELECT) and each call: a call that takes longer counts as
    /// Redis lost.
    std::chrono::milliseconds timeout{500};
    /// First wait before reconnecting after Redis was lost; doubles up to 2 s.
    std::chrono::milliseconds reconnect_delay{100};
    /// TLS of `rediss://`: trusted CAs (system store by default), verification.
    tls_options tls;

    bool enabled() const noexcept { return !url.empty(); }

    /// Throws std::invalid_argument (the URL redacted) when `url` does not parse or a
    /// duration is not positive.
    void validate() const;
};

/// `sluice-` and 16 hex digits of SHA-256 over the base URL and the API key: one account on
/// one endpoint, named without the key.
std::string default_budget_key(const std::string& base_url, const std::string& api_key);

/// Connects to `opts.url` as a member would (TLS, AUTH, SELECT, PING) and returns no error,
/// or the error with a message in `why` (never the password). Blocking, with its own event
/// loop: for start-up checks before a run, not for the engine's loop.
error_code probe_redis(const shared_budget_options& opts, std::string& why);

/// A member's view of the shared budget, for metrics.
struct shared_budget_stats {
    bool enabled = false;
    /// 0 joining, 1 sharing, 2 Redis lost: running on 1/N locally.
    int state = 0;
    /// Members registered, as last seen.
    std::uint64_t members = 0;
    /// Calls to Redis (each one round trip), failed calls and losses of Redis.
    std::uint64_t round_trips = 0;
    std::uint64_t failures = 0;
    std::uint64_t fallbacks = 0;
    /// Budget leased and not yet used, over all scopes.
    double requests_held = 0;
    double tokens_held = 0;
};

} // namespace sluice
