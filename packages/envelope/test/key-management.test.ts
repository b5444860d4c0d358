/**
 * The key-management use cases (src/key-management.ts) called directly: their reports carry the IDs
 * that are in the files, the lookup ID never changes, files are mode 0600, bad input is refused
 * with a UserFacingError and leaves the ring as it was.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserFacingError } from '@session-migrate/common';
import {
  addRingKey,
  describeKeys,
  generateMasterKey,
  initKeyRing,
  keyRingIds,
  loadKeyRing,
  loadSodium,
  parseKeyText,
  retireRingKey,
  rotateKeyRing,
  type KeyProvider,
} from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sm-key-management-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sodium = await loadSodium();
const idsOf = (path: string) => keyRingIds(sodium, parseKeyText(sodium, readFileSync(path, 'latin1'), path));

describe('key-management use cases', () => {
  it('generateMasterKey writes a 0600 key file and reports its key ID; describeKeys reads the same IDs back', async () => {
    const out = join(dir, 'master.key');
    const report = await generateMasterKey({ out });
    expect(report.path).toBe(out);
    expect(report.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(report.keyId).toBe(idsOf(out).currentKeyId);
    expect(await describeKeys({ kind: 'file', path: out })).toEqual({ form: 'key', ...idsOf(out) });
    await expect(generateMasterKey({ out })).rejects.toThrow(UserFacingError);
  });

  it('initKeyRing, addRingKey, rotateKeyRing and retireRingKey report what they wrote', async () => {
    const key = join(dir, 'k2');
    const single = (await generateMasterKey({ out: key })).keyId;
    const ring = join(dir, 'ring');
    const init = await initKeyRing({ key: { kind: 'file', path: key }, out: ring });
    expect(init).toEqual({ path: ring, ids: idsOf(ring) });
    expect(init.ids.currentKeyId).toBe(single);
    expect(statSync(ring).mode & 0o777).toBe(0o600);

    const added = await addRingKey({ ring });
    expect(added.ids).toEqual(idsOf(ring));
    expect(added.ids.previousKeyIds).toEqual([added.addedKeyId]);

    const rotated = await rotateKeyRing({ ring, to: added.addedKeyId });
    expect(rotated.ids).toEqual({ lookupId: init.ids.lookupId, currentKeyId: added.addedKeyId, previousKeyIds: [single] });
    expect(idsOf(ring)).toEqual(rotated.ids);

    const fresh = await rotateKeyRing({ ring });
    expect(fresh.ids.lookupId).toBe(init.ids.lookupId);
    expect(fresh.ids.previousKeyIds).toEqual([added.addedKeyId, single]);

    const retired = await retireRingKey({ ring, keyId: single });
    expect(retired.ids).toEqual({ ...fresh.ids, previousKeyIds: [added.addedKeyId] });
    expect(await describeKeys({ kind: 'file', path: ring })).toEqual({ form: 'ring', ...retired.ids });
  });

  it('refuses bad changes with one-line errors and leaves the ring unchanged', async () => {
    const ring = join(dir, 'ring2');
    const { ids } = await initKeyRing({ out: ring });
    expect(ids.previousKeyIds).toEqual([]);
    const before = readFileSync(ring, 'latin1');
    await expect(retireRingKey({ ring, keyId: ids.currentKeyId })).rejects.toThrow(/is the current key/);
    await expect(retireRingKey({ ring, keyId: 'XYZ' })).rejects.toThrow(/16 lowercase hex/);
    await expect(rotateKeyRing({ ring, to: ids.currentKeyId })).rejects.toThrow(/already the current key/);
    await expect(rotateKeyRing({ ring, to: '0123456789abcdef' })).rejects.toThrow(/is not in/);
    await expect(initKeyRing({ out: '' })).rejects.toThrow(/--out/);
    writeFileSync(`${ring}.lock`, '');
    await expect(addRingKey({ ring })).rejects.toThrow(/is locked by/);
    rmSync(`${ring}.lock`);
    expect(readFileSync(ring, 'latin1')).toBe(before);
    await expect(addRingKey({ ring: join(dir, 'master.key') })).rejects.toThrow(/is a single key, not a key ring/);
  });
});

describe('ring changes keep what PHP relies on', () => {
  // A ring owned by the PHP-FPM user and changed with sudo: replaced by a root-owned 0600 file, PHP
  // could no longer read it and every session_start() would fail.
  it.skipIf(process.geteuid?.() !== 0)('add, rotate and retire keep the owner and group of the ring file they replace', async () => {
    const ring = join(dir, 'owned-ring');
    const { ids } = await initKeyRing({ out: ring });
    chownSync(ring, 65534, 65534);
    const added = await addRingKey({ ring });
    expect(statSync(ring)).toMatchObject({ uid: 65534, gid: 65534 });
    await rotateKeyRing({ ring, to: added.addedKeyId });
    expect(statSync(ring)).toMatchObject({ uid: 65534, gid: 65534 });
    await retireRingKey({ ring, keyId: ids.currentKeyId });
    expect(statSync(ring)).toMatchObject({ uid: 65534, gid: 65534 });
    expect(statSync(ring).mode & 0o777).toBe(0o600);
    expect(idsOf(ring)).toEqual({ lookupId: ids.lookupId, currentKeyId: added.addedKeyId, previousKeyIds: [] });
  });

  it('rotate --to refuses anything but a key ID before naming it (a pasted key is not echoed)', async () => {
    const ring = join(dir, 'ring-to');
    await initKeyRing({ out: ring });
    const before = readFileSync(ring, 'latin1');
    const pasted = Buffer.alloc(32, 0x5a).toString('base64');
    let error: unknown;
    try {
      await rotateKeyRing({ ring, to: pasted });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UserFacingError);
    expect((error as Error).message).toBe('--to must be a key ID: 16 lowercase hex characters (see keys id)');
    expect(readFileSync(ring, 'latin1')).toBe(before);
  });

  it('loadKeyRing refuses a provider of an unknown kind (JavaScript or JSON callers) instead of returning undefined', async () => {
    await expect(loadKeyRing({ kind: 'key', path: Buffer.alloc(32).toString('base64') } as unknown as KeyProvider)).rejects.toThrow(
      new UserFacingError("unknown key provider: its 'kind' must be 'file', 'ring', 'env' or 'command'"),
    );
  });
});
