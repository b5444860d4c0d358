/**
 * The session-lifecycle policy of session-migrate, in one place: when a session is live or expired,
 * when the copy in Redis is newer than the source's, when a session was destroyed (tombstone), and
 * the times a Redis TTL stands for. apply, purge and rollback (packages/migrate) and verify
 * (packages/verify) judge sessions by these functions only.
 *
 * Layering: these are pure functions of times and TTLs, with no I/O and no dependency, so they live
 * in @session-migrate/common, below every package that uses them. verify imports them from here
 * rather than from migrate, and migrate's steps share them without importing each other's modules.
 *
 * The times behind them:
 * - PHP's files handler expires a session when `mtime + gc_maxlifetime` is past, counted in whole
 *   seconds (php-src ext/session/mod_files.c, ps_files_cleanup_dir compares the integer st_mtime
 *   with `now - maxlifetime`).
 * - The handler (ours, and phpredis's: redis_session.c PS_WRITE_FUNC SETEX) sets TTL = gc_maxlifetime
 *   at every write, so a Redis value was last written at `now + PTTL - gc_maxlifetime`; apply gives
 *   a source copy the remaining lifetime of the file (a plaintext Redis source: its own PTTL). The
 *   larger remaining lifetime is therefore the later write.
 * - The handler's destroy() leaves a tombstone `<prefix>destroyed:{<hash>}` with TTL =
 *   gc_maxlifetime (docs/envelope.md, key layout 2): a session with a tombstone was logged out.
 */

/**
 * Margin (ms) by which a write must postdate another to count as newer: a value `apply` copied from
 * an older version of a file (TTL = whole seconds of mtime + gc_maxlifetime - now, so its inferred
 * write time is below mtime + 1 s) never counts as newer than a later rewrite of that file.
 */
export const NEWER_MARGIN_MS = 1000;

/**
 * Remaining lifetime of a file session in whole seconds: `mtime + gc_maxlifetime - now`, all in
 * whole seconds as PHP's files handler counts them (see above). A result <= 0 means PHP already
 * considers the session garbage: it is not migrated, and no EX 0 / negative TTL is ever sent
 * (test/fixtures/cases/BUG-25).
 * @param mtimeSeconds file modification time, seconds since the epoch (fractions ignored)
 * @param gcMaxlifetime session.gc_maxlifetime, seconds
 * @param nowSeconds current time, seconds since the epoch (fractions ignored)
 */
export function remainingTtlSeconds(mtimeSeconds: number, gcMaxlifetime: number, nowSeconds: number): number {
  return Math.floor(mtimeSeconds) + gcMaxlifetime - Math.floor(nowSeconds);
}

/**
 * Whether a file session is expired for PHP (remainingTtlSeconds <= 0): its GC would delete it and
 * no handler reads it any more.
 * @param mtimeMs the file's mtime, ms since the epoch; nowMs likewise; gcMaxlifetime in seconds
 */
export function isExpired(mtimeMs: number, gcMaxlifetime: number, nowMs: number): boolean {
  return remainingTtlSeconds(mtimeMs / 1000, gcMaxlifetime, nowMs / 1000) <= 0;
}

/**
 * When a Redis value with TTL `pttlMs` was last written, inferred from TTL = gc_maxlifetime at every
 * write: `now + PTTL - gc_maxlifetime`, ms since the epoch. Also the "mtime" of a plaintext phpredis
 * key, and the moment a tombstone was left.
 */
export function lastWriteMs(pttlMs: number, gcMaxlifetime: number, nowMs: number): number {
  return nowMs + pttlMs - gcMaxlifetime * 1000;
}

/**
 * Whether a Redis TTL (a session's or a tombstone's, or a plaintext phpredis key's) is longer than
 * gc_maxlifetime. Neither the handler (TTL = gc_maxlifetime at every write) nor apply (the source's
 * remaining lifetime) ever sets one, so the value was written under a larger session.gc_maxlifetime
 * than the one given: every write time inferred with it (lastWriteMs) is later than the real write
 * by the difference, and an older Redis copy would pass for a newer one (purge would delete a newer
 * file, rollback overwrite one). The commands that infer write times refuse to go on then.
 * @param pttlMs PTTL reply, ms (-1 no TTL, -2 no key: never above)
 * @param gcMaxlifetime seconds
 */
export function isTtlAboveGcMaxlifetime(pttlMs: number, gcMaxlifetime: number): boolean {
  return pttlMs > gcMaxlifetime * 1000;
}

/**
 * The one-line reason a command gives when isTtlAboveGcMaxlifetime: the key name (safe to print),
 * its TTL and the gc_maxlifetime given, and what to give instead (`fix`: apply takes it from the plan).
 */
export function ttlAboveGcMaxlifetimeMessage(
  key: string,
  pttlMs: number,
  gcMaxlifetime: number,
  fix = "give PHP's session.gc_maxlifetime (--gc-maxlifetime, or --plan)",
): string {
  return `${key} has a TTL of ${Math.ceil(pttlMs / 1000)} s, longer than the gc_maxlifetime given (${gcMaxlifetime} s): the sessions were written with a larger session.gc_maxlifetime, and with ${gcMaxlifetime} s an older Redis copy would pass for a newer one; ${fix}`;
}

/**
 * Whether a value already in Redis was written after the source copy was last changed, both times
 * inferred from remaining lifetimes measured at the same moment (apply's `newerInRedis`, verify's
 * `newer`).
 * @param redisPttlMs PTTL of the value in Redis, ms (-1: no TTL, never newer)
 * @param sourceTtlMs remaining lifetime apply computed for the source copy, ms
 */
export function isNewerInRedis(redisPttlMs: number, sourceTtlMs: number): boolean {
  return redisPttlMs >= 0 && redisPttlMs >= sourceTtlMs + NEWER_MARGIN_MS;
}

/**
 * The same rule against a file's mtime (purge's `newer`): the Redis value's inferred last write
 * (lastWriteMs) is at least NEWER_MARGIN_MS after the file's mtime.
 * @param redisPttlMs PTTL of the value in Redis, ms (-1: no TTL, never newer)
 */
export function isRedisNewerThanFile(redisPttlMs: number, fileMtimeMs: number, gcMaxlifetime: number, nowMs: number): boolean {
  return redisPttlMs >= 0 && lastWriteMs(redisPttlMs, gcMaxlifetime, nowMs) >= fileMtimeMs + NEWER_MARGIN_MS;
}

/**
 * The other way round (rollback): a file written more than NEWER_MARGIN_MS after the time the Redis
 * copy stands for (`redisWriteMs`, e.g. fileMtimeForRedisCopy) is newer, and is kept.
 */
export function isFileNewerThanRedis(fileMtimeMs: number, redisWriteMs: number): boolean {
  return fileMtimeMs > redisWriteMs + NEWER_MARGIN_MS;
}

/**
 * Whether a session was destroyed through the handler after its file was last written: its tombstone
 * exists (`tombstonePttlMs` > 0) and was left (lastWriteMs of the tombstone) after the file's mtime.
 * Such a file would bring a logged-out session back.
 */
export function isDestroyedAfterFile(tombstonePttlMs: number, fileMtimeMs: number, gcMaxlifetime: number, nowMs: number): boolean {
  return tombstonePttlMs > 0 && fileMtimeMs < lastWriteMs(tombstonePttlMs, gcMaxlifetime, nowMs);
}

/**
 * The mtime a session file restored from Redis gets (rollback), so that PHP's GC ages it as Redis
 * would have expired it: `now + TTL - gc_maxlifetime`, never in the future. A value without a TTL
 * (`pttlMs` <= 0) counts as written now.
 */
export function fileMtimeForRedisCopy(pttlMs: number, gcMaxlifetime: number, nowMs: number): number {
  const ttlMs = pttlMs > 0 ? pttlMs : gcMaxlifetime * 1000;
  return Math.min(nowMs, lastWriteMs(ttlMs, gcMaxlifetime, nowMs));
}
