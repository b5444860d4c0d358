/**
 * `keys id` and `keys ring init | add | rotate | retire` (docs/keys.md), run in-process on real
 * files: the lookup ID never changes, keys move between current and previous as documented, files
 * stay mode 0600, and concurrent or invalid changes are refused with one-line errors.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSodium, parseKeyText, keyRingIds, generateKeyFile } from '@session-migrate/envelope';
import { keysId, keysRingAdd, keysRingInit, keysRingRetire, keysRingRotate } from '../src/commands-keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'sm-keys-ring-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sodium = await loadSodium();
const idsOf = (path: string) => keyRingIds(sodium, parseKeyText(sodium, readFileSync(path, 'latin1'), path));
const quiet = () => undefined;

describe('keys ring', () => {
  it('init keeps the lookup ID of the key it starts from; add, rotate --to, rotate and retire move keys as documented', async () => {
    const keyFile = join(dir, 'master.key');
    generateKeyFile(keyFile);
    const single = idsOf(keyFile);
    const ring = join(dir, 'ring');
    expect(await keysRingInit({ key: { kind: 'file', path: keyFile }, out: ring }, quiet)).toBe(0);
    expect(idsOf(ring)).toEqual(single);
    await expect(keysRingInit({ key: { kind: 'file', path: keyFile }, out: ring }, quiet)).rejects.toThrow(/already exists; refusing to overwrite/);

    const lines: string[] = [];
    await keysRingAdd({ ring }, (l) => lines.push(l));
    const added = /added key ID ([0-9a-f]{16})/.exec(lines[0]!)![1]!;
    expect(idsOf(ring)).toEqual({ ...single, previousKeyIds: [added] });
    await keysRingRotate({ ring, to: added }, quiet);
    expect(idsOf(ring)).toEqual({ lookupId: single.lookupId, currentKeyId: added, previousKeyIds: [single.currentKeyId] });
    await keysRingRotate({ ring }, quiet);
    const after = idsOf(ring);
    expect(after.lookupId).toBe(single.lookupId);
    expect(after.previousKeyIds).toEqual([added, single.currentKeyId]);
    await keysRingRetire({ ring, keyId: single.currentKeyId }, quiet);
    expect(idsOf(ring)).toEqual({ ...after, previousKeyIds: [added] });
    expect(statSync(ring).mode & 0o777).toBe(0o600);

    const out: string[] = [];
    await keysId({ key: { kind: 'ring', path: ring }, json: true }, (l) => out.push(l));
    expect(JSON.parse(out.join('\n'))).toEqual({ form: 'ring', ...idsOf(ring) });
    expect(out.join('\n')).not.toContain(readFileSync(ring, 'latin1').match(/^current (\S+)$/m)![1]!);
  });

  it('refuses: retiring the current key or an unknown one, rotate --to an unknown ID, a single key file, a locked ring', async () => {
    const ring = join(dir, 'ring2');
    await keysRingInit({ out: ring }, quiet);
    const ids = idsOf(ring);
    await expect(keysRingRetire({ ring, keyId: ids.currentKeyId }, quiet)).rejects.toThrow(/is the current key of .*; rotate to another key first/);
    await expect(keysRingRetire({ ring, keyId: 'ffffffffffffffff' }, quiet)).rejects.toThrow(/key ID ffffffffffffffff is not in/);
    await expect(keysRingRetire({ ring, keyId: 'FFFF' }, quiet)).rejects.toThrow(/--key-id must be a key ID/);
    await expect(keysRingRotate({ ring, to: 'ffffffffffffffff' }, quiet)).rejects.toThrow(/is not in/);
    await expect(keysRingRotate({ ring, to: ids.currentKeyId }, quiet)).rejects.toThrow(/is already the current key/);
    const single = join(dir, 'single.key');
    generateKeyFile(single);
    await expect(keysRingRotate({ ring: single }, quiet)).rejects.toThrow(/is a single key, not a key ring; make a ring from it with 'session-migrate keys ring init --key-file/);
    writeFileSync(`${ring}.lock`, '');
    await expect(keysRingAdd({ ring }, quiet)).rejects.toThrow(/is locked by .*ring2\.lock: another keys ring command is running; if none is, remove/);
    rmSync(`${ring}.lock`);
    chmodSync(ring, 0o640);
    await expect(keysRingAdd({ ring }, quiet)).rejects.toThrow(/fix with 'chmod 600/);
    expect(idsOf(ring)).toEqual(ids);
  });
});

describe('key provider options', async () => {
  const { keyProviderFromArgs } = await import('../src/key-options.ts');
  it('takes exactly one provider, and refuses a key pasted as a path or a variable name without echoing it', () => {
    expect(keyProviderFromArgs({ 'key-file': '/etc/sm/key' }, true)).toEqual({ kind: 'file', path: '/etc/sm/key' });
    expect(keyProviderFromArgs({ 'key-command': 'vault read x', 'key-command-timeout': 3 }, true)).toEqual({ kind: 'command', command: 'vault read x', timeoutSeconds: 3 });
    expect(keyProviderFromArgs({}, false)).toBeUndefined();
    expect(() => keyProviderFromArgs({}, true)).toThrow(/give the key with one of --key-file, --key-ring, --key-env or --key-command/);
    expect(() => keyProviderFromArgs({ 'key-file': 'a', 'key-env': 'B' }, true)).toThrow(/give only one of/);
    const key = Buffer.alloc(32, 0xfa);
    for (const [option, value] of [['key-file', key.toString('base64')], ['key-ring', key.toString('base64url')], ['key-env', key.toString('hex')], ['key-env', 'session-migrate-keyring 1']] as const) {
      let message = '';
      try {
        keyProviderFromArgs({ [option]: value }, true);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, option).toMatch(/looks like key material \(not shown\); keys never come from the command line/);
      expect(message).not.toContain(value.slice(0, 12));
    }
  });
});
