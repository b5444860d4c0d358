/**
 * The filesystem the audit reads, behind one small interface so the same analysis runs on the live
 * host, on a mounted or copied root (`--root DIR`) and on a document written by the collect script
 * (`--from-collected`). Paths are always the paths as the audited host sees them (`/etc/php/8.2/...`);
 * a root filesystem maps them below its root and never lets a path or a symbolic link escape it.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { describeFsError } from '@session-migrate/common';

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
}

function toStat(s: import('node:fs').Stats): VStat {
  const type = s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'other';
  return { type, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, size: s.size };
}

/**
 * A real filesystem seen through `root` ("/" for the live host). Symbolic links are resolved by hand,
 * component by component, against the root: an absolute target means root + target, `..` never climbs
 * above the root, and more than 40 links in one lookup is a loop (ELOOP, as Linux does).
 */
export class RootFs implements AuditFs {
  readonly label: string;
  private readonly root: string;

  /** @param root an existing directory; "/" for the live host. */
  constructor(root: string) {
    this.root = posix.resolve(root);
    this.label = this.root === '/' ? 'host' : `root ${this.root}`;
  }

  /** Host path of an audited path, after resolving symlinks inside the root; null if missing or looping. */
  private resolve(path: string, followLast: boolean): string | null {
    const parts = posix.normalize('/' + path).split('/').filter((p) => p !== '');
    const done: string[] = [];
    let links = 0;
    while (parts.length > 0) {
      const part = parts.shift() as string;
      if (part === '.') continue;
      if (part === '..') { done.pop(); continue; }
      const real = this.hostPath(done.concat(part));
      let st;
      try { st = lstatSync(real); } catch { return parts.length === 0 ? real : null; }
      if (st.isSymbolicLink() && (parts.length > 0 || followLast)) {
        if (++links > 40) return null;
        let target: string;
        try { target = readlinkSync(real); } catch { return null; }
        if (target.startsWith('/')) done.length = 0;
        parts.unshift(...target.split('/').filter((p) => p !== ''));
        continue;
      }
      done.push(part);
    }
    return this.hostPath(done);
  }

  private hostPath(parts: string[]): string {
    return this.root === '/' ? '/' + parts.join('/') : posix.join(this.root, ...parts);
  }

  realpath(path: string): string | null {
    const real = this.resolve(path, true);
    if (real === null) return null;
    if (this.root === '/') return real;
    return real === this.root ? '/' : real.startsWith(this.root + '/') ? real.slice(this.root.length) : null;
  }

  lstat(path: string): VStat | null {
    const real = this.resolve(path, false);
    if (real === null) return null;
    try { return toStat(lstatSync(real)); } catch { return null; }
  }

  stat(path: string): VStat | null {
    const real = this.resolve(path, true);
    if (real === null) return null;
    try { return toStat(lstatSync(real)); } catch { return null; }
  }

  readdir(path: string): string[] | null {
    const real = this.resolve(path, true);
    if (real === null) return null;
    try { return readdirSync(real); } catch { return null; }
  }

  readlink(path: string): string | null {
    const real = this.resolve(path, false);
    if (real === null) return null;
    try { return readlinkSync(real); } catch { return null; }
  }

  readFile(path: string): ReadResult {
    const real = this.resolve(path, true);
    if (real === null) return { ok: false, error: 'no such file, or a symbolic link loop or escape' };
    let fd: number;
    try {
      // O_NOFOLLOW: the path was resolved above; a link swapped in since is refused, not followed.
      fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      return { ok: false, error: describeFsError(err) };
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return { ok: false, error: st.isDirectory() ? 'is a directory' : 'not a regular file' };
      if (st.size > MAX_READ_BYTES) return { ok: false, error: `too large (${st.size} bytes, limit ${MAX_READ_BYTES})` };
      const buf = Buffer.alloc(st.size);
      let off = 0;
      while (off < buf.length) {
        const n = readSync(fd, buf, off, buf.length - off, off);
        if (n === 0) break;
        off += n;
      }
      return { ok: true, data: buf.subarray(0, off) };
    } catch (err) {
      return { ok: false, error: describeFsError(err) };
    } finally {
      closeSync(fd);
    }
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
 * the captured paths directly below them.
 */
export class CollectedFs implements AuditFs {
  readonly label: string;
  private readonly entries = new Map<string, CollectedEntry>();
  private readonly children = new Map<string, Set<string>>();

  constructor(label: string, entries: CollectedEntry[]) {
    this.label = label;
    for (const e of entries) {
      const p = posix.normalize(e.path);
      this.entries.set(p, { ...e, path: p });
      let child = p;
      let parent = posix.dirname(p);
      while (child !== parent) {
        let set = this.children.get(parent);
        if (set === undefined) { set = new Set(); this.children.set(parent, set); }
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

  readFile(path: string): ReadResult {
    const e = this.find(path, true);
    if (e === null) return { ok: false, error: 'not in the collected document' };
    if (e.type === 'dir') return { ok: false, error: 'is a directory' };
    if (e.content === undefined) return { ok: false, error: e.skipped ?? 'contents not collected' };
    return { ok: true, data: e.content };
  }
}

/**
 * Expands a glob(3) pattern the way php-fpm's include= does (`*`, `?`, `[...]` per path component,
 * results sorted, hidden names only when the pattern component starts with `.`).
 */
export function globFs(fs: AuditFs, pattern: string): string[] {
  const parts = posix.normalize(pattern).split('/').filter((p) => p !== '');
  let current = ['/'];
  for (const part of parts) {
    const next: string[] = [];
    if (!/[*?[]/.test(part)) {
      for (const dir of current) {
        const p = posix.join(dir, part);
        if (fs.lstat(p) !== null) next.push(p);
      }
    } else {
      const re = globToRegExp(part);
      for (const dir of current) {
        const names = fs.readdir(dir) ?? [];
        for (const n of names.sort()) {
          if (n.startsWith('.') && !part.startsWith('.')) continue;
          if (re.test(n)) next.push(posix.join(dir, n));
        }
      }
    }
    current = next;
  }
  return current.sort();
}

function globToRegExp(part: string): RegExp {
  let re = '^';
  for (let i = 0; i < part.length; i++) {
    const c = part[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = part.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = part.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

/** True when `mode` lets users other than the owner (and group) read: o+r. */
export const otherReadable = (mode: number): boolean => (mode & 0o004) !== 0;
