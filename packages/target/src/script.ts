/**
 * The Lua script of apply's guarded write, on its own (no ioredis): worker threads encode calls of it
 * (encode.ts) and the main thread registers and sends it (guarded-write.ts).
 */

/**
 * The guarded write of a group of sessions, atomic in Redis (a Lua script runs alone): for each
 * session, a tombstone wins, then `SET key value PX ttl NX`; when the key exists its type and value
 * come back for the caller to compare. One script call carries many sessions (on a single node or
 * behind Sentinel up to WRITE_GROUP_SESSIONS; in a Redis Cluster those of one hash slot), so Redis
 * runs one script per group instead of one per session: the ordering rule of each session is the
 * same as with one call each, since nothing else runs while the script does.
 *
 * KEYS[1..n] session keys, KEYS[n+1..2n] their tombstones in the same order (each in its session's
 * hash slot: key layout 2); ARGV[1..n] values, ARGV[n+1..2n] TTLs in milliseconds. One EXISTS over
 * every tombstone first: when none exists (the usual case) no session needs its own check.
 * Reply: one entry per session: 1 written, 0 destroyed (tombstone), 2 another type, 3 vanished (the
 * key expired between SET and TYPE), {value, pttl ms} when it exists, or the error of the command
 * that failed for it. Every command after the first EXISTS runs with redis.pcall: an error (OOM, or
 * an ACL rule without GET, TYPE or PTTL) fails only its session and the loop goes on. With
 * redis.call an error would end the script after it had already written the sessions before it
 * (a script is not rolled back: https://redis.io/docs/latest/develop/interact/programmability/eval-intro/),
 * and apply would count none of them written (it said "nothing was written"; an adversarial review
 * found it). The first EXISTS may still fail the whole call: it runs before anything is written.
 */
export const GUARDED_WRITE_LUA = `
local n = #KEYS / 2
local out = {}
local anyTombstone = redis.call('EXISTS', unpack(KEYS, n + 1, 2 * n)) > 0
local function failed(r) return type(r) == 'table' and r.err ~= nil end
for i = 1, n do
  local key = KEYS[i]
  local tomb = anyTombstone and redis.pcall('EXISTS', KEYS[n + i]) or 0
  if failed(tomb) then
    out[i] = tomb
  elseif tomb == 1 then
    out[i] = 0
  else
    local set = redis.pcall('SET', key, ARGV[i], 'PX', ARGV[n + i], 'NX')
    if failed(set) then
      out[i] = set
    elseif set then
      out[i] = 1
    else
      local t = redis.pcall('TYPE', key)
      if failed(t) then out[i] = t
      elseif t['ok'] == 'none' then out[i] = 3
      elseif t['ok'] ~= 'string' then out[i] = 2
      else
        local v = redis.pcall('GET', key)
        local ttl = redis.pcall('PTTL', key)
        if failed(v) then out[i] = v
        elseif failed(ttl) then out[i] = ttl
        else out[i] = {v, ttl} end
      end
    end
  end
end
return out
`;
