#include "redis/lease_script.hpp"

#include <openssl/sha.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace sluice::detail {

namespace {

// KEYS[1] the scope's bucket hash, KEYS[2] the members' sorted set.
// ARGV: 1 member, 2 ttl ms, 3 request rate/s, 4 request capacity, 5 token rate/s,
// 6 token capacity, 7 want requests, 8 want tokens, 9 need requests, 10 need tokens,
// 11 return requests, 12 return tokens, 13 clamp requests ('' none), 14 clamp tokens,
// 15 hold ms, 16 start full (1/0), 17 leave (1/0).
// Returns {granted requests, granted tokens, members, wait ms (a grant: when it may be used;
// none: when to ask again), hold left ms}, numbers as
// strings (Redis would truncate a Lua number to an integer).
constexpr const char* source = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[2]) * 1000
local leave = ARGV[17] == '1'
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if leave then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
end
redis.call('PEXPIRE', KEYS[2], math.floor(ttl / 1000) + 60000)
local n = redis.call('ZCARD', KEYS[2])
if n < 1 then n = 1 end
local rr, cr = tonumber(ARGV[3]), tonumber(ARGV[4])
local rt, ct = tonumber(ARGV[5]), tonumber(ARGV[6])
local s = redis.call('HMGET', KEYS[1], 'rl', 'tl', 'ts', 'hold')
local start = 0
if ARGV[16] == '1' then start = 1 end
local rl = tonumber(s[1]) or cr * start
local tl = tonumber(s[2]) or ct * start
local ts = tonumber(s[3]) or now
local hold = tonumber(s[4]) or 0
if now > ts then
  local dt = (now - ts) / 1000000
  rl = math.min(cr, rl + rr * dt)
  tl = math.min(ct, tl + rt * dt)
  ts = now
end
rl = math.min(cr, rl + tonumber(ARGV[11]))
tl = math.min(ct, tl + tonumber(ARGV[12]))
if ARGV[13] ~= '' then rl = math.min(rl, tonumber(ARGV[13])) end
if ARGV[14] ~= '' then tl = math.min(tl, tonumber(ARGV[14])) end
local h = tonumber(ARGV[15])
if h > 0 and now + h * 1000 > hold then
  hold = now + h * 1000
  rl = math.min(rl, 0)
  tl = math.min(tl, 0)
  ts = hold
end
-- A grant is a reservation: the buckets may go below zero by up to one capacity, and the
-- grant may be used once they would have refilled to zero (the wait returned). Members are
-- served in the order they call, and no call is wasted on a refusal.
local gr, gt, wait = 0, 0, 0
if now < hold then
  wait = (hold - now) / 1000
elseif not leave then
  local wr, wt = tonumber(ARGV[7]), tonumber(ARGV[8])
  local nr, nt = tonumber(ARGV[9]), tonumber(ARGV[10])
  local okr = rr <= 0 or rl + cr >= nr
  local okt = rt <= 0 or tl + ct >= nt
  if okr and okt and (wr > 0 or wt > 0) then
    local w = 0
    if rr > 0 then
      gr = math.max(nr, math.min(wr, rl + cr))
      rl = rl - gr
      if rl < 0 then w = math.max(w, -rl / rr) end
    end
    if rt > 0 then
      gt = math.max(nt, math.min(wt, tl + ct))
      tl = tl - gt
      if tl < 0 then w = math.max(w, -tl / rt) end
    end
    wait = w * 1000
  else
    local w = 0
    if rr > 0 and rl + cr < nr then w = math.max(w, (nr - cr - rl) / rr) end
    if rt > 0 and tl + ct < nt then w = math.max(w, (nt - ct - tl) / rt) end
    wait = w * 1000
  end
end
redis.call('HSET', KEYS[1], 'rl', tostring(rl), 'tl', tostring(tl), 'ts', tostring(ts), 'hold', tostring(hold))
local keep = 60000
if hold > now then keep = keep + math.ceil((hold - now) / 1000) end
redis.call('PEXPIRE', KEYS[1], keep)
local left = 0
if hold > now then left = (hold - now) / 1000 end
return {tostring(gr), tostring(gt), n, tostring(wait), tostring(left)}
)lua";

std::string number(double v) {
    if (!std::isfinite(v))
        v = 0;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", v);
    return buf;
}

bool to_double(const resp_value& v, double& out) {
    if (v.type == resp_value::kind::integer) {
        out = static_cast<double>(v.number);
        return true;
    }
    if (v.type != resp_value::kind::bulk && v.type != resp_value::kind::simple)
        return false;
    char* end = nullptr;
    out = std::strtod(v.text.c_str(), &end);
    return end != v.text.c_str() && *end == '\0' && std::isfinite(out);
}

} // namespace

const std::string& lease_script() {
    static const std::string s = source;
    return s;
}

const std::string& lease_script_sha1() {
    static const std::string hex = [] {
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1(reinterpret_cast<const unsigned char*>(lease_script().data()),
             lease_script().size(),
             md);
        std::string h;
        char buf[3];
        for (unsigned char b : md) {
            std::snprintf(buf, sizeof buf, "%02x", b);
            h += buf;
        }
        return h;
    }();
    return hex;
}

// One hash tag per budget: a Redis Cluster keeps a budget's keys on one node, as a script
// touching several keys requires.
std::string members_key(const std::string& budget) {
    return "sluice:{" + budget + "}:members";
}

std::string bucket_key(const std::string& budget, const std::string& scope) {
    return "sluice:{" + budget + "}:scope:" + scope;
}

std::vector<std::string> lease_command(const std::string& budget,
                                       const std::string& scope,
                                       const std::string& member,
                                       const lease_call& c,
                                       std::chrono::milliseconds ttl,
                                       bool with_source) {
    auto clamp = [](const std::optional<double>& v) {
        return v ? number(*v) : std::string();
    };
    return {with_source ? "EVAL" : "EVALSHA",
            with_source ? lease_script() : lease_script_sha1(),
            "2",
            bucket_key(budget, scope),
            members_key(budget),
            member,
            std::to_string(ttl.count()),
            number(c.request_rate),
            number(c.request_capacity),
            number(c.token_rate),
            number(c.token_capacity),
            number(c.want_requests),
            number(c.want_tokens),
            number(c.need_requests),
            number(c.need_tokens),
            number(c.return_requests),
            number(c.return_tokens),
            clamp(c.clamp_requests),
            clamp(c.clamp_tokens),
            std::to_string(c.hold.count()),
            c.start_full ? "1" : "0",
            c.leave ? "1" : "0"};
}

bool parse_lease_reply(const resp_value& v, lease_reply& out) {
    if (v.type != resp_value::kind::array || v.items.size() != 5)
        return false;
    double members = 0, wait = 0, held = 0;
    if (!to_double(v.items[0], out.granted_requests) ||
        !to_double(v.items[1], out.granted_tokens) || !to_double(v.items[2], members) ||
        !to_double(v.items[3], wait) || !to_double(v.items[4], held))
        return false;
    out.members = members >= 1 ? static_cast<std::uint64_t>(members) : 1;
    out.wait = std::chrono::milliseconds(static_cast<long long>(std::ceil(std::max(0.0, wait))));
    out.held = std::chrono::milliseconds(static_cast<long long>(std::ceil(std::max(0.0, held))));
    return true;
}

} // namespace sluice::detail
