/**
 * Session files written by PHP's `files` save handler (php-src ext/session/mod_files.c):
 * `<path>/<c1>/<c2>/.../sess_<id>` with one directory level per character of the ID when the
 * save_path has a depth `N;`. Only regular files named `sess_<id>` with a valid ID are sessions;
 * symbolic links are never followed, neither for directories nor for files.
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  opendirSync,
  readFileSync,
  readSync,
  lstatSync,
  unlinkSync,
  type Dir,
  type Dirent,
  type Stats,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { parseFilesSavePath, type FilesSavePath } from '@session-migrate/php-ini';
import { DEFAULT_MAX_SESSION_BYTES, UserFacingError, describeFsError, lockFd, redactSessionPath } from '@session-migrate/common';
import type { RemoveOutcome, Source } from './source.ts';

/**
 * PHP's session ID rule (php-src ext/session/session.c, php_session_valid_key): characters
 * `[A-Za-z0-9,-]` (sid_bits_per_character=6 produces `,` and `-`), 1 to 256 of them.
 */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9,-]{1,256}$/;

/** Default cap on a session file's size: 8 MiB. Larger files are reported, not migrated. */
/** Defined in @session-migrate/common (defaults.ts). */
export { DEFAULT_MAX_SESSION_BYTES };

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

export type SkipReason =
  | 'symlink'
  | 'not-regular-file'
  | 'subdirectory'
  | 'bad-session-id'
  | 'wrong-depth'
  | 'unreadable'
  | 'oversized'
  | 'changed-while-reading'
  | 'unstable'
  | 'wrong-type'
  /**
   * Owned by neither root nor a uid PHP runs as (the plan's `phpUids`): PHP's files handler refuses it
   * ("Session data file is not created by your uid", php-src ext/session/mod_files.c ps_files_open),
   * so it is no session of this application (perhaps planted in a shared directory): not copied, not
   * deleted, not missing (phpAcceptsOwner).
   */
  | 'foreign-owner'
  /** The session ID is in another source of the plan too, whose copy was written later (packages/migrate several-sources.ts). */
  | 'superseded';

/**
 * Skip reasons of entries that may hold a live session which was therefore not copied: a file that
 * could not be read, kept changing (`unstable`), or is larger than the plan's --max-session-bytes.
 * Their users would be logged out at the cutover, so apply and verify fail on them and purge keeps
 * them (the one home of this rule).
 */
export const NOT_COPIED_SKIPS: ReadonlySet<SkipReason> = new Set<SkipReason>(['oversized', 'unreadable', 'unstable']);

/**
 * Whether PHP's files handler takes a session file of this owner: root's, or one of the uids PHP runs
 * as, or any when PHP runs as root (php-src ext/session/mod_files.c, ps_files_open: `sbuf.st_uid != 0
 * && sbuf.st_uid != getuid() && sbuf.st_uid != geteuid() && getuid() != 0` fails with "Session data
 * file is not created by your uid" and the file is not read; PHP 8.2 as root reads a file of nobody's).
 * The one home of this rule: a file of another owner is skipped as `foreign-owner` (never
 * NOT_COPIED_SKIPS: PHP would not have served it).
 * @param phpUids the uids PHP runs as (the plan's record; [] when plan saw no session file, so only
 *   root's are taken); undefined: any owner (no rule recorded)
 */
export function phpAcceptsOwner(uid: number, phpUids: readonly number[] | undefined): boolean {
  return phpUids === undefined || uid === 0 || phpUids.includes(uid) || phpUids.includes(0);
}

/**
 * A second owner with more than 1/AMBIGUOUS_OWNER_RATIO as many session files as the first makes the
 * inference ambiguous (several pools, each with its own user, sharing one directory?): plan then asks
 * for --php-user instead of guessing.
 */
export const AMBIGUOUS_OWNER_RATIO = 4;

/** The uids plan records for a files source (FilesSourceDescription.phpUids), and how it came to them. */
export interface PhpOwnerDecision {
  /** The uids PHP runs as, ascending; empty: root's files only. */
  uids: number[];
  /** True when taken from the files (the owner of most of them, root aside); false: --php-user. */
  inferred: boolean;
  /** Session files whose owner PHP accepts (root or `uids`), and the others, at plan time. */
  taken: number;
  refused: number;
}

/**
 * Which uids PHP runs as for one files source: the ones given (`plan --php-user`), else the owner of
 * most session files, root aside (root's are taken anyway: phpAcceptsOwner). When every session file
 * is root's, PHP runs as root ([0]: it reads every owner's files). With no session file at all, none
 * is known ([]: root's files only; plan says so, and apply fails on files of another owner).
 * @param owners session files per owning uid (FilesSource.countOwners)
 * @param describe names a uid for the error (e.g. `33 (www-data)`)
 * @throws UserFacingError naming the owners when a second one has more than 1/AMBIGUOUS_OWNER_RATIO as
 *   many files as the first, and nothing was given; or when the users given own none of the session
 *   files while other users than root own some (an empty directory, or root's files only, is fine)
 */
export function decidePhpUids(
  owners: ReadonlyMap<number, number>,
  given: readonly number[] | undefined,
  where: string,
  describe: (uid: number) => string = String,
): PhpOwnerDecision {
  const tally = (uids: readonly number[]): PhpOwnerDecision => {
    let taken = 0;
    let refused = 0;
    for (const [uid, n] of owners) {
      if (phpAcceptsOwner(uid, uids)) taken += n;
      else refused += n;
    }
    return { uids: [...new Set(uids)].sort((a, b) => a - b), inferred: given === undefined, taken, refused };
  };
  const ranked = [...owners].filter(([uid]) => uid !== 0).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const list = (): string =>
    `${ranked
      .slice(0, 4)
      .map(([uid, n]) => `uid ${describe(uid)}: ${n}`)
      .join(', ')}${ranked.length > 4 ? ', ...' : ''}`;
  if (given !== undefined) {
    // A user who owns none of the files while other users own some is a mistake (a typo, the web
    // server's user instead of the pool's): every one of those files would be left behind.
    if (ranked.length > 0 && !given.includes(0) && !ranked.some(([uid]) => given.includes(uid))) {
      const all = [...owners.values()].reduce((a, b) => a + b, 0);
      const users = [...new Set(given)];
      throw new UserFacingError(
        `${where}: --php-user ${users.map(describe).join(', --php-user ')} own${users.length === 1 ? 's' : ''} none of the ${all} session files (${list()}): give the user PHP runs as`,
      );
    }
    return tally(given);
  }
  const [first, second] = ranked;
  if (first === undefined) return tally((owners.get(0) ?? 0) > 0 ? [0] : []);
  if (second !== undefined && second[1] * AMBIGUOUS_OWNER_RATIO > first[1]) {
    throw new UserFacingError(
      `${where}: session files belong to several users (${list()}) and PHP's files handler takes only those of the user it runs as: give --php-user NAME|UID (repeat it for several pools)`,
    );
  }
  return tally([first[0]]);
}

/** The skipped entry of a file PHP's files handler would refuse for its owner (phpAcceptsOwner). */
export function foreignOwner(location: string, uid: number): SkippedEntry {
  return { kind: 'skipped', location, reason: 'foreign-owner', detail: `owned by uid ${uid}, which PHP's files handler refuses` };
}

/**
 * The owner of one scanned entry as the read saw it (FilesSource.sessionsWithOwners), so plan can
 * count owners and read in one walk and apply the owner rule afterwards.
 */
export interface OwnedItem {
  item: SourceItem;
  /**
   * The owning uid (fstat of the open file, or lstat when it could not be opened or was no regular
   * file), as FilesSource.countOwners counts it; undefined for entries that are no candidate (found
   * by name and type alone) or that were gone.
   */
  uid?: number;
  /**
   * True when the owner rule decides this entry: read with phpUids set, a file of a refused owner
   * would have come back as `foreign-owner` instead of `item` (an open regular file, or one that
   * could not be opened for EACCES); false when `item` is the same under any rule.
   */
  ownerDecides: boolean;
}

/** What readOnce saw of a file's owner (first sight wins; see OwnedItem). */
interface OwnerSeen {
  uid?: number;
  decides: boolean;
}

/** Records the owner of `location` by lstat (never followed) when nothing was seen yet; `decides` false. */
function seeOwnerByName(seen: OwnerSeen | undefined, location: string): void {
  if (seen === undefined || seen.uid !== undefined) return;
  const uid = ownerOf(location);
  if (uid !== undefined) seen.uid = uid;
}

/** A directory entry that looked like a session but is not migrated. */
export interface SkippedEntry {
  kind: 'skipped';
  location: string;
  reason: SkipReason;
  /** One line with details (an errno name, a size); never content. */
  detail?: string;
  /** With `oversized`: the session's size and the limit it is over (--max-session-bytes), in bytes. */
  size?: { bytes: number; maxBytes: number };
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
  /**
   * The uids PHP runs as, whose session files are taken besides root's (phpAcceptsOwner); set by plan
   * (--php-user, or the owner of most session files). Absent: any owner (plans made before it).
   */
  phpUids?: number[];
  /** Where phpUids came from: `plan --php-user`, or the owners of the session files (decidePhpUids). */
  phpUidsFrom?: 'php-user' | 'files';
}

/** A source of PHP sessions; scan() yields every candidate once. */
export interface SessionSource {
  describe(): FilesSourceDescription;
  scan(): Iterable<SourceItem>;
  /** Lists candidates without reading them (cheap: directory entries only). */
  candidates(): Iterable<SessionCandidate | SkippedEntry>;
  /**
   * Reads one candidate (readSessionFile; `read`: its options, e.g. looksComplete). Never throws:
   * problems come back as a skipped entry.
   */
  read(candidate: SessionCandidate, read?: StableReadOptions): SourceItem;
  /** Cap on a session's size in bytes. */
  readonly maxSessionBytes: number;
  /** The uids PHP runs as (phpAcceptsOwner): other owners' files are `foreign-owner`; undefined: any owner. */
  readonly phpUids?: readonly number[] | undefined;
}

export interface FilesSourceOptions {
  /** Larger files are skipped as `oversized` (bytes). */
  maxSessionBytes?: number;
  /** The uids PHP runs as: files of other owners (root aside) are skipped as `foreign-owner`. Absent: any owner. */
  phpUids?: readonly number[];
}

/**
 * Opens a `files:` source.
 * @param savePath a directory or a save_path in PHP's `N;MODE;/path` form.
 * @throws UserFacingError when the directory is missing, unreadable, a symlink or not a directory, or
 *   when the save_path's depth is invalid.
 */
export function openFilesSource(savePath: string, options: FilesSourceOptions = {}): FilesSource {
  const parsed = parseFilesSavePath(savePath);
  const fatal = parsed.findings.find((f) => f.severity === 'high');
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

  constructor(
    savePath: string,
    private readonly parsed: FilesSavePath,
    options: FilesSourceOptions,
  ) {
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
      // Readable? Opening the directory stream tells, without listing it (a million entries would
      // cost a second and tens of MB here).
      opendirSync(this.dir).closeSync();
    } catch (err) {
      throw new UserFacingError(`source directory ${this.dir}: ${describeFsError(err)}`);
    }
    this.description = { kind: 'files', savePath, dir: this.dir, depth: parsed.depth, dev: st.dev, ino: st.ino };
    if (options.phpUids !== undefined) this.acceptOwners(options.phpUids);
  }

  /** The uids PHP runs as (phpAcceptsOwner); undefined: files of any owner are read. */
  get phpUids(): readonly number[] | undefined {
    return this.description.phpUids;
  }

  /**
   * From now on reads only files owned by root or by one of `uids` (phpAcceptsOwner), and records
   * them in describe() with where they came from (plan decides them after opening the source:
   * decidePhpUids).
   * @param from `php-user` (given), `files` (inferred from the owners); absent: not recorded
   */
  acceptOwners(uids: readonly number[], from?: 'files' | 'php-user'): void {
    this.description.phpUids = [...new Set(uids)].sort((a, b) => a - b);
    if (from !== undefined) this.description.phpUidsFrom = from;
  }

  /**
   * How many session candidates each uid owns (lstat, names only, nothing read): what PHP's user is
   * inferred from (decidePhpUids). Entries gone meanwhile are not counted. A walk of its own: plan
   * counts owners in the walk that reads the sessions instead (sessionsWithOwners), verify and purge in
   * theirs (sessions' onOwner, ownerOfCandidate, purge's lstat); verify and purge given `--source
   * files:DIR` without a plan's record decide PHP's user from it (packages/migrate use-cases/shared.ts
   * decideOwnersGivenNow).
   */
  countOwners(): Map<number, number> {
    const owners = new Map<number, number>();
    for (const c of this.candidates()) {
      if (c.kind !== 'candidate') continue;
      const uid = ownerOfCandidate(c);
      if (uid !== undefined) owners.set(uid, (owners.get(uid) ?? 0) + 1);
    }
    return owners;
  }

  private readOptions(read: StableReadOptions | undefined): StableReadOptions | undefined {
    const phpUids = this.description.phpUids;
    return phpUids === undefined ? read : { ...read, phpUids };
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

  read(candidate: SessionCandidate, read?: StableReadOptions): SourceItem {
    return readSessionFile(candidate, this.maxSessionBytes, this.readOptions(read));
  }

  /**
   * Source interface: every session read (stable reads, see readSessionFile), in batches. `onOwner`
   * gets each candidate's owner as its read saw it (the open file's fstat, else lstat of the name;
   * none for a file gone meanwhile), whatever the owner rule made of the file: what verify counts
   * owners from in the walk that reads the sessions.
   */
  async *sessions(
    options: { batchSize?: number; read?: StableReadOptions; onOwner?: (uid: number) => void } = {},
  ): AsyncGenerator<SourceItem[]> {
    const size = options.batchSize ?? 1000;
    const read = this.readOptions(options.read);
    const { onOwner } = options;
    let batch: SourceItem[] = [];
    for (const c of this.candidates()) {
      if (c.kind === 'candidate' && onOwner !== undefined) {
        const seen: OwnerSeen = { decides: false };
        const item = readSessionFile(c, this.maxSessionBytes, read, seen);
        if (seen.uid !== undefined) onOwner(seen.uid);
        batch.push(item);
      } else batch.push(c.kind === 'candidate' ? readSessionFile(c, this.maxSessionBytes, read) : c);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  /**
   * Every entry read once, whatever its owner (no owner rule, even after acceptOwners), each with the
   * owner the read saw (OwnedItem), in batches, in the order of scan(): what plan counts owners and
   * sessions from in one walk (countOwners and a scan would walk and stat every file twice). A
   * caller applies the owner rule itself: an item with `ownerDecides` and a uid phpAcceptsOwner
   * refuses is the `foreign-owner` skip (foreignOwner) a read with that rule gives.
   */
  async *sessionsWithOwners(options: { batchSize?: number; read?: StableReadOptions } = {}): AsyncGenerator<OwnedItem[]> {
    const size = options.batchSize ?? 1000;
    const read: StableReadOptions = { ...options.read };
    delete read.phpUids;
    let batch: OwnedItem[] = [];
    for (const c of this.candidates()) {
      if (c.kind === 'candidate') {
        const seen: OwnerSeen = { decides: false };
        const item = readSessionFile(c, this.maxSessionBytes, read, seen);
        batch.push(seen.uid !== undefined ? { item, uid: seen.uid, ownerDecides: seen.decides } : { item, ownerDecides: false });
      } else batch.push({ item: c, ownerDecides: false });
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  /** Source interface: the session IDs of the directory (names only, nothing read), in batches. */
  async *ids(): AsyncGenerator<string[]> {
    let batch: string[] = [];
    for (const c of this.candidates()) {
      if (c.kind !== 'candidate') continue;
      batch.push(c.id);
      if (batch.length >= 1000) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  /**
   * Source interface: reads the sessions of these IDs where PHP would (`<dir>/<c1>/.../sess_<id>` for
   * the save_path's depth, mod_files.c ps_files_path_create), with the stable-read rule. Every level
   * must be a real directory (lstat; a symlink on the way is `symlink`, never followed), the file is
   * opened with O_NOFOLLOW. Undefined for an ID with no file, or not a valid session ID.
   */
  async readIds(ids: readonly string[], options: { read?: StableReadOptions } = {}): Promise<Array<SourceItem | undefined>> {
    return ids.map((id) => {
      if (!SESSION_ID_PATTERN.test(id) || id.length < this.parsed.depth) return undefined;
      let dir = this.dir;
      for (let i = 0; i < this.parsed.depth; i++) {
        dir = join(dir, id[i]!);
        let st;
        try {
          st = lstatSync(dir);
        } catch {
          return undefined;
        }
        if (!st.isDirectory()) return { kind: 'skipped', location: dir, reason: st.isSymbolicLink() ? 'symlink' : 'not-regular-file' };
      }
      const location = join(dir, `sess_${id}`);
      let st;
      try {
        st = lstatSync(location);
      } catch {
        return undefined;
      }
      if (st.isSymbolicLink()) return { kind: 'skipped', location, reason: 'symlink' };
      if (!st.isFile()) return { kind: 'skipped', location, reason: 'not-regular-file' };
      return readSessionFile({ kind: 'candidate', id, location }, this.maxSessionBytes, this.readOptions(options.read));
    });
  }

  /**
   * Source interface: deletes a session file only if it still holds exactly `session.data` (read again
   * with O_NOFOLLOW, compared, then unlinked). A file rewritten in between is `changed` and kept.
   */
  async removeIfUnchanged(session: SourceSession): Promise<RemoveOutcome> {
    const now = readSessionFile(
      { kind: 'candidate', id: session.id, location: session.location },
      this.maxSessionBytes,
      this.readOptions(undefined),
    );
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
      handle = opendirSync(dir, { bufferSize: 1024 });
    } catch (err) {
      yield { kind: 'skipped', location: dir, reason: 'unreadable', detail: describeFsError(err) };
      return;
    }
    // `dir` is absolute and normalized (resolve() and names without `/`): concatenation is join().
    const base = dir.endsWith('/') ? dir : `${dir}/`;
    try {
      for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
        if (levelsLeft > 0 && entry.name.length === 1 && entry.isDirectory()) {
          yield* this.walk(base + entry.name, idPrefix + entry.name, levelsLeft - 1);
          continue;
        }
        const item = this.classifyEntry(base + entry.name, entry, idPrefix, levelsLeft);
        if (item !== undefined) yield item;
      }
    } finally {
      handle.closeSync();
    }
  }

  /** Turns one directory entry (not a subdirectory to descend into) into a candidate, a skipped entry, or nothing (not session-like). */
  private classifyEntry(
    location: string,
    entry: Dirent,
    idPrefix: string,
    levelsLeft: number,
  ): SessionCandidate | SkippedEntry | undefined {
    if (levelsLeft > 0) {
      if (entry.isSymbolicLink()) return { kind: 'skipped', location, reason: 'symlink' };
      if (entry.name.startsWith('sess_'))
        return { kind: 'skipped', location, reason: 'wrong-depth', detail: `PHP reads sessions ${levelsLeft} level(s) further down` };
      return undefined;
    }
    if (this.parsed.depth === 0 && entry.name.length === 1 && entry.isDirectory()) {
      // The layout of a depth-N save_path: worth a hint when no session sits at the top.
      return { kind: 'skipped', location, reason: 'subdirectory', detail: "looks like a 'N;/path' save_path layout" };
    }
    if (!entry.name.startsWith('sess_')) return undefined;
    const id = entry.name.slice(5);
    if (entry.isSymbolicLink()) return { kind: 'skipped', location, reason: 'symlink' };
    if (!SESSION_ID_PATTERN.test(id)) return { kind: 'skipped', location, reason: 'bad-session-id' };
    if (!id.startsWith(idPrefix))
      return { kind: 'skipped', location, reason: 'wrong-depth', detail: 'the directory names do not match the ID' };
    return { kind: 'candidate', id, location };
  }
}

/**
 * The owner (uid) of a session candidate now: lstat of its name (a symbolic link's own owner), nothing
 * read; undefined when it is gone. What FilesSource.countOwners counts, and verify's presence walk.
 */
export function ownerOfCandidate(candidate: SessionCandidate): number | undefined {
  try {
    return lstatSync(candidate.location).uid;
  } catch {
    return undefined; // gone meanwhile
  }
}

/**
 * Quiet period in ms after which a stable read that does not look complete may be taken as it is:
 * PHP's files handler keeps a write in progress far shorter than this (ftruncate and pwrite are
 * consecutive calls in mod_files.c), so a file whose ctime and mtime are 5 s old is not half-written
 * unless its writer is stalled, which the lock check of readSessionFile catches.
 */
export const DEFAULT_SETTLE_MS = 5000;

/** How readSessionFile retries a file that changes under it (see readSessionFile for the rule). */
export interface StableReadOptions {
  /** Reads tried before the file is reported as `unstable` (default 6). */
  attempts?: number;
  /** First pause between reads in milliseconds, doubled each time (default 2: 2, 4, 8, 16, 32 ms). */
  baseDelayMs?: number;
  /**
   * Whether the bytes of a stable read look like a complete session, by content only (e.g. PHP would
   * load them under the configured serialize_handler). Default: not empty (a file PHP has just
   * truncated is empty).
   */
  looksComplete?: (data: Buffer) => boolean;
  /** Quiet period in ms (default DEFAULT_SETTLE_MS); see readSessionFile. */
  settleMs?: number;
  /**
   * The uids PHP runs as: a file owned by another (root aside) is `foreign-owner`, decided on the
   * open file's fstat, before its size or bytes (phpAcceptsOwner). Undefined: any owner.
   */
  phpUids?: readonly number[];
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks this thread for `ms` milliseconds (readSessionFile is synchronous; it runs in workers too). */
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

const nonEmpty = (data: Buffer): boolean => data.length > 0;

/**
 * Reads one session file without following a symlink and without blocking on a FIFO: open with
 * O_NOFOLLOW|O_NONBLOCK, fstat (regular file, size cap), read, close. Never throws. The one
 * stable-read rule of plan, apply, verify --source and purge.
 *
 * PHP's files handler (php-src ext/session/mod_files.c) holds flock(LOCK_EX) on a session file from
 * session_start to the end of the request (ps_files_open) and rewrites it in place: ftruncate(fd, 0)
 * when the new data is shorter, then one pwrite at offset 0 (ps_files_write). A reader can meet the
 * empty file or a prefix of the new version, and when PHP is descheduled between those calls (a
 * loaded machine) that state lasts longer than any fixed number of retries; by its bytes it is an
 * empty or corrupt session. So a read is accepted only when:
 * 1. it is stable: the fstat before and after (inode, size, mtime and ctime) agree and, for a file
 *    that changed in the last ONE_READ_AFTER_MS, a second pread gives the same bytes (see readStable
 *    for why an older file needs no second read); and
 * 2. it looks complete (`looksComplete`), or else it is proven not to be a write in progress:
 *    - settled: it last changed (ctime, mtime) `settleMs` or more ago, no process holds a lock on its
 *      inode (/proc/locks, Linux; skipped where it cannot be read) and the fstat after that check
 *      still agrees (a write that ended meanwhile moved the ctime); or
 *    - read again under a shared flock (util-linux flock(1) on the open file description; the
 *      generated read-through handler reads under LOCK_SH the same way): no PHP request is between
 *      its open and its close, so the bytes are what PHP last wrote, empty or corrupt as they are.
 * Anything else is read again after 2, 4, 8... ms (PHP still holds its lock, or without flock(1) a
 * recent file cannot be confirmed); a file that never meets the rule within `attempts` reads comes
 * back as skipped `unstable`: reported, never migrated half-written, never taken for an empty or
 * corrupt session.
 * @param maxBytes larger files come back as skipped `oversized`.
 */
export function readSessionFile(
  candidate: SessionCandidate,
  maxBytes: number,
  options: StableReadOptions = {},
  /** Filled with the owner the read saw (sessionsWithOwners). */
  seen?: OwnerSeen,
): SourceItem {
  const attempts = options.attempts ?? 6;
  const rule: ReadRule = {
    looksComplete: options.looksComplete ?? nonEmpty,
    settleMs: options.settleMs ?? DEFAULT_SETTLE_MS,
    phpUids: options.phpUids,
  };
  let delay = options.baseDelayMs ?? 2;
  let why: Retry = 'changing';
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) {
      sleepSync(delay);
      delay *= 2;
    }
    const r = readOnce(candidate, maxBytes, rule, seen);
    if (typeof r !== 'string') return r;
    why = r;
  }
  const detail =
    why === 'changing'
      ? 'kept changing'
      : why === 'held'
        ? 'stayed incomplete while PHP held its lock'
        : 'stayed incomplete and flock(1) is not available to confirm it';
  return {
    kind: 'skipped',
    location: candidate.location,
    reason: 'unstable',
    detail: `${detail} over ${attempts} reads; re-run to copy it`,
  };
}

/** The owner of a path (lstat, never followed), or undefined when it cannot be found. */
function ownerOf(location: string): number | undefined {
  try {
    return lstatSync(location).uid;
  } catch {
    return undefined;
  }
}

/** Why a read is tried again: the file changed, PHP holds its lock, or it could not be confirmed. */
type Retry = 'changing' | 'held' | 'unconfirmed';

/**
 * Age in ms of a file's last change (its ctime) from which one read between two agreeing fstats is
 * proof enough, without a second read to compare (readStable). Far above any file system's timestamp
 * granularity (Linux: a clock tick, at most 10 ms; ext3 and some NFS servers: 1 s; FAT: 2 s) and the
 * skew of NTP-synchronised clocks. Session files a migration copies are mostly minutes old.
 */
export const ONE_READ_AFTER_MS = 10_000;

/**
 * Test seam, empty in production: called on the open file at the points of a stable read where a
 * writer could strike (tests rewrite the file there to prove it is caught).
 */
export const stableReadTestHooks: { afterFirstRead?: (fd: number) => void; afterSecondStat?: (fd: number) => void } = {};

/**
 * Whether two fstats of one open file describe the same version of it. Plain Stats, not BigIntStats
 * (whose four Date objects and BigInts cost about 0.5 µs a call, a tenth of a whole stable read):
 * mtimeMs and ctimeMs are doubles, exact to about 0.25 µs at today's dates, while Linux stamps files
 * from a clock that moves by a tick (1-10 ms; multigrain ctime, Linux 6.13, still orders changes
 * fstat can see), and a change too close to tell apart is still caught by the second read of a
 * recent file (readStable).
 */
function sameStat(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** The file's last change (the later of ctime and mtime), ms since the epoch. */
function changedMsOf(st: Stats): number {
  return st.ctimeMs > st.mtimeMs ? st.ctimeMs : st.mtimeMs;
}

function readAll(fd: number, size: number): Buffer | undefined {
  // One byte more than fstat said: a file that grew meanwhile is caught here.
  const data = Buffer.allocUnsafe(size + 1);
  let got = 0;
  while (got < size + 1) {
    const want = size + 1 - got;
    const n = readSync(fd, data, got, want, got);
    if (n === 0) break;
    got += n;
    // A read that stops short exactly at the size fstat gave is at the end of the file (read(2)): no
    // further read is needed to see the 0 that would follow. Anything else goes round again.
    if (n < want && got === size) break;
  }
  return got === size ? data.subarray(0, size) : undefined;
}

/**
 * fstat (`before`, taken by the caller), read, fstat, and for a recent file read again: the bytes
 * when all agree, undefined when the file moved meanwhile.
 *
 * Why a file whose last change is older than ONE_READ_AFTER_MS needs no second read: any change of a
 * file's bytes (write, truncate) sets its ctime to the current time, and so does a change of its
 * mtime (utimensat cannot set ctime): POSIX write(2), ftruncate(2), utimensat(2); Linux stamps it from
 * a clock that lags the real time by at most a tick, and file systems round it down to their
 * granularity (at most 2 s). `nowMs` is read before `before` was taken, so a change after `before`
 * gets a ctime of at least nowMs minus the granularity, later than a ctime older than nowMs minus
 * ONE_READ_AFTER_MS: `before` and the fstat after the read then differ, and the read is thrown away.
 * When they agree, nothing changed the file between them, and the read in between is the file as it
 * was: a second read could only find what the fstats already rule out. A recent file can be changed
 * within the same timestamp (same size, same ctime and mtime), which only a second read that differs
 * from the first can show: it is kept for those. (Assumed: the clock was not set back by more than
 * ONE_READ_AFTER_MS since the file's last change, and a network file system's server clock is within
 * that of this host's, as with NTP.)
 * @param nowMs Date.now() read before `before` was taken
 */
function readStable(fd: number, before: Stats, nowMs: number): Buffer | undefined {
  const size = before.size;
  const data = readAll(fd, size);
  if (data === undefined) return undefined;
  stableReadTestHooks.afterFirstRead?.(fd);
  if (!sameStat(before, fstatSync(fd))) return undefined;
  if (nowMs - changedMsOf(before) >= ONE_READ_AFTER_MS) return data;
  stableReadTestHooks.afterSecondStat?.(fd);
  // Changed recently: with coarse kernel timestamps a change may keep size, mtime and ctime: compare a second read.
  const again = readAll(fd, size);
  return again !== undefined && again.equals(data) ? data : undefined;
}

/** Inodes with a lock held or waited for, read from /proc/locks at `takenMs`; undefined: not readable. */
let lockSnapshot: { takenMs: number; inodes: Set<string> | undefined } | undefined;

/**
 * Whether some process holds or waits for a lock on inode `ino`, from /proc/locks (proc(5): one line
 * per lock, `... MAJOR:MINOR:INODE START END`); undefined where it cannot be read (not Linux). Only
 * the inode number is compared (overlay and network file systems report devices differently): a
 * lock on another file with the same number only costs a shared-lock read.
 *
 * A snapshot taken after the file's last change is as good as a fresh one: a writer whose truncate
 * or partial write we read has held its lock from before that change until after our read, so any
 * snapshot in between lists it. One snapshot (at most 1 s old) thus serves many files, however many
 * locks the machine holds.
 * @param changedMs the file's last change (ctime/mtime), ms since the epoch
 */
function inodeLocked(ino: bigint, changedMs: number): boolean | undefined {
  const now = Date.now();
  // 100 ms: kernel timestamps come from a clock that lags the real time by up to a tick.
  if (lockSnapshot === undefined || lockSnapshot.takenMs < changedMs + 100 || now - lockSnapshot.takenMs > 1000) {
    let inodes: Set<string> | undefined;
    try {
      const text = readFileSync('/proc/locks', 'latin1');
      inodes = new Set();
      for (const m of text.matchAll(/\s[0-9a-f]+:[0-9a-f]+:(\d+)\s/g)) inodes.add(m[1]!);
    } catch {
      inodes = undefined;
    }
    lockSnapshot = { takenMs: now, inodes };
  }
  return lockSnapshot.inodes?.has(String(ino));
}

/** What readOnce checks a file's bytes against: the session format, the settle time, PHP's uids. */
interface ReadRule {
  looksComplete: (data: Buffer) => boolean;
  settleMs: number;
  phpUids: readonly number[] | undefined;
}

/**
 * One attempt at the stable read of a session file: opened without following a symlink, checked
 * (regular file, owner, size), read with readStable; a file that looks incomplete is confirmed under a
 * shared lock unless it has settled (readUnsettled). `Retry` asks the caller to try again later.
 */
function readOnce(candidate: SessionCandidate, maxBytes: number, rule: ReadRule, seen: OwnerSeen | undefined): SourceItem | Retry {
  const { id, location } = candidate;
  const fd = openSession(location, rule, seen);
  if (typeof fd !== 'number') return fd;
  try {
    const nowMs = Date.now();
    const before = fstatSync(fd);
    if (seen !== undefined && seen.uid === undefined) {
      seen.uid = before.uid;
      seen.decides = before.isFile();
    }
    if (!before.isFile()) return { kind: 'skipped', location, reason: 'not-regular-file' };
    // The owner of the file opened (not of a name looked up before): as PHP checks it.
    if (!phpAcceptsOwner(before.uid, rule.phpUids)) return foreignOwner(location, before.uid);
    const tooBig = oversized(location, before, maxBytes);
    if (tooBig !== undefined) return tooBig;
    const data = readStable(fd, before, nowMs);
    if (data === undefined) return 'changing';
    if (rule.looksComplete(data)) return sessionRead(id, location, before, data);
    return readUnsettled(fd, candidate, maxBytes, rule, before, data);
  } catch (err) {
    seeOwnerByName(seen, location);
    return { kind: 'skipped', location, reason: 'unreadable', detail: describeFsError(err) };
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a session file for readOnce (O_NOFOLLOW, O_NONBLOCK): the descriptor, or what the failure
 * means for this file (a symlink, deleted, a socket, another user's file, unreadable).
 */
function openSession(location: string, rule: ReadRule, seen: OwnerSeen | undefined): number | SourceItem {
  try {
    return openSync(location, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ELOOP') return { kind: 'skipped', location, reason: 'symlink' };
    if (e.code === 'ENOENT') return { kind: 'skipped', location, reason: 'changed-while-reading', detail: 'deleted' };
    if (e.code === 'ENXIO') {
      seeOwnerByName(seen, location);
      return { kind: 'skipped', location, reason: 'not-regular-file', detail: 'a socket' };
    }
    // A file another user planted with mode 0600 is not this application's session: not `unreadable`
    // (which fails apply), whoever may open it.
    const uid = e.code === 'EACCES' ? ownerOf(location) : undefined;
    if (seen !== undefined && seen.uid === undefined && uid !== undefined) {
      seen.uid = uid;
      seen.decides = true;
    }
    if (uid !== undefined && !phpAcceptsOwner(uid, rule.phpUids)) return foreignOwner(location, uid);
    seeOwnerByName(seen, location);
    return { kind: 'skipped', location, reason: 'unreadable', detail: describeFsError(err) };
  }
}

/**
 * A file whose bytes do not look complete (empty or not loadable): really so, or PHP is between its
 * ftruncate and the end of its pwrite. A settled file that nobody holds a lock on is taken as it is;
 * otherwise it is read again under a shared lock (lockFd), as PHP's files handler would see it.
 */
function readUnsettled(
  fd: number,
  { id, location }: SessionCandidate,
  maxBytes: number,
  rule: ReadRule,
  before: Stats,
  data: Buffer,
): SourceItem | Retry {
  const changedMs = Math.floor(changedMsOf(before));
  // The inode number as a BigInt (a plain number loses digits above 2^53: XFS, btrfs), for /proc/locks.
  if (Date.now() - changedMs >= rule.settleMs && inodeLocked(fstatSync(fd, { bigint: true }).ino, changedMs) !== true) {
    // Settled and nobody holds its lock: a write that ended after the read moved the ctime.
    if (!sameStat(before, fstatSync(fd))) return 'changing';
    return sessionRead(id, location, before, data);
  }
  const lock = lockFd(fd, 'shared');
  if (lock !== 'ok') return lock === 'held' ? 'held' : 'unconfirmed';
  const nowLocked = Date.now();
  const locked = fstatSync(fd);
  const tooBigNow = oversized(location, locked, maxBytes);
  if (tooBigNow !== undefined) return tooBigNow;
  const settled = readStable(fd, locked, nowLocked);
  return settled === undefined ? 'changing' : sessionRead(id, location, locked, settled);
}

/** The skip of a file larger than the cap, or undefined when it fits. */
function oversized(location: string, st: Stats, maxBytes: number): SkippedEntry | undefined {
  if (st.size <= maxBytes) return undefined;
  return {
    kind: 'skipped',
    location,
    reason: 'oversized',
    detail: `${st.size} bytes > cap ${maxBytes}`,
    size: { bytes: st.size, maxBytes },
  };
}

/** A session read; its mtime in whole milliseconds, as PHP's files handler counts age in whole seconds (mod_files.c, st_mtime). */
function sessionRead(id: string, location: string, st: Stats, data: Buffer): SourceSession {
  return { kind: 'session', id, location, mtimeMs: Math.floor(st.mtimeMs), data };
}
