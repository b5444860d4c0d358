/**
 * Remaining lifetime of a file session in whole seconds: `mtime + gc_maxlifetime - now`, all in
 * whole seconds as PHP's files handler counts them (php-src ext/session/mod_files.c, ps_files_cleanup_dir
 * compares the integer st_mtime with `now - maxlifetime`). A result <= 0 means PHP already considers the
 * session garbage: it is not migrated, and no EX 0 / negative TTL is ever sent (test/fixtures/cases/BUG-25).
 * @param mtimeSeconds file modification time, seconds since the epoch (fractions ignored)
 * @param gcMaxlifetime session.gc_maxlifetime, seconds
 * @param nowSeconds current time, seconds since the epoch (fractions ignored)
 */
export function remainingTtlSeconds(mtimeSeconds: number, gcMaxlifetime: number, nowSeconds: number): number {
  return Math.floor(mtimeSeconds) + gcMaxlifetime - Math.floor(nowSeconds);
}
