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
 * key expired between SET and TYPE), {value, pttl ms} when it exists, or the error of its SET
 * (redis.pcall: an OOM or NOPERM names the sessions it hit).
 */
export const GUARDED_WRITE_LUA = `
local n = #KEYS / 2
local out = {}
local anyTombstone = redis.call('EXISTS', unpack(KEYS, n + 1, 2 * n)) > 0
for i = 1, n do
  local key = KEYS[i]
  if anyTombstone and redis.call('EXISTS', KEYS[n + i]) == 1 then
    out[i] = 0
  else
    local set = redis.pcall('SET', key, ARGV[i], 'PX', ARGV[n + i], 'NX')
    if type(set) == 'table' and set.err then
      out[i] = set
    elseif set then
      out[i] = 1
    else
      local t = redis.call('TYPE', key)['ok']
      if t == 'none' then out[i] = 3
      elseif t ~= 'string' then out[i] = 2
      else out[i] = {redis.call('GET', key), redis.call('PTTL', key)} end
    end
  end
end
return out
`;
