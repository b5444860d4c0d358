/**
 * The key-management use cases behind `keys generate`, `keys id` and `keys ring init | add | rotate |
 * retire` (docs/keys.md): each does the work and returns a typed report, printing nothing. Reports
 * hold key IDs and lookup IDs only (16 hex characters each, safe to print: docs/envelope.md), never
 * key material. Key and key ring files are written atomically with mode 0600; every key buffer read
 * or drawn here is zeroed before the function returns.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, rmSync } from 'node:fs';
import { UserFacingError } from '@session-migrate/common';
import { EnvelopeCodec } from './envelope.ts';
import { generateKeyFile, readSecretFile, refuseSymlinkTarget, writeSecretFileAtomic } from './key-file.ts';
import {
  deriveLookupKey,
  formatKeyRing,
  keyIdOf,
  keyRingIds,
  parseKeyText,
  wipeKeyRing,
  type KeyRing,
  type KeyRingIds,
} from './keyring.ts';
import { MAX_KEY_TEXT_BYTES, loadKeyRing, type KeyProvider } from './providers.ts';
import { loadSodium } from './sodium.ts';

/** What `generateMasterKey` wrote. */
export interface GenerateKeyReport {
  /** The key file created (mode 0600). */
  path: string;
  /** Its key ID: 16 lowercase hex characters. */
  keyId: string;
}

/**
 * Writes a new random 32-byte master key (base64) to `out`, mode 0600, never overwriting.
 * @throws UserFacingError when `out` exists, is a symlink, or cannot be written.
 */
export async function generateMasterKey(options: { out: string }): Promise<GenerateKeyReport> {
  const key = generateKeyFile(options.out);
  try {
    const codec = await EnvelopeCodec.create([key]);
    try {
      return { path: options.out, keyId: codec.keyId };
    } finally {
      codec.wipe();
    }
  } finally {
    key.fill(0);
  }
}

/** The IDs of a key or key ring (`keys id`): `form` 'key' for a single key file, 'ring' for a ring. */
export interface KeyIdsReport extends KeyRingIds {
  form: KeyRing['form'];
}

/**
 * Reads a key or key ring and returns its IDs (a single key has a lookup ID derived from it and no
 * previous keys).
 * @throws UserFacingError when the key cannot be loaded (missing file, bad text, command failure).
 */
export async function describeKeys(key: KeyProvider): Promise<KeyIdsReport> {
  const ring = await loadKeyRing(key);
  try {
    return { form: ring.form, ...keyRingIds(await loadSodium(), ring) };
  } finally {
    wipeKeyRing(ring);
  }
}

/** What a `keys ring` change left in the ring file. */
export interface KeyRingReport {
  /** The ring file written. */
  path: string;
  /** The ring's IDs after the change; `lookupId` never changes (Redis key names stay valid). */
  ids: KeyRingIds;
}

/**
 * Runs a read-modify-write of a ring file under `RING.lock` (created O_EXCL, removed afterwards), so
 * two `keys ring` commands at once cannot lose one's change.
 * @throws UserFacingError when `path` is a symlink (the message names the real path to use), or the
 *   lock exists (another command runs, or one crashed: the message says which file to remove).
 */
async function withRingLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  // Checked before the lock and again when writing (writeSecretFileAtomic): a ring behind a symlink
  // would be replaced by a file while PHP keeps reading the unchanged target.
  refuseSymlinkTarget(path, 'key ring');
  const lock = `${path}.lock`;
  let fd: number;
  try {
    fd = openSync(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserFacingError(`key ring ${path} is locked by ${lock}: another keys ring command is running; if none is, remove ${lock}`);
    }
    throw new UserFacingError(`key ring ${path}: cannot create ${lock}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  closeSync(fd);
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Reads a key ring file for an in-place change (a single key file is refused: make a ring first). */
async function readRingForUpdate(path: string): Promise<KeyRing> {
  const ring = parseKeyText(await loadSodium(), readSecretFile(path, 'key ring', MAX_KEY_TEXT_BYTES), `key ring ${path}`);
  if (ring.form !== 'ring') {
    wipeKeyRing(ring);
    throw new UserFacingError(
      `key ring ${path}: is a single key, not a key ring; make a ring from it with 'session-migrate keys ring init --key-file ${path} --out RING'`,
    );
  }
  return ring;
}

type RingKeys = Pick<KeyRing, 'lookupKey' | 'current' | 'previous'>;

/** Writes the ring atomically (mode 0600) and returns its IDs. */
async function writeRing(path: string, ring: RingKeys, replace: boolean): Promise<KeyRingReport> {
  const sodium = await loadSodium();
  writeSecretFileAtomic(path, formatKeyRing(sodium, ring), { replace, what: 'key ring' });
  return { path, ids: keyRingIds(sodium, { form: 'ring', ...ring }) };
}

/**
 * Creates a key ring file at `out` (mode 0600, never overwriting): from an existing key or ring (its
 * lookup key is kept, so Redis key names do not change), or, without `key`, from a new random master key.
 * @throws UserFacingError for an empty `out`, an existing `out`, or a key that cannot be loaded.
 */
export async function initKeyRing(options: { key?: KeyProvider; out: string }): Promise<KeyRingReport> {
  if (options.out === '') throw new UserFacingError('--out: give the path of the key ring file to create');
  const sodium = await loadSodium();
  let ring: KeyRing;
  if (options.key !== undefined) ring = await loadKeyRing(options.key);
  else {
    const current = randomBytes(32);
    ring = { form: 'ring', current, lookupKey: deriveLookupKey(sodium, current), previous: [] };
  }
  try {
    return await writeRing(options.out, ring, false);
  } finally {
    wipeKeyRing(ring);
  }
}

/** `addRingKey`'s report: the ring, and the key ID of the key added as a previous key. */
export interface AddRingKeyReport extends KeyRingReport {
  addedKeyId: string;
}

/**
 * Adds a new random master key to the ring file as a previous key: it opens values and seals nothing
 * until a rotate makes it current (readable everywhere before it writes: docs/keys.md).
 * @throws UserFacingError when the ring is locked, a symlink, a single key, or unreadable.
 */
export async function addRingKey(options: { ring: string }): Promise<AddRingKeyReport> {
  return withRingLock(options.ring, async () => {
    const sodium = await loadSodium();
    const ring = await readRingForUpdate(options.ring);
    const added = randomBytes(32);
    try {
      const report = await writeRing(
        options.ring,
        { lookupKey: ring.lookupKey, current: ring.current, previous: [added, ...ring.previous] },
        true,
      );
      return { ...report, addedKeyId: keyIdOf(sodium, added) };
    } finally {
      added.fill(0);
      wipeKeyRing(ring);
    }
  });
}

/**
 * Makes a new master key current: a new random key, or with `to` (a key ID) a previous key of the ring
 * (added earlier with `addRingKey`). The old current key becomes the first previous key. Atomic
 * rewrite, mode 0600. The report's `ids.currentKeyId` is the new current key.
 * @throws UserFacingError when `to` is not 16 lowercase hex characters, not a previous key of the
 *   ring (or is already current), or the ring is locked, a symlink, a single key, or unreadable.
 */
export async function rotateKeyRing(options: { ring: string; to?: string }): Promise<KeyRingReport> {
  // Checked before it is repeated in any message: a key pasted here by mistake must not be echoed.
  if (options.to !== undefined && !/^[0-9a-f]{16}$/.test(options.to))
    throw new UserFacingError('--to must be a key ID: 16 lowercase hex characters (see keys id)');
  return withRingLock(options.ring, async () => {
    const sodium = await loadSodium();
    const ring = await readRingForUpdate(options.ring);
    let fresh: Buffer | undefined;
    try {
      let current: Buffer;
      let rest: Buffer[];
      if (options.to !== undefined) {
        const i = ring.previous.findIndex((k) => keyIdOf(sodium, k) === options.to);
        if (i < 0) {
          throw new UserFacingError(
            keyIdOf(sodium, ring.current) === options.to
              ? `key ID ${options.to} is already the current key of ${options.ring}`
              : `key ID ${options.to} is not in ${options.ring} (see 'session-migrate keys id --key-ring ${options.ring}')`,
          );
        }
        current = ring.previous[i]!;
        rest = ring.previous.filter((_, j) => j !== i);
      } else {
        fresh = randomBytes(32);
        current = fresh;
        rest = ring.previous;
      }
      return await writeRing(options.ring, { lookupKey: ring.lookupKey, current, previous: [ring.current, ...rest] }, true);
    } finally {
      fresh?.fill(0);
      wipeKeyRing(ring);
    }
  });
}

/**
 * Removes the previous key `keyId` from the ring file; the current key cannot be retired. Values
 * still sealed under the retired key no longer open afterwards (check first with verify --require-key-id).
 * @throws UserFacingError when `keyId` is not 16 lowercase hex characters, is the current key, is
 *   not in the ring, or the ring is locked, a symlink, a single key, or unreadable.
 */
export async function retireRingKey(options: { ring: string; keyId: string }): Promise<KeyRingReport> {
  if (!/^[0-9a-f]{16}$/.test(options.keyId))
    throw new UserFacingError('--key-id must be a key ID: 16 lowercase hex characters (see keys id)');
  return withRingLock(options.ring, async () => {
    const sodium = await loadSodium();
    const ring = await readRingForUpdate(options.ring);
    try {
      if (keyIdOf(sodium, ring.current) === options.keyId) {
        throw new UserFacingError(`key ID ${options.keyId} is the current key of ${options.ring}; rotate to another key first`);
      }
      const keep = ring.previous.filter((k) => keyIdOf(sodium, k) !== options.keyId);
      if (keep.length === ring.previous.length)
        throw new UserFacingError(
          `key ID ${options.keyId} is not in ${options.ring} (see 'session-migrate keys id --key-ring ${options.ring}')`,
        );
      return await writeRing(options.ring, { lookupKey: ring.lookupKey, current: ring.current, previous: keep }, true);
    } finally {
      wipeKeyRing(ring);
    }
  });
}
