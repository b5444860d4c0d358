/**
 * The one atomic file write of session-migrate: a reader (PHP, an editor, a deploy tool) sees the old
 * file or the new one, never half of one, and a crash at any point leaves the old file in place.
 *
 * How (POSIX rename(2) semantics; the pattern of write-file-atomic and of SQLite's journal):
 * 1. the new bytes go to a temporary file in the target's own directory (rename(2) is atomic only
 *    within one file system), named `.<name>.<24 random hex digits>.tmp` so nobody can guess it, and
 *    opened with O_CREAT | O_EXCL | O_NOFOLLOW: a file or symbolic link planted at that name makes the
 *    open fail instead of being written through;
 * 2. its owner is set with fchown(2) when asked, its permission bits with fchmod(2) (exactly, whatever
 *    the umask); the bytes are written, its mtime set with futimes(2) when asked, and it is
 *    fsync(2)ed;
 * 3. it is renamed over the target (or, for a file that must not exist yet, link(2)ed to it, which
 *    fails when the name is taken) and the directory is fsync(2)ed, so the new name survives a crash.
 *
 * A symbolic link at the target is refused: rename(2) would replace the link, not the file it points
 * to, and writing through links is how a writer gets tricked into changing files elsewhere.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  futimesSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** Options of writeFileAtomic. */
export interface AtomicWriteOptions {
  /**
   * Permission bits of the new file (`0o7777` is kept, the umask does not apply). Default: the bits
   * of the file being replaced, or 0o600 when there is none.
   */
  mode?: number;
  /**
   * Never replace anything: the write fails with code `EEXIST` when `path` exists (a symbolic link
   * too), checked by link(2) itself, so there is no window in which another file could be lost.
   */
  exclusive?: boolean;
  /**
   * The bytes `path` must still hold when the new file is put in place (read again with O_NOFOLLOW
   * just before the rename). When they differ, nothing is written and the error has code
   * `ECHANGED`: whoever changed the file meanwhile keeps their change.
   */
  expected?: Uint8Array;
  /**
   * The file `path` must still be when the new file is put in place: checked with lstat(2) after the
   * temporary file is written and just before the rename, by device, inode, size, mtime and ctime
   * (any write, truncate, chmod or replacement moves the ctime or the inode). When it differs or is
   * gone, nothing is written and the error has code `ECHANGED`. The check and the rename are two
   * system calls: a writer that could slip in between must be kept out by a lock (lockFd).
   */
  unchangedSince?: Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>;
  /**
   * Owner of the new file, set with fchown(2) before it is put in place (root only: chown(2) of
   * another user's file needs CAP_CHOWN). Default: the process's own user and group.
   */
  owner?: { uid: number; gid: number };
  /**
   * Modification (and access) time of the new file, in milliseconds since the epoch, set with
   * futimes(2) after the bytes are written (e.g. rollback's session files, aged for PHP's GC as Redis
   * would have aged them). Default: the time of the write.
   */
  mtimeMs?: number;
}

/** An error of writeFileAtomic that is not the file system's own: `code` says which. */
export interface AtomicWriteError extends Error {
  /** ELOOP: `path` is a symbolic link; ENOTREG: not a regular file; ECHANGED: not the `expected` bytes. */
  code: 'ELOOP' | 'ENOTREG' | 'ECHANGED';
}

function fail(code: AtomicWriteError['code'], message: string): never {
  throw Object.assign(new Error(message), { code }) as AtomicWriteError;
}

/** The temporary name next to `path`: 96 random bits, so nobody can plant a file or link there in advance. */
function atomicTempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(12).toString('hex')}.tmp`);
}

/**
 * Writes `data` (a string is written as UTF-8) to `path` atomically, as described above.
 *
 * @throws an Error with `code`: the file system's (ENOENT when the directory does not exist,
 *   EACCES, ENOSPC, EEXIST with `exclusive` ...), or ELOOP / ENOTREG / ECHANGED (AtomicWriteError).
 *   Nothing is changed then, and the temporary file is removed. `describeFsError` turns any of them
 *   into one line.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let mode = options.mode;
  const current = lstatOrNull(path);
  if (current !== null) {
    if (options.exclusive === true) throw Object.assign(new Error(`${path} already exists`), { code: 'EEXIST' });
    if (current.isSymbolicLink()) fail('ELOOP', `${path} is a symbolic link; refusing to replace it`);
    if (!current.isFile()) fail('ENOTREG', `${path} is not a regular file`);
    mode ??= current.mode & 0o7777;
  }
  mode ??= 0o600;

  const temp = atomicTempPath(path);
  let fd: number | undefined = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  let placed = false;
  try {
    // chown(2) clears set-user-ID and set-group-ID bits, so the owner goes first.
    if (options.owner !== undefined) fchownSync(fd, options.owner.uid, options.owner.gid);
    fchmodSync(fd, mode);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    if (options.mtimeMs !== undefined) futimesSync(fd, options.mtimeMs / 1000, options.mtimeMs / 1000);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (options.expected !== undefined && !sameBytes(readNoFollow(path), options.expected)) {
      fail('ECHANGED', `${path} changed on disk meanwhile; not replaced`);
    }
    if (options.unchangedSince !== undefined && !isSameFileVersion(lstatOrNull(path), options.unchangedSince)) {
      fail('ECHANGED', `${path} changed on disk meanwhile; not replaced`);
    }
    if (options.exclusive === true) {
      linkSync(temp, path); // EEXIST when the name is taken, whatever it is
      placed = true;
      unlinkSync(temp);
    } else {
      renameSync(temp, path);
      placed = true;
    }
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    if (!placed) removeQuietly(temp);
    throw err;
  }
  fsyncDirectory(dirname(path));
}

/** lstat(2) of `path`, or null when there is nothing there (ENOENT); other errors are thrown. */
export function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The bytes of `path`, refusing a symbolic link (ELOOP) and anything but a regular file. */
function readNoFollow(path: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') fail('ECHANGED', `${path} became a symbolic link meanwhile; not replaced`);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) fail('ECHANGED', `${path} is no longer a regular file; not replaced`);
    const chunks: Buffer[] = [];
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether `now` (an lstat(2) of a path, null when absent) is still the regular file `then` was: same
 * device and inode, same size, mtime and ctime.
 */
export function isSameFileVersion(now: Stats | null, then: Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>): boolean {
  return (
    now !== null &&
    now.isFile() &&
    now.dev === then.dev &&
    now.ino === then.ino &&
    now.size === then.size &&
    now.mtimeMs === then.mtimeMs &&
    now.ctimeMs === then.ctimeMs
  );
}

function sameBytes(a: Buffer | null, b: Uint8Array): boolean {
  return a !== null && a.equals(b);
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // never created, or already gone
  }
}

/** fsync(2) of a directory, so a rename in it survives a crash; file systems that cannot (EINVAL) are let be. */
function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * `mkdir -p`: creates `path` and its missing parents, one mkdir(2) each from the deepest existing
 * ancestor down. Not `mkdirSync(path, { recursive: true })`: Node 20's recursive mkdir loops forever
 * at 100% CPU under a file system that answers ENOENT for a parent that exists (procfs: `--out
 * /proc/nope` never returned); here that ENOENT is thrown as it is.
 * @throws the mkdir(2) error (ENOENT, EACCES, ENOTDIR, EROFS, ...) of the first directory that cannot
 *   be made; nothing is removed that was made before it
 */
export function makeDirectories(path: string): void {
  const missing: string[] = [];
  for (let p = resolve(path); ;) {
    if (statSync(p, { throwIfNoEntry: false }) !== undefined) break; // exists (a file: mkdir below says ENOTDIR)
    missing.push(p);
    const parent = dirname(p);
    if (parent === p) break;
    p = parent;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir);
    } catch (err) {
      // Made meanwhile by someone else: fine when it is a directory.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || statSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) throw err;
    }
  }
}
