/**
 * Session files written by PHP's `files` save handler (php-src ext/session/mod_files.c):
 * `<path>/<c1>/<c2>/.../sess_<id>` with one directory level per character of the ID when the
 * save_path has a depth `N;`. Only regular files named `sess_<id>` with a valid ID are sessions;
 * symbolic links are never followed, neither for directories nor for files.
 */
import { closeSync, constants, fstatSync, openSync, opendirSync, readdirSync, readSync, lstatSync, unlinkSync, type BigIntStats, type Dir, type Dirent } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseFilesSavePath, type FilesSavePath } from '@session-migrate/php-ini';
import { UserFacingError, describeFsError, redactSessionPath } from '@session-migrate/common';
import type { RemoveOutcome, Source } from './source.ts';

/**
 * PHP's session ID rule (php-src ext/session/session.c, php_session_valid_key): characters
 * `[A-Za-z0-9,-]` (sid_bits_per_character=6 produces `,` and `-`), 1 to 256 of them.
 */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9,-]{1,256}$/;

/** Default cap on a session file's size: 8 MiB. Larger files are reported, not migrated. */
export const DEFAULT_MAX_SESSION_BYTES = 8 * 1024 * 1024;

/** A session read from its file. */
export interface SourceSession {
  kind: 'session';
  /** The PHP session ID (from the file name). */
  id: string;
  /** The file's path (printable; it is a name, not content). */
  location: string;
  /** Last modification, milliseconds since the epoch: PHP's files handler counts age from it. */
  mtimeMs: number;
  /** The payload exactly as PHP wrote it. */
  data: Buffer;
  /**
   * Remaining lifetime in milliseconds when the source knows it exactly (a Redis source's PTTL);
   * undefined for files (the age rule of mod_files.c applies) and for Redis keys without a TTL.
   */
  ttlMs?: number;
  /** A Redis source key without a TTL: it gets gc_maxlifetime. */
  noTtl?: boolean;
}

export type SkipReason = 'symlink' | 'not-regular-file' | 'subdirectory' | 'bad-session-id' | 'wrong-depth' | 'unreadable' | 'oversized' | 'changed-while-reading' | 'unstable' | 'wrong-type';

/** A directory entry that looked like a session but is not migrated. */
export interface SkippedEntry {
  kind: 'skipped';
  location: string;
  reason: SkipReason;
  /** One line with details (an errno name, a size); never content. */
  detail?: string;
}

export type SourceItem = SourceSession | SkippedEntry;

/** A file that looks like a session by its name and type; reading it may still skip it. */
export interface SessionCandidate {
  kind: 'candidate';
  id: string;
  location: string;
}

/** Identity of the source directory, recorded in plans to detect drift. */
export interface FilesSourceDescription {
  kind: 'files';
  /** The save_path as given (may be `N;MODE;/path`). */
  savePath: string;
  /** Absolute base directory. */
  dir: string;
  depth: number;
  /** Device and inode of the base directory: a replaced directory is drift. */
  dev: number;
  ino: number;
}

/** A source of PHP sessions; scan() yields every candidate once. */
export interface SessionSource {
  describe(): FilesSourceDescription;
  scan(): Iterable<SourceItem>;
  /** Lists candidates without reading them (cheap: directory entries only). */
  candidates(): Iterable<SessionCandidate | SkippedEntry>;
  /** Reads one candidate. Never throws: problems come back as a skipped entry. */
  read(candidate: SessionCandidate): SourceItem;
  /** Cap on a session's size in bytes. */
  readonly maxSessionBytes: number;
}

export interface FilesSourceOptions {
  /** Larger files are skipped as `oversized` (bytes). */
  maxSessionBytes?: number;
}

/**
 * Opens a `files:` source.
 * @param savePath a directory or a save_path in PHP's `N;MODE;/path` form.
 * @throws UserFacingError when the directory is missing, unreadable, a symlink or not a directory, or
 *   when the save_path's depth is invalid.
 */
export function openFilesSource(savePath: string, options: FilesSourceOptions = {}): FilesSource {
  const parsed = parseFilesSavePath(savePath);
  const fatal = parsed.findings.find((f) => f.severity === 'error');
  if (fatal !== undefined) throw new UserFacingError(`source files:${savePath}: ${fatal.message}`);
  return new FilesSource(savePath, parsed, options);
}

/**
 * Sessions of one `files` save_path. The base directory must be a real directory (not a symlink);
 * entries are streamed, never followed through symlinks, and read one at a time.
 */
export class FilesSource implements SessionSource, Source {
  readonly kind = 'files' as const;
  private readonly dir: string;
  readonly maxSessionBytes: number;
  private readonly description: FilesSourceDescription;

  constructor(savePath: string, private readonly parsed: FilesSavePath, options: FilesSourceOptions) {
    this.dir = resolve(parsed.path);
    this.maxSessionBytes = options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
    let st;
    try {
      st = lstatSync(this.dir);
    } catch (err) {
      throw new UserFacingError(`source directory ${this.dir}: ${describeFsError(err)}`);
    }
    if (st.isSymbolicLink()) {
      throw new UserFacingError(`source directory ${this.dir} is a symbolic link; give the real directory`);
    }
    if (!st.isDirectory()) throw new UserFacingError(`source directory ${this.dir}: not a directory`);
    try {
      readdirSync(this.dir);
    } catch (err) {
      throw new UserFacingError(`source directory ${this.dir}: ${describeFsError(err)}`);
    }
    this.description = { kind: 'files', savePath, dir: this.dir, depth: parsed.depth, dev: st.dev, ino: st.ino };
  }

  describe(): FilesSourceDescription {
    return this.description;
  }

  *scan(): Generator<SourceItem> {
    for (const c of this.candidates()) yield c.kind === 'candidate' ? this.read(c) : c;
  }

  candidates(): Generator<SessionCandidate | SkippedEntry> {
    return this.walk(this.dir, '', this.parsed.depth);
  }

  read(candidate: SessionCandidate): SourceItem {
    return readSessionFile(candidate, this.maxSessionBytes);
  }

  /** Source interface: every session read (stable reads, see readSessionFile), in batches. */
  async *sessions(options: { batchSize?: number; read?: StableReadOptions } = {}): AsyncGenerator<SourceItem[]> {
    const size = options.batchSize ?? 1000;
    let batch: SourceItem[] = [];
    for (const c of this.candidates()) {
      batch.push(c.kind === 'candidate' ? readSessionFile(c, this.maxSessionBytes, options.read) : c);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  /**
   * Source interface: deletes a session file only if it still holds exactly `session.data` (read again
   * with O_NOFOLLOW, compared, then unlinked). A file rewritten in between is `changed` and kept.
   */
  async removeIfUnchanged(session: SourceSession): Promise<RemoveOutcome> {
    const now = readSessionFile({ kind: 'candidate', id: session.id, location: session.location }, this.maxSessionBytes);
    if (now.kind !== 'session') return now.reason === 'changed-while-reading' ? 'gone' : 'changed';
    if (!now.data.equals(session.data)) return 'changed';
    try {
      unlinkSync(session.location);
      return 'removed';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
      throw new UserFacingError(`cannot remove ${redactSessionPath(session.location)}: ${describeFsError(err)}`);
    }
  }

  async close(): Promise<void> {
    // nothing held open between calls
  }

  private *walk(dir: string, idPrefix: string, levelsLeft: number): Generator<SessionCandidate | SkippedEntry> {
    // Streams the directory (opendir) instead of listing it whole, so memory stays flat however many
    // sessions it holds.
    let handle: Dir;
    try {
      handle = opendirSync(dir, { bufferSize: 256 });
    } catch (err) {
      yield { kind: 'skipped', location: dir, reason: 'unreadable', detail: describeFsError(err) };
      return;
    }
    try {
      for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
        yield* this.classifyEntry(dir, entry, idPrefix, levelsLeft);
      }
    } finally {
      handle.closeSync();
    }
  }

  /** Turns one directory entry into a candidate, a skipped entry, or nothing (not session-like). */
  private *classifyEntry(dir: string, entry: Dirent, idPrefix: string, levelsLeft: number): Generator<SessionCandidate | SkippedEntry> {
    const location = join(dir, entry.name);
    if (levelsLeft > 0) {
      if (entry.name.length === 1 && entry.isDirectory()) {
        yield* this.walk(location, idPrefix + entry.name, levelsLeft - 1);
      } else if (entry.isSymbolicLink()) {
        yield { kind: 'skipped', location, reason: 'symlink' };
      } else if (entry.name.startsWith('sess_')) {
        yield { kind: 'skipped', location, reason: 'wrong-depth', detail: `PHP reads sessions ${levelsLeft} level(s) further down` };
      }
      return;
    }
    if (this.parsed.depth === 0 && entry.name.length === 1 && entry.isDirectory()) {
      // The layout of a depth-N save_path: worth a hint when no session sits at the top.
      yield { kind: 'skipped', location, reason: 'subdirectory', detail: "looks like a 'N;/path' save_path layout" };
      return;
    }
    if (!entry.name.startsWith('sess_')) return;
    const id = entry.name.slice(5);
    if (entry.isSymbolicLink()) yield { kind: 'skipped', location, reason: 'symlink' };
    else if (!SESSION_ID_PATTERN.test(id)) yield { kind: 'skipped', location, reason: 'bad-session-id' };
    else if (!id.startsWith(idPrefix)) yield { kind: 'skipped', location, reason: 'wrong-depth', detail: 'the directory names do not match the ID' };
    else yield { kind: 'candidate', id, location };
  }
}

/** How readSessionFile retries a file that changes under it. */
export interface StableReadOptions {
  /** Reads tried before the file is reported as `unstable` (default 6). */
  attempts?: number;
  /** First pause between reads in milliseconds, doubled each time (default 2: 2, 4, 8, 16, 32 ms). */
  baseDelayMs?: number;
  /**
   * Whether a stable read looks complete (e.g. PHP would load it under the configured
   * serialize_handler). A read that fails it is tried again; if every read fails it, the last one is
   * returned as it is (the file really is empty or corrupt).
   */
  looksComplete?: (data: Buffer, mtimeMs: number) => boolean;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks this thread for `ms` milliseconds (readSessionFile is synchronous; it runs in workers too). */
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * Reads one session file without following a symlink and without blocking on a FIFO: open with
 * O_NOFOLLOW|O_NONBLOCK, fstat (regular file, size cap), read, close. Never throws.
 *
 * Torn reads: PHP's files handler rewrites a session in place under flock(LOCK_EX) (php-src
 * ext/session/mod_files.c, ps_files_write: ftruncate(fd, 0) when the new data is shorter, then one
 * pwrite at offset 0). Node has no flock, so a read is accepted only when it is stable: the fstat
 * before and after (inode, size, mtime and ctime in ns) agree, a second pread gives the same bytes,
 * and `looksComplete` (if given) accepts it. Otherwise it is read again after 2, 4, 8... ms; a file
 * that never settles comes back as skipped `unstable` (reported, never migrated half-written).
 * @param maxBytes larger files come back as skipped `oversized`.
 */
export function readSessionFile(candidate: SessionCandidate, maxBytes: number, options: StableReadOptions = {}): SourceItem {
  const attempts = options.attempts ?? 6;
  let delay = options.baseDelayMs ?? 2;
  let last: SourceItem | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) {
      sleepSync(delay);
      delay *= 2;
    }
    const r = readOnce(candidate, maxBytes);
    if (r === 'unstable') continue;
    if (r.kind === 'skipped') return r;
    last = r;
    if (options.looksComplete === undefined || options.looksComplete(r.data, r.mtimeMs)) return r;
  }
  if (last !== undefined) return last;
  return { kind: 'skipped', location: candidate.location, reason: 'unstable', detail: `kept changing over ${attempts} reads; re-run to copy it` };
}

function sameStat(a: BigIntStats, b: BigIntStats): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function readAll(fd: number, size: number): Buffer | undefined {
  // One byte more than fstat said: a file that grew meanwhile is caught here.
  const data = Buffer.allocUnsafe(size + 1);
  let got = 0;
  while (got < size + 1) {
    const n = readSync(fd, data, got, size + 1 - got, got);
    if (n === 0) break;
    got += n;
  }
  return got === size ? data.subarray(0, size) : undefined;
}

function readOnce(candidate: SessionCandidate, maxBytes: number): SourceItem | 'unstable' {
  const { id, location } = candidate;
  let fd: number;
  try {
    fd = openSync(location, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ELOOP') return { kind: 'skipped', location, reason: 'symlink' };
    if (e.code === 'ENOENT') return { kind: 'skipped', location, reason: 'changed-while-reading', detail: 'deleted' };
    if (e.code === 'ENXIO') return { kind: 'skipped', location, reason: 'not-regular-file', detail: 'a socket' };
    return { kind: 'skipped', location, reason: 'unreadable', detail: describeFsError(err) };
  }
  try {
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile()) return { kind: 'skipped', location, reason: 'not-regular-file' };
    if (before.size > BigInt(maxBytes)) {
      return { kind: 'skipped', location, reason: 'oversized', detail: `${before.size} bytes > cap ${maxBytes}` };
    }
    const size = Number(before.size);
    const data = readAll(fd, size);
    if (data === undefined) return 'unstable';
    const after = fstatSync(fd, { bigint: true });
    if (!sameStat(before, after)) return 'unstable';
    // Same size and, with coarse kernel timestamps, possibly the same mtime: compare a second read.
    const again = readAll(fd, size);
    if (again === undefined || !again.equals(data)) return 'unstable';
    return { kind: 'session', id, location, mtimeMs: Number(before.mtimeNs / 1_000_000n), data };
  } catch (err) {
    return { kind: 'skipped', location, reason: 'unreadable', detail: describeFsError(err) };
  } finally {
    closeSync(fd);
  }
}
