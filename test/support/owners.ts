/**
 * Session files of other owners, for the owner rule's tests (test/foreign-owner*.test.ts): PHP's files
 * handler refuses a session file owned by neither root nor the user PHP runs as (php-src
 * ext/session/mod_files.c, ps_files_open), so a test plants such files with chown (root only).
 */
import { chownSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSessionFiles } from './migrate-cli.ts';

/** What a planted file holds by default: a session PHP would take as an administrator's. */
export const PLANTED = 'admin|b:1;';

/**
 * Writes `dir/sess_<id>` owned by `uid` (its group too).
 * @param options.data the file's bytes (default PLANTED); options.ageSeconds its mtime's age (default
 *   60 s); options.mode its permission bits (default 0600)
 * @returns the file's path
 */
export function plant(dir: string, id: string, uid: number, options: { data?: string; ageSeconds?: number; mode?: number } = {}): string {
  const path = join(dir, `sess_${id}`);
  writeFileSync(path, options.data ?? PLANTED, { mode: options.mode ?? 0o600 });
  chownSync(path, uid, uid);
  const t = Date.now() / 1000 - (options.ageSeconds ?? 60);
  utimesSync(path, t, t);
  return path;
}

/** `n` session files owned by `uid` (writeSessionFiles, then chown). @returns their IDs */
export function owned(dir: string, tag: string, n: number, uid: number): string[] {
  const ids = writeSessionFiles(dir, tag, n);
  for (const id of ids) chownSync(join(dir, `sess_${id}`), uid, uid);
  return ids;
}
