/**
 * File access for the ini loader, confined to a `root` directory (auditing a copied or mounted
 * filesystem with `--root DIR`). Paths given to an IniFileSystem are the paths PHP would see
 * (absolute, e.g. /etc/php/8.2/cli/php.ini); the root-confined implementation resolves every symlink
 * itself, component by component, interpreting absolute link targets relative to the root and
 * clamping `..` at the root, so a link can never lead outside it. More than 40 link hops is ELOOP
 * (the Linux limit, path_resolution(7)). Errors are returned as values, never thrown.
 */
import { closeSync, constants as fsc, fstatSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { posix } from 'node:path';

/** A failed file operation: `code` is the errno name (ENOENT, EACCES, ELOOP, EISDIR, EFBIG, ...). */
export interface FsError {
  error: string;
  code: string;
}
export interface FsStat {
  /** 'symlink' only from lstat(). */
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Bytes. */
  size: number;
  /** Permission bits and type as st_mode. */
  mode: number;
  uid: number;
  gid: number;
}

/**
 * What the loader (and the audit) needs from a filesystem. Every method follows symlinks (inside the
 * root), except lstat() and readlink(), which look at the last component itself.
 */
export interface IniFileSystem {
  stat(path: string): FsStat | FsError;
  /** lstat(2): like stat(), but a symbolic link as the last component is reported as type 'symlink'. */
  lstat(path: string): FsStat | FsError;
  /** readlink(2): the target text of a symbolic link (as stored, not resolved); EINVAL when not a link. */
  readlink(path: string): string | FsError;
  readFile(path: string): Uint8Array | FsError;
  /** Entry names (no '.' / '..'), unsorted. */
  readDir(path: string): string[] | FsError;
  /** The path with every symlink resolved (still a path as PHP sees it, i.e. inside the root). */
  realpath(path: string): string | FsError;
}

export function isFsError(v: unknown): v is FsError {
  return typeof v === 'object' && v !== null && 'code' in v && 'error' in v && !(v instanceof Uint8Array);
}

function errOf(e: unknown, path: string): FsError {
  const code = (e as NodeJS.ErrnoException)?.code ?? 'EIO';
  const text: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    ELOOP: 'too many levels of symbolic links',
    ENOTDIR: 'not a directory',
    EISDIR: 'is a directory',
    EFBIG: 'file too large',
  };
  return { code, error: `${path}: ${text[code] ?? code}` };
}

export interface RootFsOptions {
  /** Directory that stands for `/` (default '/': the live system). */
  root?: string;
  /** Largest file readFile accepts, in bytes (default 256 MiB); bigger gives EFBIG. */
  maxFileBytes?: number;
}

/** The disk path of virtual path `virt` (absolute, as PHP sees it) under `root`. */
function onDiskPath(root: string, virt: string): string {
  return root === '/' ? virt : root + virt;
}

/**
 * Resolves `path` inside `root`, component by component: absolute link targets restart at the root,
 * `..` is clamped at it, more than 40 link hops is ELOOP. Returns the virtual path with no symlink left.
 */
function resolveInRoot(root: string, path: string): string | FsError {
  const pending = posix.resolve('/', path).split('/').filter(Boolean);
  const cur: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      cur.pop();
      continue;
    }
    const virt = '/' + [...cur, name].join('/');
    let st;
    try {
      st = lstatSync(onDiskPath(root, virt));
    } catch (e) {
      return errOf(e, path);
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return { code: 'ELOOP', error: `${path}: too many levels of symbolic links` };
      let target: string;
      try {
        target = readlinkSync(onDiskPath(root, virt));
      } catch (e) {
        return errOf(e, path);
      }
      if (target.startsWith('/')) cur.length = 0;
      pending.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    if (pending.length > 0 && !st.isDirectory()) return { code: 'ENOTDIR', error: `${path}: not a directory` };
    cur.push(name);
  }
  return '/' + cur.join('/');
}

/** Resolves every component but the last (lstat/readlink semantics); the last is kept as named. */
function resolveParentInRoot(root: string, path: string): string | FsError {
  const abs = posix.resolve('/', path);
  const base = posix.basename(abs);
  if (abs === '/') return '/';
  const dir = resolveInRoot(root, posix.dirname(abs));
  if (typeof dir !== 'string') return dir;
  return dir === '/' ? '/' + base : `${dir}/${base}`;
}

function toStat(s: {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  size: number;
  mode: number;
  uid: number;
  gid: number;
}): FsStat {
  return {
    type: s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'other',
    size: s.size,
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
  };
}

/** lstat(2) of `disk` (already resolved), errors named by `path`. */
function lstatAt(disk: string, path: string): FsStat | FsError {
  try {
    return toStat(lstatSync(disk));
  } catch (e) {
    return errOf(e, path);
  }
}

/**
 * Reads the regular file at `disk` (already resolved; O_NOFOLLOW, O_NONBLOCK so a FIFO cannot
 * block), at most `maxBytes`: EISDIR, EINVAL (not a regular file), EFBIG as values.
 */
function readRegularFile(disk: string, path: string, maxBytes: number): Uint8Array | FsError {
  let fd: number;
  try {
    fd = openSync(disk, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (e) {
    return errOf(e, path);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) return { code: 'EISDIR', error: `${path}: is a directory` };
    if (!st.isFile()) return { code: 'EINVAL', error: `${path}: not a regular file` };
    if (st.size > maxBytes) return { code: 'EFBIG', error: `${path}: file too large (${st.size} bytes, limit ${maxBytes})` };
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, off);
  } catch (e) {
    return errOf(e, path);
  } finally {
    closeSync(fd);
  }
}

/** An IniFileSystem over the real disk, confined to `root`. */
export function createRootFs(opts: RootFsOptions = {}): IniFileSystem {
  const root = posix.resolve(opts.root ?? '/');
  const maxBytes = opts.maxFileBytes ?? 256 * 1024 * 1024;
  const onDisk = (virt: string): string => onDiskPath(root, virt);
  const resolve = (path: string): string | FsError => resolveInRoot(root, path);
  const resolveParent = (path: string): string | FsError => resolveParentInRoot(root, path);

  return {
    realpath: resolve,
    stat(path) {
      const r = resolve(path);
      return typeof r !== 'string' ? r : lstatAt(onDisk(r), path);
    },
    lstat(path) {
      const r = resolveParent(path);
      return typeof r !== 'string' ? r : lstatAt(onDisk(r), path);
    },
    readlink(path) {
      const r = resolveParent(path);
      if (typeof r !== 'string') return r;
      try {
        return readlinkSync(onDisk(r));
      } catch (e) {
        if ((e as NodeJS.ErrnoException)?.code === 'EINVAL') return { code: 'EINVAL', error: `${path}: not a symbolic link` };
        return errOf(e, path);
      }
    },
    readFile(path) {
      const r = resolve(path);
      return typeof r !== 'string' ? r : readRegularFile(onDisk(r), path, maxBytes);
    },
    readDir(path) {
      const r = resolve(path);
      if (typeof r !== 'string') return r;
      try {
        return readdirSync(onDisk(r));
      } catch (e) {
        return errOf(e, path);
      }
    },
  };
}

/** True when `root` exists and is a directory (loadConfiguration reports a missing root). */
export function rootExists(root: string): boolean {
  try {
    return statSync(root).isDirectory();
  } catch {
    return false;
  }
}
