/**
 * `keys generate`, `keys id` and `keys ring init | add | rotate | retire` (docs/keys.md). Key ring files are written
 * atomically with mode 0600; only key IDs and lookup IDs are printed, never key material.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, rmSync } from 'node:fs';
import { UserFacingError } from '@session-migrate/common';
import {
  EnvelopeCodec, MAX_KEY_TEXT_BYTES, deriveLookupKey, generateKeyFile, formatKeyRing, keyIdOf, keyRingIds, loadKeyRing, loadSodium, parseKeyText,
  readSecretFile, refuseSymlinkTarget, wipeKeyRing, writeSecretFileAtomic, type KeyProvider, type KeyRing,
} from '@session-migrate/envelope';
import type { Print } from './commands/context.ts';

/** Writes a new master key file (mode 0600, never overwriting) and prints its key ID. */
export async function keysGenerate(args: { out: string }, print: Print): Promise<number> {
  const key = generateKeyFile(args.out);
  try {
    const codec = await EnvelopeCodec.create([key]);
    print(`wrote a new master key to ${args.out} (mode 0600), key ID ${codec.keyId}`);
  } finally {
    key.fill(0);
  }
  print('keep it out of version control and php.ini; PHP reads it through SESSION_MIGRATE_KEY_FILE or SESSION_MIGRATE_KEY');
  return 0;
}

/** Prints the IDs of a key or key ring: lookup ID, current and previous key IDs. */
export async function keysId(args: { key: KeyProvider; json: boolean }, print: Print): Promise<number> {
  const ring = await loadKeyRing(args.key);
  try {
    const ids = keyRingIds(await loadSodium(), ring);
    if (args.json) {
      print(JSON.stringify({ form: ring.form, ...ids }, null, 2));
    } else if (ring.form === 'key') {
      print(`key ID ${ids.currentKeyId}`);
      print(`lookup ID ${ids.lookupId} (derived from this key)`);
    } else {
      print(`lookup ID ${ids.lookupId}`);
      print(`current   key ID ${ids.currentKeyId}`);
      for (const id of ids.previousKeyIds) print(`previous  key ID ${id}`);
    }
    return 0;
  } finally {
    wipeKeyRing(ring);
  }
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
    throw new UserFacingError(`key ring ${path}: is a single key, not a key ring; make a ring from it with 'session-migrate keys ring init --key-file ${path} --out RING'`);
  }
  return ring;
}

async function writeRing(path: string, ring: Pick<KeyRing, 'lookupKey' | 'current' | 'previous'>, replace: boolean): Promise<void> {
  writeSecretFileAtomic(path, formatKeyRing(await loadSodium(), ring), { replace, what: 'key ring' });
}

function printRing(ring: Pick<KeyRing, 'lookupKey' | 'current' | 'previous'>, sodium: Awaited<ReturnType<typeof loadSodium>>, print: Print): void {
  const ids = keyRingIds(sodium, { form: 'ring', ...ring });
  print(`  lookup ID ${ids.lookupId} (unchanged by rotation: Redis key names and the PHP bootstrap's check stay valid)`);
  print(`  current   key ID ${ids.currentKeyId}`);
  for (const id of ids.previousKeyIds) print(`  previous  key ID ${id}`);
}

/**
 * Creates a key ring file (mode 0600, never overwriting): from an existing key or ring (its lookup
 * key is kept, so Redis key names do not change), or, without a key, from a new random master key.
 */
export async function keysRingInit(args: { key?: KeyProvider; out: string }, print: Print): Promise<number> {
  if (args.out === '') throw new UserFacingError('--out: give the path of the key ring file to create');
  const sodium = await loadSodium();
  let ring: KeyRing;
  if (args.key !== undefined) ring = await loadKeyRing(args.key);
  else {
    const current = randomBytes(32);
    ring = { form: 'ring', current, lookupKey: deriveLookupKey(sodium, current), previous: [] };
  }
  try {
    await writeRing(args.out, ring, false);
    print(`wrote key ring ${args.out} (mode 0600)`);
    printRing(ring, sodium, print);
    print('PHP reads it through SESSION_MIGRATE_KEY_RING_FILE; the CLI through --key-ring');
    return 0;
  } finally {
    wipeKeyRing(ring);
  }
}

/** Adds a new random master key as a previous key (readable everywhere before it writes: docs/keys.md). */
export async function keysRingAdd(args: { ring: string }, print: Print): Promise<number> {
  return withRingLock(args.ring, () => ringAdd(args, print));
}

async function ringAdd(args: { ring: string }, print: Print): Promise<number> {
  const sodium = await loadSodium();
  const ring = await readRingForUpdate(args.ring);
  const added = randomBytes(32);
  try {
    const next = { lookupKey: ring.lookupKey, current: ring.current, previous: [added, ...ring.previous] };
    await writeRing(args.ring, next, true);
    const id = keyIdOf(sodium, added);
    print(`added key ID ${id} to ${args.ring} as a previous key (it opens values, it does not seal yet)`);
    printRing(next, sodium, print);
    print(`next: deploy the ring to every PHP host, then 'session-migrate keys ring rotate --key-ring ${args.ring} --to ${id}'`);
    return 0;
  } finally {
    added.fill(0);
    wipeKeyRing(ring);
  }
}

/**
 * Makes a new master key current: a new random key, or with `to` a previous key of the ring (added
 * earlier with `keys ring add`). The old current key becomes previous. Atomic rewrite, mode 0600.
 */
export async function keysRingRotate(args: { ring: string; to?: string }, print: Print): Promise<number> {
  return withRingLock(args.ring, () => ringRotate(args, print));
}

async function ringRotate(args: { ring: string; to?: string }, print: Print): Promise<number> {
  const sodium = await loadSodium();
  const ring = await readRingForUpdate(args.ring);
  let fresh: Buffer | undefined;
  try {
    let current: Buffer;
    let rest: Buffer[];
    if (args.to !== undefined) {
      const i = ring.previous.findIndex((k) => keyIdOf(sodium, k) === args.to);
      if (i < 0) {
        throw new UserFacingError(keyIdOf(sodium, ring.current) === args.to
          ? `key ID ${args.to} is already the current key of ${args.ring}`
          : `key ID ${args.to} is not in ${args.ring} (see 'session-migrate keys id --key-ring ${args.ring}')`);
      }
      current = ring.previous[i]!;
      rest = ring.previous.filter((_, j) => j !== i);
    } else {
      fresh = randomBytes(32);
      current = fresh;
      rest = ring.previous;
    }
    const next = { lookupKey: ring.lookupKey, current, previous: [ring.current, ...rest] };
    await writeRing(args.ring, next, true);
    const id = keyIdOf(sodium, current);
    print(`rotated ${args.ring}: key ID ${id} is now current`);
    printRing(next, sodium, print);
    print(`next: deploy the ring to PHP (SESSION_MIGRATE_KEY_RING_FILE), then 'session-migrate rotate --target URL --key-ring ${args.ring}', then 'session-migrate verify ... --require-key-id ${id}'`);
    return 0;
  } finally {
    fresh?.fill(0);
    wipeKeyRing(ring);
  }
}

/** Removes a previous key from the ring; the current key cannot be retired. */
export async function keysRingRetire(args: { ring: string; keyId: string }, print: Print): Promise<number> {
  if (!/^[0-9a-f]{16}$/.test(args.keyId)) throw new UserFacingError('--key-id must be a key ID: 16 lowercase hex characters (see keys id)');
  return withRingLock(args.ring, () => ringRetire(args, print));
}

async function ringRetire(args: { ring: string; keyId: string }, print: Print): Promise<number> {
  const sodium = await loadSodium();
  const ring = await readRingForUpdate(args.ring);
  try {
    if (keyIdOf(sodium, ring.current) === args.keyId) {
      throw new UserFacingError(`key ID ${args.keyId} is the current key of ${args.ring}; rotate to another key first`);
    }
    const keep = ring.previous.filter((k) => keyIdOf(sodium, k) !== args.keyId);
    if (keep.length === ring.previous.length) throw new UserFacingError(`key ID ${args.keyId} is not in ${args.ring} (see 'session-migrate keys id --key-ring ${args.ring}')`);
    const next = { lookupKey: ring.lookupKey, current: ring.current, previous: keep };
    await writeRing(args.ring, next, true);
    print(`retired key ID ${args.keyId} from ${args.ring}: values still sealed under it no longer open (check first with 'session-migrate verify --require-key-id ${keyIdOf(sodium, ring.current)}')`);
    printRing(next, sodium, print);
    return 0;
  } finally {
    wipeKeyRing(ring);
  }
}
