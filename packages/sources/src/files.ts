/**
 * Session files written by PHP's `files` save handler (php-src ext/session/mod_files.c):
 * `<path>/<c1>/<c2>/.../sess_<id>` with one directory level per character of the ID when the
 * save_path has a depth `N;`. Only regular files named `sess_<id>` with a valid ID are sessions;
 * symbolic links are never followed, neither for directories nor for files.
 */
import { closeSync, constants, fstatSync, openSync, opendirSync, readdirSync, readSync, lstatSync, type Dir, type Dirent } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseFilesSavePath, type FilesSavePath } from '@session-migrate/php-ini';
import { UserFacingError, describeFsError } from '@session-migrate/common';

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
}

export type SkipReason = 'symlink' | 'not-regular-file' | 'subdirectory' | 'bad-session-id' | 'wrong-depth' | 'unreadable' | 'oversized' | 'changed-while-reading';

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
export class FilesSource implements SessionSource {
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

/**
 * Reads one session file without following a symlink and without blocking on a FIFO: open with
 * O_NOFOLLOW|O_NONBLOCK, fstat (regular file, size cap), read, close. Never throws.
 * @param maxBytes larger files come back as skipped `oversized`.
 */
export function readSessionFile(candidate: SessionCandidate, maxBytes: number): SourceItem {
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
    const st = fstatSync(fd);
    if (!st.isFile()) return { kind: 'skipped', location, reason: 'not-regular-file' };
    if (st.size > maxBytes) {
      return { kind: 'skipped', location, reason: 'oversized', detail: `${st.size} bytes > cap ${maxBytes}` };
    }
    const data = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, data, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got !== st.size) {
      return { kind: 'skipped', location, reason: 'changed-while-reading', detail: 'file shrank while being read' };
    }
    return { kind: 'session', id, location, mtimeMs: st.mtimeMs, data };
  } catch (err) {
    return { kind: 'skipped', location, reason: 'unreadable', detail: describeFsError(err) };
  } finally {
    closeSync(fd);
  }
}
