/**
 * `keys generate`, `keys id` and `keys ring init | add | rotate | retire` (docs/keys.md): call the
 * key-management use cases of @session-migrate/envelope (key-management.ts) and print their reports.
 * Only key IDs and lookup IDs are printed, never key material.
 */
import {
  addRingKey,
  describeKeys,
  generateMasterKey,
  initKeyRing,
  retireRingKey,
  rotateKeyRing,
  type KeyProvider,
  type KeyRingIds,
} from '@session-migrate/envelope';
import type { Print } from './commands/context.ts';

/** Writes a new master key file (mode 0600, never overwriting) and prints its key ID. */
export async function keysGenerate(args: { out: string }, print: Print): Promise<number> {
  const report = await generateMasterKey({ out: args.out });
  print(`wrote a new master key to ${report.path} (mode 0600), key ID ${report.keyId}`);
  print('keep it out of version control and php.ini; PHP reads it through SESSION_MIGRATE_KEY_FILE or SESSION_MIGRATE_KEY');
  return 0;
}

/** Prints the IDs of a key or key ring: lookup ID, current and previous key IDs. */
export async function keysId(args: { key: KeyProvider; json: boolean }, print: Print): Promise<number> {
  const ids = await describeKeys(args.key);
  if (args.json) {
    print(JSON.stringify(ids, null, 2));
  } else if (ids.form === 'key') {
    print(`key ID ${ids.currentKeyId}`);
    print(`lookup ID ${ids.lookupId} (derived from this key)`);
  } else {
    print(`lookup ID ${ids.lookupId}`);
    print(`current   key ID ${ids.currentKeyId}`);
    for (const id of ids.previousKeyIds) print(`previous  key ID ${id}`);
  }
  return 0;
}

function printRing(ids: KeyRingIds, print: Print): void {
  print(`  lookup ID ${ids.lookupId} (unchanged by rotation: Redis key names and the PHP bootstrap's check stay valid)`);
  print(`  current   key ID ${ids.currentKeyId}`);
  for (const id of ids.previousKeyIds) print(`  previous  key ID ${id}`);
}

/** Creates a key ring file (mode 0600, never overwriting) from a key or ring, or from a new key. */
export async function keysRingInit(args: { key?: KeyProvider; out: string }, print: Print): Promise<number> {
  const report = await initKeyRing(args);
  print(`wrote key ring ${report.path} (mode 0600)`);
  printRing(report.ids, print);
  print('PHP reads it through SESSION_MIGRATE_KEY_RING_FILE; the CLI through --key-ring');
  return 0;
}

/** Adds a new random master key as a previous key (readable everywhere before it writes: docs/keys.md). */
export async function keysRingAdd(args: { ring: string }, print: Print): Promise<number> {
  const report = await addRingKey(args);
  print(`added key ID ${report.addedKeyId} to ${args.ring} as a previous key (it opens values, it does not seal yet)`);
  printRing(report.ids, print);
  print(
    `next: deploy the ring to every PHP host, then 'session-migrate keys ring rotate --key-ring ${args.ring} --to ${report.addedKeyId}'`,
  );
  return 0;
}

/** Makes a new random key (or `to`, a previous key) current; the old current key becomes previous. */
export async function keysRingRotate(args: { ring: string; to?: string }, print: Print): Promise<number> {
  const report = await rotateKeyRing(args);
  const id = report.ids.currentKeyId;
  print(`rotated ${args.ring}: key ID ${id} is now current`);
  printRing(report.ids, print);
  print(
    `next: deploy the ring to PHP (SESSION_MIGRATE_KEY_RING_FILE), then 'session-migrate rotate --target URL --key-ring ${args.ring}', then 'session-migrate verify ... --require-key-id ${id}'`,
  );
  return 0;
}

/** Removes a previous key from the ring; the current key cannot be retired. */
export async function keysRingRetire(args: { ring: string; keyId: string }, print: Print): Promise<number> {
  const report = await retireRingKey(args);
  print(
    `retired key ID ${args.keyId} from ${args.ring}: values still sealed under it no longer open (check first with 'session-migrate verify --require-key-id ${report.ids.currentKeyId}')`,
  );
  printRing(report.ids, print);
  return 0;
}
