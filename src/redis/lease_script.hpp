#pragma once

// The Lua script that keeps a shared budget's buckets in Redis, and the translation of a
// `lease_call` into its arguments and of its reply into a `lease_reply`. Redis runs a script
// atomically, and the script reads Redis' own clock (TIME): members need no common clock.

#include <sluice/admission/budget_lease.hpp>

#include "redis/resp.hpp"

#include <string>
#include <vector>

namespace sluice::detail {

/// The script's source and its SHA-1 (hex), for EVALSHA.
const std::string& lease_script();
const std::string& lease_script_sha1();

/// The Redis keys of a budget: its members (a sorted set, score: expiry in microseconds of
/// Redis time) and one hash per scope ("" is the endpoint's).
std::string members_key(const std::string& budget);
std::string bucket_key(const std::string& budget, const std::string& scope);

/// `EVALSHA sha 2 KEYS... ARGV...` (or `EVAL script ...` when `with_source`) for `call` by
/// `member`.
std::vector<std::string> lease_command(const std::string& budget,
                                       const std::string& scope,
                                       const std::string& member,
                                       const lease_call& call,
                                       std::chrono::milliseconds ttl,
                                       bool with_source);

/// The script's answer; false when it is not the script's shape.
bool parse_lease_reply(const resp_value& v, lease_reply& out);

} // namespace sluice::detail
