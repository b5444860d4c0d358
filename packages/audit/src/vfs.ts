/**
 * The filesystem the audit reads, behind one small interface so the same analysis runs on the live
 * host, on a mounted or copied root (`--root DIR`) and on a document written by the collect script
 * (`--from-collected`). Paths are always the paths as the audited host sees them (`/etc/php/8.2/...`);
 * a root filesystem maps them below its root and never lets a path or a symbolic link escape it.
 */
import { posix } from 'node:path';
import { createRootFs, expandGlob, isFsError, type FsError, type FsStat, type IniFileSystem } from '@session-migrate/php-ini';
import { describeUid, describeUidFrom, passwdNames } from '@session-migrate/sources/users';

/** Default cap on a file the audit reads: 8 MiB. A larger ini file is refused as too large (partial result). */
export const MAX_READ_BYTES = 8 * 1024 * 1024;

/** What lstat()/stat() report about a path; `mode` holds the permission bits only (e.g. 0o1733). */
export interface VStat {
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes. */
  size: number;
}

/** Result of a read: the bytes, or a one-line reason it could not be read. */
export type ReadResult = { ok: true; data: Buffer } | { ok: false; error: string };

/** The read-only filesystem the audit looks at. Every method is total: problems come back as values. */
export interface AuditFs {
  /** Human description ("host", "root /mnt/img", "collected web-1"). */
  readonly label: string;
  /** lstat(): never follows the last component when it is a symbolic link. null when missing. */
  lstat(path: string): VStat | null;
  /** stat(): follows symbolic links (inside the root only). null when missing or escaping. */
  stat(path: string): VStat | null;
  /** Directory entry names (unsorted), or null when not a readable directory. */
  readdir(path: string): string[] | null;
  /** Reads a whole regular file (following symlinks inside the root), at most `MAX_READ_BYTES`. */
  readFile(path: string): ReadResult;
  /** Target of a symbolic link, or null. */
  readlink(path: string): string | null;
  /** The path with every symbolic link resolved (inside the root), or null when missing or looping. */
  realpath(path: string): string | null;
  /**
   * Names a file owner's uid for messages, `33 (www-data)` as plan and verify print it (packages/sources
   * users.ts), from the audited system's user database: the live host's (getent passwd), a --root's
   * own /etc/passwd, a collected host's `users` (the collect script's getent or passwd lookups); the
   * bare uid (`33`) when that database has no name for it, or when there is none to read (a document of
   * an older collect script). Absent: the bare uid.
   */
  describeUid?(uid: number): string;
}

const FS_ERROR_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ELOOP: 'no such file, or a symbolic link loop or escape',
  EISDIR: 'is a directory',
  EINVAL: 'not a regular file',
  ENOTDIR: 'a path component is not a directory',
};

function toVStat(s: FsStat | FsError): VStat | null {
  if (isFsError(s)) return null;
  return { type: s.type, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, size: s.size };
}

/**
 * A real filesystem seen through `root` ("/" for the live host): php-ini's createRootFs (one
 * implementation of "read below a root without escaping it"), adapted to the audit's total,
 * null-for-missing interface. Symbolic links are resolved by hand, component by component, against
 * the root: an absolute target means root + target, `..` never climbs above the root, and more than 40
 * links in one lookup is a loop (ELOOP, as Linux does). Files larger than MAX_READ_BYTES are refused.
 */
export class RootFs implements AuditFs {
  readonly label: string;
  /** The same filesystem as php-ini's IniFileSystem (what the ini loader reads through). */
  readonly ini: IniFileSystem;
  private readonly live: boolean;
  /** Below another root: its /etc/passwd's names by uid, read once (rootUsers). */
  private users: ReadonlyMap<number, string> | undefined;
  /** describeUid's answers by uid: the live host's database is asked once per uid, not once per file or message. */
  private readonly described = new Map<number, string>();

  /** @param root an existing directory; "/" for the live host. */
  constructor(root: string) {
    const resolved = posix.resolve(root);
    this.live = resolved === '/';
    this.label = this.live ? 'host' : `root ${resolved}`;
    this.ini = createRootFs({ root: resolved, maxFileBytes: MAX_READ_BYTES });
  }

  /**
   * The uid with its user name, as `ls -l` would name the owner on the audited system: on the live
   * host from its user database (packages/sources describeUid: getent passwd, so LDAP or sssd users
   * too); below another root from that root's own /etc/passwd (a mounted system image's users are
   * not this machine's: the same uid can be another user here), read once. A uid without a name
   * there (or a root without /etc/passwd, e.g. a copy of /etc/php only) is the bare uid. Cached per uid.
   */
  describeUid(uid: number): string {
    let named = this.described.get(uid);
    if (named === undefined) {
      named = this.live ? describeUid(uid) : describeUidFrom(uid, this.rootUsers());
      this.described.set(uid, named);
    }
    return named;
  }

  /**
   * The root's /etc/passwd (passwd(5)) names by uid, read through the root once (a symbolic link in it
   * resolved inside the root, at most MAX_READ_BYTES); none when it is missing or unreadable.
   */
  private rootUsers(): ReadonlyMap<number, string> {
    if (this.users === undefined) {
      const passwd = this.readFile('/etc/passwd');
      this.users = passwd.ok ? passwdNames(passwd.data.toString('utf8')) : new Map();
    }
    return this.users;
  }

  realpath(path: string): string | null {
    const r = this.ini.realpath(path);
    return isFsError(r) ? null : r;
  }

  lstat(path: string): VStat | null {
    return toVStat(this.ini.lstat(path));
  }

  stat(path: string): VStat | null {
    return toVStat(this.ini.stat(path));
  }

  readdir(path: string): string[] | null {
    const r = this.ini.readDir(path);
    return isFsError(r) ? null : r;
  }

  readlink(path: string): string | null {
    const r = this.ini.readlink(path);
    return isFsError(r) ? null : r;
  }

  readFile(path: string): ReadResult {
    const r = this.ini.readFile(path);
    if (!isFsError(r)) return { ok: true, data: Buffer.from(r.buffer, r.byteOffset, r.byteLength) };
    // php-ini's message is "<path>: <reason>"; the audit names the path itself.
    const reason = r.error.startsWith(`${path}: `) ? r.error.slice(path.length + 2) : r.error;
    if (r.code === 'EFBIG') return { ok: false, error: reason.replace(/^file too large/, 'too large') };
    return { ok: false, error: FS_ERROR_TEXT[r.code] ?? reason };
  }
}

/** One path recorded by the collect script. */
export interface CollectedEntry {
  path: string;
  type: VStat['type'];
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** File contents (regular files the script captured). */
  content?: Buffer;
  /** Why the script did not capture the contents (too large, unreadable). */
  skipped?: string;
  /** Symbolic link target. */
  target?: string;
}

/**
 * The filesystem as the collect script recorded it: only the paths it captured exist; directories list
 * the captured paths directly below them. `users` are the host's user names by uid as the script
 * gathered them (collected.ts; empty for a document without them).
 */
export class CollectedFs implements AuditFs {
  readonly label: string;
  private readonly entries = new Map<string, CollectedEntry>();
  private readonly children = new Map<string, Set<string>>();
  private readonly users: ReadonlyMap<number, string>;

  constructor(label: string, entries: CollectedEntry[], users: ReadonlyMap<number, string> = new Map()) {
    this.label = label;
    this.users = users;
    for (const e of entries) {
      const p = posix.normalize(e.path);
      this.entries.set(p, { ...e, path: p });
      let child = p;
      let parent = posix.dirname(p);
      while (child !== parent) {
        let set = this.children.get(parent);
        if (set === undefined) {
          set = new Set();
          this.children.set(parent, set);
        }
        set.add(posix.basename(child));
        if (!this.entries.has(parent)) {
          this.entries.set(parent, { path: parent, type: 'dir', mode: -1, uid: -1, gid: -1, size: 0 });
        } else if (this.entries.get(parent)?.type !== 'dir') break;
        child = parent;
        parent = posix.dirname(parent);
      }
    }
  }

  private find(path: string, followLast: boolean): CollectedEntry | null {
    let p = posix.normalize('/' + path);
    for (let i = 0; i < 40; i++) {
      const e = this.entries.get(p);
      if (e === undefined) return null;
      if (e.type !== 'symlink' || !followLast || e.target === undefined) return e;
      p = posix.normalize(e.target.startsWith('/') ? e.target : posix.join(posix.dirname(p), e.target));
    }
    return null;
  }

  private static st(e: CollectedEntry): VStat {
    return { type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.size };
  }

  realpath(path: string): string | null {
    return this.find(path, true)?.path ?? null;
  }

  lstat(path: string): VStat | null {
    const e = this.find(path, false);
    return e === null ? null : CollectedFs.st(e);
  }

  stat(path: string): VStat | null {
    const e = this.find(path, true);
    return e === null ? null : CollectedFs.st(e);
  }

  readdir(path: string): string[] | null {
    const e = this.find(path, true);
    if (e === null || e.type !== 'dir') return null;
    return [...(this.children.get(e.path) ?? [])];
  }

  readlink(path: string): string | null {
    return this.find(path, false)?.target ?? null;
  }

  /** `33 (www-data)` from the collected host's names (describeUidFrom), the bare uid when it has none. */
  describeUid(uid: number): string {
    return describeUidFrom(uid, this.users);
  }

  readFile(path: string): ReadResult {
    const e = this.find(path, true);
    if (e === null) return { ok: false, error: 'not in the collected document' };
    if (e.type === 'dir') return { ok: false, error: 'is a directory' };
    if (e.content === undefined) return { ok: false, error: e.skipped ?? 'contents not collected' };
    return { ok: true, data: e.content };
  }
}

/** Adapts an AuditFs to php-ini's IniFileSystem (errors as values, errno-like codes). */
export function iniFs(fs: AuditFs): IniFileSystem {
  const err = (path: string, code: string, text: string) => ({ code, error: `${path}: ${text}` });
  return {
    stat(path) {
      const s = fs.stat(path);
      if (s === null) return err(path, 'ENOENT', 'no such file or directory');
      return { type: s.type === 'file' || s.type === 'dir' ? s.type : 'other', size: s.size, mode: s.mode, uid: s.uid, gid: s.gid };
    },
    lstat(path) {
      const s = fs.lstat(path);
      return s === null ? err(path, 'ENOENT', 'no such file or directory') : { ...s };
    },
    readlink(path) {
      const t = fs.readlink(path);
      return t === null ? err(path, fs.lstat(path) === null ? 'ENOENT' : 'EINVAL', 'not a symbolic link') : t;
    },
    readFile(path) {
      const r = fs.readFile(path);
      if (r.ok) return r.data;
      return err(
        path,
        /too large/.test(r.error) ? 'EFBIG' : /permission/.test(r.error) ? 'EACCES' : /directory/.test(r.error) ? 'EISDIR' : 'EIO',
        r.error,
      );
    },
    readDir(path) {
      const n = fs.readdir(path);
      return n === null ? err(path, fs.stat(path) === null ? 'ENOENT' : 'ENOTDIR', 'not a readable directory') : n;
    },
    realpath(path) {
      const r = fs.realpath(path);
      return r === null ? err(path, 'ELOOP', 'no such file, or a symbolic link loop') : r;
    },
  };
}

/**
 * Expands a glob(3) pattern the way php-fpm's include= does (php-ini expandGlob: `*`, `?`, `[...]`
 * per path component, results sorted, hidden names only when the pattern component starts with `.`).
 */
export function globFs(fs: AuditFs, pattern: string): string[] {
  return expandGlob(iniFs(fs), pattern);
}

/** True when `mode` lets users other than the owner (and group) read: o+r. */
export const otherReadable = (mode: number): boolean => (mode & 0o004) !== 0;
