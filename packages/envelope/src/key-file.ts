/**
 * Master key files: 32 bytes as standard, padded base64 (RFC 4648 section 4), 44 characters plus
 * optional white space. Decoded strictly, as the PHP class does with base64_decode($s, true)
 * (test/fixtures/cases/BUG-22: libsodium.js defaults to URL-safe base64, PHP's default decode is lax).
 */
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { UserFacingError, describeFsError, writeFileAtomic } from '@session-migrate/common';
import { MASTER_KEY_BYTES } from './envelope.ts';
import { isCanonicalBase64 } from './keyring.ts';

const STRICT_BASE64_32 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Decodes key-file text into the 32-byte master key.
 * @throws UserFacingError naming `source` (never echoing the text) when it is not 44 base64 characters.
 */
export function parseMasterKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  if (!STRICT_BASE64_32.test(trimmed)) {
    throw new UserFacingError(
      `${source}: not a session-migrate key (expected ${MASTER_KEY_BYTES} bytes as 44 characters of standard base64; create one with 'session-migrate keys generate --out FILE')`,
    );
  }
  const key = Buffer.from(trimmed, 'base64');
  if (!isCanonicalBase64(key, trimmed)) {
    key.fill(0);
    throw new UserFacingError(
      `${source}: not a session-migrate key (not canonical base64: the last character before '=' has non-zero unused bits; copy the key again or make a new one)`,
    );
  }
  return key;
}

/**
 * Reads a master key file.
 * @throws UserFacingError when the file is missing, unreadable, not a regular file (a FIFO, a
 *   directory), readable or writable by group or others, or malformed. A symlink is followed (secret
 *   mounts are symlinks) and the mode of its target is what counts.
 */
export function readKeyFile(path: string): Buffer {
  const text = readSecretFile(path, 'key file', 4096);
  return parseMasterKey(text, `key file ${path}`);
}

/**
 * Reads a file holding key material (a key file or a key ring file) as latin1 text, with the checks
 * every secret file gets: a regular file (a symlink is followed, secret mounts are symlinks; the
 * target's mode counts), not readable or writable by group or others, at most `maxBytes` bytes.
 * @param what how errors name the file (`key file`, `key ring`).
 * @throws UserFacingError (exit 2) naming the path and the fix, never the contents.
 */
export function readSecretFile(path: string, what: string, maxBytes: number): string {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO put in place of the key file must not hang the tool (fstat refuses it below).
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new UserFacingError(`${what} ${path}: ${describeFsError(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UserFacingError(`${what} ${path}: not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new UserFacingError(
        `${what} ${path}: readable or writable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); fix with 'chmod 600 ${path}'`,
      );
    }
    if (st.size > maxBytes) throw new UserFacingError(`${what} ${path}: too large to be a ${what} (more than ${maxBytes} bytes)`);
    const bytes = readFileSync(fd);
    const text = bytes.toString('latin1');
    bytes.fill(0);
    return text;
  } finally {
    closeSync(fd);
  }
}

/**
 * Refuses to replace a key file or key ring that is a symlink: an atomic rename would replace the
 * link itself with a regular file and leave its target (what PHP reads) unchanged, and writing
 * through links atomically is error-prone. The message names the real path to use instead.
 * A missing `path` passes (nothing to replace).
 * @param what how the message names the file (`key ring`, `key file`).
 * @throws UserFacingError (exit 2) when `path` is a symlink.
 */
export function refuseSymlinkTarget(path: string, what: string): void {
  let isLink = false;
  try {
    isLink = lstatSync(path).isSymbolicLink();
  } catch {
    return;
  }
  if (!isLink) return;
  let real: string | undefined;
  try {
    real = realpathSync(path);
  } catch {
    real = undefined;
  }
  throw new UserFacingError(
    real === undefined
      ? `${what} ${path} is a symlink whose target does not exist; refusing to write through it`
      : `${what} ${path} is a symlink; refusing to replace it (the link would become a file and ${real} would stay unchanged): give the real path ${real}`,
  );
}

/**
 * Writes key material to `path` with mode 0600 through the one atomic write of @session-migrate/common
 * (writeFileAtomic: a temporary file in the same directory, fsynced, renamed over `path`), so a reader
 * sees the old or the new file, never half of one. With `replace: false` an existing `path` (a
 * symlink too) is never overwritten; with `replace: true` a symlink at `path` is refused
 * (refuseSymlinkTarget), and the file that is replaced keeps its owner and group (fchown(2) of the
 * temporary file before the rename, as `sed -i` and editors do): a ring owned by the PHP-FPM user and
 * rotated with sudo must stay readable by PHP, or every `session_start()` fails.
 * @throws UserFacingError when the directory is missing, the file exists (replace: false), `path` is
 *   a symlink (replace: true), its owner cannot be kept (EPERM: run as that user or as root) or the
 *   write fails; the temporary file is removed and `path` is unchanged.
 */
export function writeSecretFileAtomic(path: string, text: string, options: { replace: boolean; what: string }): void {
  if (options.replace) refuseSymlinkTarget(path, options.what);
  const owner = options.replace ? ownerToKeep(path) : undefined;
  const data = Buffer.from(text, 'latin1');
  try {
    writeFileAtomic(path, data, { mode: 0o600, exclusive: !options.replace, ...(owner !== undefined ? { owner } : {}) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (owner !== undefined && e.syscall === 'fchown') {
      throw new UserFacingError(
        `${options.what} ${path}: cannot keep its owner (uid ${owner.uid}, gid ${owner.gid}): ${describeFsError(err)}; run the command as that user or as root (the file is unchanged)`,
      );
    }
    throw secretWriteError(err, path, options.what);
  } finally {
    data.fill(0);
  }
}

/** The owner and group of the regular file at `path` when they are not this process's own, else undefined. */
function ownerToKeep(path: string): { uid: number; gid: number } | undefined {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return undefined;
  }
  if (!st.isFile()) return undefined;
  if (st.uid === process.geteuid?.() && st.gid === process.getegid?.()) return undefined;
  return { uid: st.uid, gid: st.gid };
}

/** The one-line error of a failed key file or key ring write (never the contents). */
function secretWriteError(err: unknown, path: string, what: string, nameTheDirectory = true): UserFacingError {
  const e = err as NodeJS.ErrnoException;
  const dir = dirname(path);
  if (e.code === 'EEXIST') return new UserFacingError(`${what} ${path} already exists; refusing to overwrite it`);
  if (e.code === 'ENOENT') return new UserFacingError(`${what} ${path}: directory ${dir} does not exist; create it first (mode 0700)`);
  // The temporary file could not be created: name the directory, where the permission is missing.
  if (nameTheDirectory && e.syscall === 'open' && e.path !== path)
    return new UserFacingError(`${what} ${path}: cannot create a file in ${dir}: ${describeFsError(err)}`);
  return new UserFacingError(`${what} ${path}: ${describeFsError(err)}`);
}

/**
 * Writes a new random master key to `path` with mode 0600, refusing to overwrite anything.
 * @returns the new key (callers only use it to print its key ID).
 * @throws UserFacingError when the path exists or cannot be created.
 */
export function generateKeyFile(path: string): Buffer {
  if (path === '') throw new UserFacingError('--out: give the path of the key file to create');
  const key = randomBytes(MASTER_KEY_BYTES);
  const text = Buffer.from(key.toString('base64') + '\n', 'latin1');
  try {
    writeFileAtomic(path, text, { mode: 0o600, exclusive: true });
  } catch (err) {
    throw secretWriteError(err, path, 'key file', false);
  } finally {
    text.fill(0);
  }
  return key;
}
