/**
 * `rollback`: the way back from encrypted Redis, in one of two forms (docs/rollback.md).
 *
 * - To files: writes sessions from Redis back as plaintext files in the `files` handler's layout
 *   (php-src ext/session/mod_files.c: `<dir>/<c1>/.../<cN>/sess_<id>` for a `N;` depth, mode from the
 *   save_path's MODE field or 0600), with an mtime that makes PHP's GC age them as Redis would have
 *   (mtime = now + remaining TTL - gc_maxlifetime). Key names are a keyed hash of the session ID, so
 *   the ID cannot be recovered from Redis: rollback writes only sessions whose IDs it is given (the
 *   `sess_<id>` names of a files directory, normally the original one before purge). Sessions that
 *   exist only in Redis (created after the cutover) are counted, not written: those users log in again.
 * - Remove keys: deletes the migrated envelopes (only values that open with the key, each with a Lua
 *   compare-and-delete), so PHP back on the files handler never sees them. Users whose session exists
 *   only in Redis are logged out.
 */
import {
  type Stats,
  chownSync,
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { ChainableCommander } from 'ioredis';
import type { EnvelopeCodec } from '@session-migrate/envelope';
import {
  UserFacingError,
  describeFsError,
  stoppedRun,
  fileMtimeForRedisCopy,
  isDestroyedAfterFile,
  addCounts,
  isFileNewerThanRedis,
  isSameFileVersion,
  isTtlAboveGcMaxlifetime,
  lstatOrNull,
  lockFd,
  redactSessionPath,
  ttlAboveGcMaxlifetimeMessage,
  writeFileAtomic,
} from '@session-migrate/common';
import { SESSION_ID_PATTERN } from '@session-migrate/sources';
import { classifyKeyName, tombstoneKeyFor } from '@session-migrate/envelope';
import { classifiedLine, keyNameForDisplay, mayHaveRun, scanPatternForPrefix, type RedisConnection } from '@session-migrate/redis';

/** Where and how rollback writes files: a parsed `files` save_path. */
export interface RollbackFilesLayout {
  /** Absolute base directory (must exist, not a symlink). */
  dir: string;
  /** Directory levels, one per leading character of the session ID (save_path `N;`). */
  depth: number;
  /** File mode (save_path `N;MODE;` field, default 0600), set exactly (no umask). */
  mode: number;
}

export type RollbackFileOutcome =
  /** Written (created or replaced with the Redis copy). */
  | 'written'
  /** The file already holds exactly the Redis copy. */
  | 'unchanged'
  /** The file was written after the Redis copy (its mtime is later): kept, never overwritten. */
  | 'newer-file-kept'
  /**
   * A PHP request held the file's lock (PHP already serves the session from the files handler, from
   * the file as it was): left to PHP, the Redis copy not written back. Counted as a failure: that
   * user's updates made in Redis are not in the file, and a re-run finds the file newer.
   */
  | 'held-by-php'
  /** No key in Redis for this ID (expired, never migrated): any file is left as it is. */
  | 'not-in-redis'
  /** The session was destroyed through the handler (tombstone) after the file's last write: the stale file is removed. */
  | 'destroyed-file-removed'
  /** The key holds something that does not open with the key, or a file could not be written. */
  | 'failed';

export interface RollbackToFilesReport {
  dryRun: boolean;
  counts: Record<RollbackFileOutcome, number>;
  /** Session IDs looked up (from the ID listing). */
  idsChecked: number;
  /** Sessions under the prefix in Redis (tombstones not counted). */
  keysInRedis: number;
  /** Keys in Redis whose session ID was not in the listing: cannot be written back (those users log in again). */
  keysWithoutKnownId: number;
  /** Problems by key name and file (session ID shortened), at most 100. */
  failures: Array<{ key: string; file: string; reason: string }>;
}

export interface RollbackToFilesOptions {
  /** The target, on any topology. */
  client: RedisConnection;
  codec: EnvelopeCodec;
  prefix: string;
  layout: RollbackFilesLayout;
  /** Session IDs to restore (e.g. the `sess_<id>` names of the original directory). */
  ids: Iterable<string>;
  /** session.gc_maxlifetime, seconds: the file mtime is now + TTL - gc_maxlifetime. */
  gcMaxlifetime: number;
  dryRun: boolean;
  /** Owner for new files and directories (root only): default the base directory's uid/gid. */
  owner?: { uid: number; gid: number };
  /** Milliseconds since the epoch (tests pin it). */
  nowMs?: number;
}

/** Path of a session file for an ID under a `files` layout (mod_files.c ps_files_path_create). */
export function sessionFilePath(layout: Pick<RollbackFilesLayout, 'dir' | 'depth'>, id: string): string {
  const parts = [layout.dir];
  for (let i = 0; i < layout.depth; i++) parts.push(id[i]!);
  parts.push(`sess_${id}`);
  return join(...parts);
}

/**
 * Makes sure the directory levels for an ID exist and are real directories (never symlinks),
 * creating missing ones (mode of the base directory, same owner).
 * @throws UserFacingError for a symlink or non-directory in the way.
 */
function ensureLevels(layout: RollbackFilesLayout, id: string, owner: { uid: number; gid: number } | undefined, dirMode: number): string {
  let d = layout.dir;
  for (let i = 0; i < layout.depth; i++) {
    d = join(d, id[i]!);
    let st;
    try {
      st = lstatSync(d);
    } catch {
      mkdirSync(d, { mode: dirMode });
      if (owner !== undefined) chownSync(d, owner.uid, owner.gid);
      continue;
    }
    if (!st.isDirectory())
      throw new UserFacingError(`${d} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; refusing to write through it`);
  }
  return d;
}

/** An existing session file, read through `fd` (open until closed by the caller). */
interface ExistingFile {
  fd: number;
  st: Stats;
  data: Buffer;
  /** `fd` is open for writing too (opened to be locked, and this user may write the file). */
  writable: boolean;
}

/**
 * Opens and reads an existing session file without following a symlink (O_NOFOLLOW) or blocking on
 * a FIFO (O_NONBLOCK). With `lock`, opens it for reading and writing (read only if this user may not
 * write it) and takes an exclusive flock on it first (lockFd), the lock PHP's files handler takes
 * for a request (php-src ext/session/mod_files.c, ps_files_open), and reads it under that lock:
 * 'held' while a PHP request has it open. The caller closes `fd` (which releases the lock).
 * undefined when absent.
 */
function openExisting(path: string, lock: boolean): ExistingFile | 'not-a-file' | 'held' | undefined {
  const flags = constants.O_NOFOLLOW | constants.O_NONBLOCK;
  let fd: number;
  let writable = lock;
  try {
    try {
      fd = openSync(path, flags | (lock ? constants.O_RDWR : constants.O_RDONLY));
    } catch (err) {
      if (!lock || (err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
      writable = false;
      fd = openSync(path, flags | constants.O_RDONLY);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP' || code === 'ENXIO') return 'not-a-file';
    throw err;
  }
  try {
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      return 'not-a-file';
    }
    // Without flock(1) ('unavailable') the checks before the write are all there is.
    if (lock && lockFd(fd, 'exclusive') === 'held') {
      closeSync(fd);
      return 'held';
    }
    const st = fstatSync(fd);
    return { fd, st, data: readFileSync(fd), writable };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Writes `data` into an existing session file in place, through its locked `fd`, as PHP's files
 * handler writes (mod_files.c ps_files_write: ftruncate, then write at offset 0), with mtime
 * `mtimeMs`, then fsync. In place, not renamed over: a PHP request that opened the file meanwhile
 * and waits for the lock gets it on this same file and reads what was written here; after a rename
 * it would get the old, unlinked file and its write would be lost. false (nothing written) when the
 * file was replaced, or changed by a writer that ignored the lock, since it was read.
 */
function writeInPlace(path: string, file: ExistingFile, data: Buffer, mtimeMs: number): boolean {
  if (!isSameFileVersion(lstatOrNull(path), file.st) || !isSameFileVersion(fstatSync(file.fd), file.st)) return false;
  ftruncateSync(file.fd, 0);
  for (let at = 0; at < data.length;) at += writeSync(file.fd, data, at, data.length - at, at);
  futimesSync(file.fd, Date.now() / 1000, mtimeMs / 1000);
  fsyncSync(file.fd);
  return true;
}

/** Reads an existing session file without following a symlink, and closes it; undefined when absent. */
function existingFile(path: string): { data: Buffer; mtimeMs: number } | 'not-a-file' | undefined {
  const file = openExisting(path, false);
  if (file === undefined || file === 'not-a-file') return file;
  if (file === 'held') return undefined; // never without a lock asked for
  closeSync(file.fd);
  return { data: file.data, mtimeMs: file.st.mtimeMs };
}

/**
 * Test hooks: `beforeReplace` runs after a file's check, with its lock held, just before it is
 * replaced or removed (a test writes to it there, as a PHP request racing rollback would).
 */
export const rollbackTestHooks: { beforeReplace?: (path: string) => void } = {};

/**
 * Puts the Redis copy of a session in place of the file at `path` without losing a write of PHP's
 * files handler that races it: an existing file is checked again under an exclusive flock (PHP
 * takes the same lock for a request: mod_files.c ps_files_open) and written in place under that
 * lock (writeInPlace), after a check that it is still the same inode, size, mtime and ctime (all
 * there is where flock(1) is missing); a PHP request waiting for the lock then reads the Redis copy.
 * A file this user may not write (but whose directory it may) is replaced by the atomic rename of
 * writeFileAtomic, with the same check just before. A missing file is created only if the name is
 * still free (link(2)). A file PHP holds ('held-by-php'), changed, created or removed meanwhile
 * ('newer-file-kept') is kept as PHP left it; a re-run sees it as newer.
 * @throws what writeFileAtomic throws, but ECHANGED and EEXIST
 */
function replaceFile(
  path: string,
  data: Buffer,
  write: { mode: number; owner: { uid: number; gid: number } | undefined; mtimeMs: number },
): 'written' | 'unchanged' | 'newer-file-kept' | 'held-by-php' {
  const file = openExisting(path, true);
  if (file === 'not-a-file') throw new UserFacingError('a symbolic link or non-file is in the way; refused');
  if (file === 'held') return 'held-by-php';
  try {
    if (file !== undefined) {
      if (file.data.equals(data)) return 'unchanged';
      if (isFileNewerThanRedis(file.st.mtimeMs, write.mtimeMs)) return 'newer-file-kept';
    }
    rollbackTestHooks.beforeReplace?.(path);
    if (file?.writable === true) return writeInPlace(path, file, data, write.mtimeMs) ? 'written' : 'newer-file-kept';
    // The one atomic write: its temporary `.sess_<id>.<random>.tmp` is never taken for a session
    // by PHP's GC (mod_files.c ps_files_cleanup_dir only looks at names starting `sess_`).
    writeFileAtomic(path, data, file === undefined ? { ...write, exclusive: true } : { ...write, unchangedSince: file.st });
    return 'written';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ECHANGED' || code === 'EEXIST') return 'newer-file-kept';
    throw err;
  } finally {
    if (file !== undefined) closeSync(file.fd);
  }
}

/**
 * Removes the stale file of a destroyed session, if under its exclusive flock it is still a file
 * `stale(mtimeMs)` says is older than the destruction, and is still that file (inode, size, mtime,
 * ctime) just before the unlink. It is emptied in place first (when this user may write it): a PHP
 * request that opened it meanwhile and waits for the lock then finds an empty session, as after
 * session_destroy(), not the destroyed one. 'kept': PHP wrote, replaced or removed it meanwhile;
 * 'held': a PHP request holds its lock (serving the destroyed session from it).
 */
function removeIfStillOlder(path: string, stale: (mtimeMs: number) => boolean): 'removed' | 'kept' | 'held' {
  const file = openExisting(path, true);
  if (file === 'held') return 'held';
  if (file === undefined || file === 'not-a-file') return 'kept';
  try {
    if (!stale(file.st.mtimeMs)) return 'kept';
    rollbackTestHooks.beforeReplace?.(path);
    if (!isSameFileVersion(lstatOrNull(path), file.st) || !isSameFileVersion(fstatSync(file.fd), file.st)) return 'kept';
    if (file.writable) ftruncateSync(file.fd, 0);
    unlinkSync(path);
    return 'removed';
  } finally {
    closeSync(file.fd);
  }
}

/**
 * Writes the Redis sessions of the given IDs back as plaintext files (see the module comment).
 * Never overwrites a file written after the Redis copy, nor one PHP holds or writes meanwhile
 * (replaceFile: its exclusive flock is held from the check until after the rename); never follows a
 * symlink.
 * @throws UserFacingError when the base directory is missing or a symlink, or a TTL read is longer
 *   than gc_maxlifetime (isTtlAboveGcMaxlifetime; nothing of that batch of 500 IDs is written);
 *   Redis errors propagate.
 */
export async function rollbackToFiles(options: RollbackToFilesOptions): Promise<RollbackToFilesReport> {
  const many = await rollbackToFilesMany({ ...options, targets: [{ layout: options.layout, ids: options.ids }] });
  return { ...many.targets[0]!, keysInRedis: many.keysInRedis, keysWithoutKnownId: many.keysWithoutKnownId };
}

/** One directory rollback writes to, and the session IDs to restore there. */
export interface RollbackTarget {
  layout: RollbackFilesLayout;
  ids: Iterable<string>;
}

/** rollbackToFilesMany's result: each directory's report, and the Redis counts over all of them. */
export interface RollbackManyReport {
  targets: RollbackToFilesReport[];
  /** Sessions under the prefix in Redis (tombstones and locks not counted). */
  keysInRedis: number;
  /** Keys whose session ID no directory listed: cannot be written back (those users log in again). */
  keysWithoutKnownId: number;
}

/**
 * rollbackToFiles for several directories (the files sources of a plan, each restored to its own
 * save_path with the IDs it lists): every directory is handled as rollbackToFiles handles one, and a
 * key counts as without a known ID only when no directory listed its ID. A session ID listed by
 * several directories is written to each of them.
 * @throws UserFacingError when a base directory is missing or a symlink (before anything is written
 *   to a later one); Redis errors propagate.
 */
export async function rollbackToFilesMany(
  options: Omit<RollbackToFilesOptions, 'layout' | 'ids'> & { targets: RollbackTarget[] },
): Promise<RollbackManyReport> {
  const found = new Set<string>();
  for (const t of options.targets) checkBaseDir(t.layout);
  const targets: RollbackToFilesReport[] = [];
  // What is in Redis but was not in any listing: counted (key names only).
  let keysInRedis = 0;
  let keysWithoutKnownId = 0;
  const prefixBytes = Buffer.from(options.prefix);
  // Files written or removed so far in every directory, the one being restored included (dry run: none).
  const changed = (): number =>
    options.dryRun ? 0 : targets.reduce((n, t) => n + t.counts.written + t.counts['destroyed-file-removed'], 0);
  try {
    await checkScanAllowed(options.client, options.prefix);
    for (const t of options.targets) {
      const report = emptyRollbackReport(options.dryRun);
      targets.push(report); // counted by changed() while it is restored
      await restoreTarget({ ...options, layout: t.layout, ids: t.ids }, found, report, changed);
    }
    for await (const keys of options.client.scan(options.prefix)) {
      for (const k of keys) {
        const kind = classifyKeyName(prefixBytes, k).kind;
        if (kind === 'tombstone' || kind === 'lock') continue;
        keysInRedis++;
        if (!found.has(keyNameForDisplay(k))) keysWithoutKnownId++;
      }
    }
  } catch (err) {
    // A directory's restore may have stopped midway: its report is in `targets` from its start, so
    // the files it wrote before the failure are counted.
    // The `--json` document's counts: every directory's so far, summed by outcome.
    const counts = targets.reduce<Record<string, number>>((sum, t) => addCounts(sum, t.counts), {});
    throw rollbackStopped(options.client, err, { count: changed(), what: 'file(s) written or removed', counts }, false);
  }
  for (const t of targets) {
    t.keysInRedis = keysInRedis;
    t.keysWithoutKnownId = keysWithoutKnownId;
  }
  return { targets, keysInRedis, keysWithoutKnownId };
}

/**
 * SCAN allowed by the user's ACL rule, checked before anything is written: one `SCAN 0 MATCH
 * <prefix>* COUNT 1` per master (a few keys looked at, whatever the database holds). The keys no
 * listed ID names are counted with SCAN after the files are written; without this check a rule
 * lacking +scan stopped rollback there, its files written (exit 1).
 * @throws the Redis error (NOPERM) as the client raises it; the caller words it (rollbackStopped)
 */
async function checkScanAllowed(client: RedisConnection, prefix: string): Promise<void> {
  for (const m of await client.masters()) await m.scanBuffer('0', 'MATCH', scanPatternForPrefix(prefix), 'COUNT', 1);
}

/**
 * The directory rollback writes to must exist and be a real directory (not a symlink): rollback
 * creates only the hash levels below it (with its owner and mode).
 * @returns its lstat. @throws UserFacingError when the base directory is missing, a symlink or not a directory.
 */
export function checkBaseDir(layout: RollbackFilesLayout): Stats {
  let base: Stats;
  try {
    base = lstatSync(layout.dir);
  } catch (err) {
    throw new UserFacingError(`rollback directory ${layout.dir}: ${describeFsError(err)} (create it with the owner and mode PHP uses)`);
  }
  if (!base.isDirectory())
    throw new UserFacingError(
      `rollback directory ${layout.dir}: ${base.isSymbolicLink() ? 'is a symbolic link; give the real directory' : 'not a directory'}`,
    );
  return base;
}

/**
 * The file of a session with no key in Redis: removed when the session was destroyed through the
 * handler after the file was last written (its tombstone is newer: the file would bring the logged-out
 * session back), else left (`not-in-redis`: expired there, or never migrated).
 * @param tombPttl the tombstone's PTTL reply (ms; negative or not a number: none)
 */
function withoutKey(
  path: string,
  tombPttl: unknown,
  o: { gcMaxlifetime: number; now: number; dryRun: boolean },
): 'destroyed-file-removed' | 'not-in-redis' | 'newer-file-kept' | 'held-by-php' {
  const file = existingFile(path);
  if (typeof tombPttl !== 'number' || file === undefined || file === 'not-a-file') return 'not-in-redis';
  if (!isDestroyedAfterFile(tombPttl, file.mtimeMs, o.gcMaxlifetime, o.now)) return 'not-in-redis';
  if (o.dryRun) return 'destroyed-file-removed';
  const removed = removeIfStillOlder(path, (mtimeMs) => isDestroyedAfterFile(tombPttl, mtimeMs, o.gcMaxlifetime, o.now));
  // Else PHP wrote it meanwhile (a session in use again, kept), or holds it now.
  return removed === 'removed' ? 'destroyed-file-removed' : removed === 'held' ? 'held-by-php' : 'newer-file-kept';
}

/**
 * Puts a session's Redis copy (`plaintext`, with the key's PTTL reply `pttl`) in its file unless the
 * file already holds it or is newer; the mtime follows the session-lifecycle policy
 * (packages/common/src/lifecycle.ts: PHP's GC ages the file as Redis would have expired the session).
 * @returns the outcome, or `{ failed }` with the reason for a symlink or non-file in the way
 */
function fromRedisCopy(
  path: string,
  id: string,
  plaintext: Buffer,
  pttl: unknown,
  o: Pick<RollbackToFilesOptions, 'layout' | 'gcMaxlifetime' | 'dryRun'> & {
    now: number;
    owner: { uid: number; gid: number } | undefined;
    dirMode: number;
  },
): 'written' | 'unchanged' | 'newer-file-kept' | 'held-by-php' | { failed: string } {
  const mtimeMs = fileMtimeForRedisCopy(typeof pttl === 'number' ? pttl : -1, o.gcMaxlifetime, o.now);
  const file = existingFile(path);
  if (file === 'not-a-file') return { failed: 'a symbolic link or non-file is in the way; refused' };
  if (file !== undefined && file.data.equals(plaintext)) return 'unchanged';
  if (file !== undefined && isFileNewerThanRedis(file.mtimeMs, mtimeMs)) return 'newer-file-kept';
  if (o.dryRun) return 'written';
  ensureLevels(o.layout, id, o.owner, o.dirMode);
  return replaceFile(path, plaintext, { mode: o.layout.mode, owner: o.owner, mtimeMs });
}

function emptyRollbackReport(dryRun: boolean): RollbackToFilesReport {
  return {
    dryRun,
    counts: { written: 0, unchanged: 0, 'newer-file-kept': 0, 'held-by-php': 0, 'not-in-redis': 0, 'destroyed-file-removed': 0, failed: 0 },
    idsChecked: 0,
    keysInRedis: 0,
    keysWithoutKnownId: 0,
    failures: [],
  };
}

/**
 * The key, value, PTTL and tombstone PTTL of each session ID, in one pipeline per hash slot group
 * (RedisConnection.runGrouped); `err` is the value's error reply, if any.
 */
async function readSessions(
  client: RedisConnection,
  codec: EnvelopeCodec,
  prefix: string,
  ids: readonly string[],
): Promise<Array<{ key: string; err: Error | null; value: unknown; pttl: unknown; tombPttl: unknown }>> {
  const keys = ids.map((id) => codec.keyName(prefix, id));
  const replies = await client.runGrouped(
    keys.map((k) => ({
      key: k,
      build: (pipe: ChainableCommander) => {
        pipe.getBuffer(k);
        pipe.pttl(k);
        pipe.pttl(tombstoneKeyFor(prefix, k));
      },
    })),
  );
  return keys.map((key, i) => {
    const [err, value] = replies[i]?.[0] ?? [new Error('no reply'), null];
    const [, pttl] = replies[i]?.[1] ?? [null, -2];
    const [, tombPttl] = replies[i]?.[2] ?? [null, -2];
    return { key, err: err ?? null, value, pttl, tombPttl };
  });
}

/**
 * Restores the listed IDs into one directory, counting in `report`; adds the key names found in Redis
 * to `found`. `changed`: files written or removed so far by the whole rollback (this directory too).
 */
async function restoreTarget(
  options: RollbackToFilesOptions,
  found: Set<string>,
  report: RollbackToFilesReport,
  changed: () => number,
): Promise<void> {
  const base = checkBaseDir(options.layout);
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const owner = options.owner ?? (asRoot ? { uid: base.uid, gid: base.gid } : undefined);
  const dirMode = base.mode & 0o777;
  const handle = async (ids: string[]) => {
    const read = await readSessions(options.client, options.codec, options.prefix, ids);
    const now = options.nowMs ?? Date.now();
    refuseTtlsAboveGcMaxlifetime(read, options.gcMaxlifetime, changed());
    ids.forEach((id, i) => restoreOne(id, read[i]!, { ...options, now, owner, dirMode }, report, found));
  };
  let batch: string[] = [];
  for (const id of options.ids) {
    if (!SESSION_ID_PATTERN.test(id)) continue;
    batch.push(id);
    if (batch.length >= 500) {
      await handle(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await handle(batch);
}

/**
 * Write times inferred with a too small gc_maxlifetime are late: an older Redis copy would overwrite
 * a newer file (the lifecycle rule, isTtlAboveGcMaxlifetime). Refused for the whole batch before any
 * of it is written.
 * @param changed files written or removed so far by this rollback (earlier batches and directories)
 * @throws UserFacingError (exit 1 when files were written by earlier batches, else 2)
 */
function refuseTtlsAboveGcMaxlifetime(
  read: ReadonlyArray<{ key: string; pttl: unknown; tombPttl: unknown }>,
  gcMaxlifetime: number,
  changed: number,
): void {
  for (const { key, pttl, tombPttl } of read) {
    const over = [pttl, tombPttl].find((t) => typeof t === 'number' && isTtlAboveGcMaxlifetime(t, gcMaxlifetime));
    if (over === undefined) continue;
    const written = changed > 0;
    throw new UserFacingError(
      `rollback refused: ${ttlAboveGcMaxlifetimeMessage(key, over as number, gcMaxlifetime)}; ${written ? 'files written so far hold the Redis copy; re-run with the right value' : 'nothing was written'}`,
      written ? 1 : 2,
    );
  }
}

/**
 * Restores one session ID from what Redis holds for it (readSessions) and counts the outcome in
 * `report`; a failure of this session is recorded (at most 100 named), never thrown.
 * @throws the Redis error itself when it is permanent, other than WRONGTYPE (the caller words it
 *   with the files changed so far: rollbackStopped)
 */
function restoreOne(
  id: string,
  read: { key: string; err: Error | null; value: unknown; pttl: unknown; tombPttl: unknown },
  options: RollbackToFilesOptions & { now: number; owner: { uid: number; gid: number } | undefined; dirMode: number },
  report: RollbackToFilesReport,
  found: Set<string>,
): void {
  const { key, err, value, pttl, tombPttl } = read;
  const path = sessionFilePath(options.layout, id);
  const fail = (reason: string) => {
    report.counts.failed++;
    if (report.failures.length < 100) report.failures.push({ key, file: redactSessionPath(path), reason });
  };
  report.idsChecked++;
  if (err) {
    const c = options.client.classify(err);
    if (c.kind === 'permanent' && c.code !== 'WRONGTYPE') throw err;
    return fail(c.message.slice(0, 120));
  }
  try {
    if (value === null) {
      report.counts[withoutKey(path, tombPttl, options)]++;
      return;
    }
    found.add(key);
    const opened = options.codec.open(key, value as Buffer);
    if (!opened.ok) return fail(`value does not open (${opened.reason}); left alone`);
    const outcome = fromRedisCopy(path, id, opened.plaintext, pttl, options);
    if (typeof outcome === 'object') return fail(outcome.failed);
    report.counts[outcome]++;
  } catch (e) {
    if (e instanceof UserFacingError) return fail(e.message);
    fail(describeFsError(e));
  }
}

export interface RemoveKeysReport {
  dryRun: boolean;
  /** Envelopes that opened with the key and were deleted (or would be). */
  removed: number;
  /** Keys left: their value does not open with the key (not ours), or changed meanwhile. */
  leftNotOpening: number;
  leftChanged: number;
  /**
   * Keys gone by the compare-and-delete (expired, or deleted by PHP's session_destroy(), meanwhile):
   * not left, and not counted removed. One the call's second send (after a reconnect) finds gone was
   * deleted by its first: counted removed.
   */
  goneMeanwhile: number;
  /** Tombstones (left to expire: harmless). */
  tombstones: number;
  /**
   * Of `leftNotOpening`: the values sealed under a key ID the key given does not hold (`unknown-key-id`),
   * by that key ID (from their headers: public identifiers, docs/keys.md); absent when there is none.
   */
  leftKeyIds?: Record<string, number>;
}

/** DEL only if the value is still the one checked (KEYS[1], ARGV[1]); 1 deleted, 0 not (another value), -1 the key is gone. */
const DELETE_IF_SAME_LUA = `
local v = redis.call('GET', KEYS[1])
if v == false then return -1 end
if v == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Removes the migrated keys under a prefix: every value that opens with the key ring is deleted with
 * a compare-and-delete (a session the handler rewrites meanwhile is left and counted). Values that
 * do not open, other types and tombstones are left alone.
 */
export async function rollbackRemoveKeys(options: {
  client: RedisConnection;
  codec: EnvelopeCodec;
  prefix: string;
  dryRun: boolean;
}): Promise<RemoveKeysReport> {
  const { client, codec, prefix, dryRun } = options;
  const report: RemoveKeysReport = { dryRun, removed: 0, leftNotOpening: 0, leftChanged: 0, goneMeanwhile: 0, tombstones: 0 };
  const prefixBytes = Buffer.from(prefix);
  const inFlight = { eval: false };
  try {
    await removeKeysUnderPrefix(client, codec, prefixBytes, prefix, dryRun, report, inFlight);
  } catch (err) {
    // A dry run deletes nothing: its `removed` counts what would be.
    const { dryRun: _dryRun, leftKeyIds: _leftKeyIds, ...counts } = report;
    throw rollbackStopped(client, err, { count: dryRun ? 0 : report.removed, what: 'key(s) deleted', counts }, inFlight.eval);
  }
  return report;
}

/**
 * rollbackRemoveKeys's scan and compare-and-delete, counting in `report` as it goes. A
 * compare-and-delete sent again by ioredis after its connection closed (RedisConnection.closedSince)
 * may have deleted the key at its first send: a key the second finds gone is counted `removed` (this
 * call's own delete, as purge counts it), and an error reply to the second says nothing of the first,
 * so `inFlight.eval` is set then, as when a compare-and-delete failed without a reply (mayHaveRun). A
 * stop after either says exit 1, not "nothing changed". test/stopped-part-way.test.ts "--remove-keys:
 * a compare-and-delete whose reply was lost", "--remove-keys: a lost reply, then".
 */
async function removeKeysUnderPrefix(
  client: RedisConnection,
  codec: EnvelopeCodec,
  prefixBytes: Buffer,
  prefix: string,
  dryRun: boolean,
  report: RemoveKeysReport,
  inFlight: { eval: boolean },
): Promise<void> {
  for await (const keys of client.scan(prefix)) {
    const sessions = keys.filter((k) => {
      const kind = classifyKeyName(prefixBytes, k).kind;
      if (kind === 'tombstone') {
        report.tombstones++;
        return false;
      }
      // A lock of the handler: it expires by itself, and is not a session.
      return kind !== 'lock';
    });
    const replies = await client.runGrouped(
      sessions.map((k) => ({
        key: k,
        build: (pipe: ChainableCommander) => {
          pipe.getBuffer(k);
        },
      })),
    );
    for (let i = 0; i < sessions.length; i++) {
      const [err, value] = replies[i]?.[0] ?? [new Error('no reply'), null];
      if (err || value === null) {
        if (err) {
          const c = client.classify(err);
          if (c.kind === 'permanent' && c.code !== 'WRONGTYPE') throw err;
          report.leftNotOpening++;
        }
        continue;
      }
      const k = sessions[i]!;
      const opened = codec.open(k, value as Buffer);
      if (!opened.ok) {
        report.leftNotOpening++;
        if (opened.reason === 'unknown-key-id') {
          const ids = (report.leftKeyIds ??= {});
          ids[opened.keyId!] = (ids[opened.keyId!] ?? 0) + 1;
        }
        continue;
      }
      if (dryRun) {
        report.removed++;
        continue;
      }
      let n: unknown;
      const generation = await client.generationBefore();
      try {
        n = await client.client.eval(DELETE_IF_SAME_LUA, 1, k, value as Buffer);
      } catch (err) {
        // An error reply to its one send: it did not run.
        inFlight.eval ||= mayHaveRun(err) || (await client.closedSince(generation));
        throw err;
      }
      // Gone after a second send: this call's own first send deleted it (as purge counts it:
      // RedisSource.removeIfUnchanged).
      if (n === 1 || (n === -1 && (await client.closedSince(generation)))) report.removed++;
      else if (n === -1) report.goneMeanwhile++;
      else report.leftChanged++;
    }
  }
}

/**
 * The one line that stops a rollback on a Redis error (a command the ACL rule lacks, a lost
 * connection): the classified message with its fix (the command to add and the minimal rule), and
 * (stoppedRun, the one home of the rule) exit 1 with how many files were written or removed, or
 * keys deleted, before it stopped, else exit 2. Re-running is safe: files are replaced only by the
 * Redis copy, keys deleted only if unchanged.
 * @param done files written or removed (`what`: `file(s) written or removed`), or keys deleted, so far (0 in a dry run);
 *   `counts`: the report's counts so far (the `--json` document's, StoppedRunError.report)
 * @param inFlight a key's compare-and-delete was sent and its reply lost (it may have run), or was
 *   sent again after its connection closed (removeKeysUnderPrefix: its first send may have deleted)
 * @returns a UserFacingError (`err` itself when it already is one)
 */
function rollbackStopped(
  client: RedisConnection,
  err: unknown,
  done: { count: number; what: string; counts: Record<string, number> },
  inFlight: boolean,
): UserFacingError {
  if (err instanceof UserFacingError) return err;
  const c = client.classify(err);
  return stoppedRun({
    command: 'rollback',
    reason: classifiedLine(c),
    done: done.count,
    inFlight,
    what: done.what,
    counts: done.counts,
    rerun: 'each change follows what Redis holds; run rollback again to finish (re-running is safe)',
    nothing: 're-running is safe',
  });
}
