/**
 * Key rings and key providers (docs/keys.md): the shared vectors in docs/keyring-vectors.json (the
 * PHP class reads the same ones in test/php-keyring.test.ts), stable key names across rotation, and
 * the providers' failure modes. Errors must never contain key text.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EnvelopeCodec,
  deriveLookupKey,
  formatKeyRing,
  keyRingIds,
  loadKeyRing,
  loadSodium,
  parseKeyText,
  wipeKeyRing,
  writeSecretFileAtomic,
  type KeyRing,
} from '../src/index.ts';

const sodium = await loadSodium();
const scratch = mkdtempSync(join(tmpdir(), 'sm-keyring-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Vectors {
  valid: Array<{
    name: string;
    text: string;
    form: string;
    lookup_key_hex: string;
    lookup_id: string;
    current_key_id: string;
    previous_key_ids: string[];
    prefix: string;
    session_id: string;
    redis_key: string;
  }>;
  invalid: Array<{ name: string; text: string; expect: string }>;
}
const vectors = JSON.parse(readFileSync(new URL('../../../docs/keyring-vectors.json', import.meta.url), 'utf8')) as Vectors;

/** Kills the process whose PID a test command wrote to `path` (if it ran and still runs). */
function killPidFile(path: string): void {
  try {
    process.kill(Number(readFileSync(path, 'utf8')), 'SIGKILL');
  } catch {
    // not started or already gone
  }
}

/** Shell that waits until a background process has written its PID file. */
const waitFor = (pidFile: string) => `while [ ! -s ${pidFile} ]; do sleep 0.05; done`;

/** Resolves once `pid` no longer runs (gone, or a zombie not yet reaped); fails the test after 20 s. */
async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      return;
    }
    if (/\) Z /.test(stat)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`process ${pid} still runs`);
}

/** Every base64 run of 40+ characters in a text (keys), to check an error message against. */
const keyLike = (text: string) => text.match(/[A-Za-z0-9+/_-]{40,}={0,2}/g) ?? [];

describe('key ring vectors (docs/keyring-vectors.json)', () => {
  for (const v of vectors.valid) {
    it(`reads: ${v.name}`, async () => {
      const ring = parseKeyText(sodium, v.text, 'vector');
      expect(ring.form).toBe(v.form);
      expect(ring.lookupKey.toString('hex')).toBe(v.lookup_key_hex);
      expect(keyRingIds(sodium, ring)).toEqual({
        lookupId: v.lookup_id,
        currentKeyId: v.current_key_id,
        previousKeyIds: v.previous_key_ids,
      });
      const codec = await EnvelopeCodec.fromRing(ring);
      expect(codec.lookupId).toBe(v.lookup_id);
      expect(codec.keyIds).toEqual([v.current_key_id, ...v.previous_key_ids]);
      expect(codec.keyName(v.prefix, v.session_id)).toBe(v.redis_key);
    });
  }
  for (const v of vectors.invalid) {
    it(`refuses: ${v.name}`, () => {
      let message = '';
      try {
        parseKeyText(sodium, v.text, 'key file /x');
      } catch (err) {
        message = (err as Error).message;
        expect((err as { exitCode?: number }).exitCode).toBe(2);
      }
      expect(message).toContain(v.expect);
      expect(message.startsWith('key file /x: ')).toBe(true);
      expect(message.split('\n')).toHaveLength(1);
      for (const k of keyLike(v.text)) expect(message).not.toContain(k.slice(0, 16));
    });
  }
});

describe('key ring behaviour', () => {
  const master = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const next = Buffer.alloc(32, 0x33);

  it('a rotated ring keeps the lookup ID and every key name, and opens what the old key sealed', async () => {
    const single = parseKeyText(sodium, master.toString('base64'), 'k');
    const before = await EnvelopeCodec.fromRing(single);
    const rotated: KeyRing = { form: 'ring', lookupKey: deriveLookupKey(sodium, master), current: next, previous: [master] };
    const after = await EnvelopeCodec.fromRing(parseKeyText(sodium, formatKeyRing(sodium, rotated), 'k'));
    expect(after.lookupId).toBe(before.lookupId);
    expect(after.keyId).not.toBe(before.keyId);
    for (const id of ['a', 'abcdef0123456789abcdef0123', 'x-y,z']) expect(after.keyName('p:', id)).toBe(before.keyName('p:', id));
    const key = before.keyName('smsess:', 'sid');
    const sealed = before.seal(key, Buffer.from('uid|i:1;'));
    expect(after.open(key, sealed)).toMatchObject({ ok: true, keyId: before.keyId });
    expect(after.seal(key, Buffer.from('x')).subarray(3, 11).toString('hex')).toBe(after.keyId);
  });

  it('wipeKeyRing zeroes every key buffer', () => {
    const ring = parseKeyText(
      sodium,
      formatKeyRing(sodium, { lookupKey: Buffer.alloc(32, 1), current: Buffer.alloc(32, 2), previous: [Buffer.alloc(32, 3)] }),
      'k',
    );
    wipeKeyRing(ring);
    for (const b of [ring.lookupKey, ring.current, ...ring.previous]) expect(b.equals(Buffer.alloc(32))).toBe(true);
  });

  it('writes secret files atomically with mode 0600, and refuses to overwrite unless replacing', () => {
    const path = join(scratch, 'ring');
    writeSecretFileAtomic(path, 'one\n', { replace: false, what: 'key ring' });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(() => writeSecretFileAtomic(path, 'two\n', { replace: false, what: 'key ring' })).toThrow(
      /already exists; refusing to overwrite/,
    );
    writeSecretFileAtomic(path, 'three\n', { replace: true, what: 'key ring' });
    expect(readFileSync(path, 'utf8')).toBe('three\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

describe('key providers', () => {
  const master = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const b64 = master.toString('base64');
  const ringText = formatKeyRing(sodium, { lookupKey: deriveLookupKey(sodium, master), current: Buffer.alloc(32, 9), previous: [master] });
  const file = (name: string, text: string, mode: number) => {
    const p = join(scratch, name);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };
  const errorOf = async (p: Parameters<typeof loadKeyRing>[0], env: NodeJS.ProcessEnv = {}) => {
    try {
      await loadKeyRing(p, env);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected an error');
  };

  it('file: a single key or a ring; group or other access refused with the chmod fix', async () => {
    expect((await loadKeyRing({ kind: 'file', path: file('k1', `${b64}\n`, 0o600) })).current.equals(master)).toBe(true);
    expect((await loadKeyRing({ kind: 'file', path: file('r1', ringText, 0o600) })).previous[0]!.equals(master)).toBe(true);
    for (const mode of [0o640, 0o604, 0o660]) {
      const p = file(`k-${mode.toString(8)}`, b64, mode);
      expect(await errorOf({ kind: 'file', path: p })).toBe(
        `key file ${p}: readable or writable by group or others (mode 0${mode.toString(8)}); fix with 'chmod 600 ${p}'`,
      );
    }
  });

  it('ring: refuses a single key with the command that makes a ring of it', async () => {
    const p = file('k2', b64, 0o600);
    expect(await errorOf({ kind: 'ring', path: p })).toContain(`keys ring init --key-file ${p}`);
    expect((await loadKeyRing({ kind: 'ring', path: file('r2', ringText, 0o600) })).form).toBe('ring');
  });

  it('env: reads a key or ring text from the named variable', async () => {
    expect((await loadKeyRing({ kind: 'env', name: 'SM_K' }, { SM_K: b64 })).current.equals(master)).toBe(true);
    expect((await loadKeyRing({ kind: 'env', name: 'SM_R' }, { SM_R: ringText })).form).toBe('ring');
    expect(await errorOf({ kind: 'env', name: 'SM_K' })).toBe('environment variable SM_K is not set or empty');
    expect(await errorOf({ kind: 'env', name: b64 })).toMatch(/give the NAME of an environment variable/);
    const bad = await errorOf({ kind: 'env', name: 'SM_K' }, { SM_K: master.toString('base64url') });
    expect(bad).toMatch(/^environment variable SM_K: not a session-migrate key/);
    expect(bad).not.toContain(master.toString('base64url').slice(0, 16));
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const flipped = b64.slice(0, 42) + alphabet[alphabet.indexOf(b64[42]!) ^ 1] + '=';
    const nonCanonical = await errorOf({ kind: 'env', name: 'SM_K' }, { SM_K: flipped });
    expect(nonCanonical).toMatch(/^environment variable SM_K: not a session-migrate key \(not canonical base64/);
    expect(nonCanonical).not.toContain(flipped.slice(0, 16));
  });

  it('command: reads stdout; non-zero exit, signal, timeout, empty or huge output fail without echoing output', async () => {
    const keyFile = file('k3', `${b64}\n`, 0o600);
    expect((await loadKeyRing({ kind: 'command', command: `cat ${keyFile}`, timeoutSeconds: 10 })).current.equals(master)).toBe(true);
    const cases: Array<[string, RegExp]> = [
      [`cat ${keyFile}; echo ${b64} >&2; exit 3`, /^--key-command exited with status 3 \(its output is not shown/],
      [`cat ${keyFile}; kill -TERM $$`, /^--key-command was killed by SIGTERM/],
      [`cat ${keyFile}; sleep 30`, /^--key-command did not finish within 0.5 s/],
      ['true', /^--key-command printed nothing/],
      ['head -c 70000 /dev/zero', /printed more than 65536 bytes/],
      [`echo ${master.toString('base64url')}`, /^the output of --key-command: not a session-migrate key/],
    ];
    for (const [command, pattern] of cases) {
      const message = await errorOf({ kind: 'command', command, timeoutSeconds: 0.5 });
      expect(message, command).toMatch(pattern);
      expect(message).not.toContain(b64.slice(0, 16));
      expect(message).not.toContain(master.toString('base64url').slice(0, 16));
    }
    expect(await errorOf({ kind: 'command', command: 'cat /dev/null', timeoutSeconds: 0 })).toMatch(
      /--key-command-timeout must be a number of seconds more than 0/,
    );
  });

  it('command: the timeout is a hard limit even when a process in another session keeps stdout open', async () => {
    const keyFile = file('k4', `${b64}\n`, 0o600);
    const pidFile = join(scratch, 'lingering.pid');
    // setsid: the lingering sleep is in its own session, out of reach of the process-group kill, and
    // holds the pipe open for 60 s; the command itself never exits on its own.
    const command = `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 60' & ${waitFor(pidFile)}; cat ${keyFile}; sleep 60`;
    const started = Date.now();
    try {
      const message = await errorOf({ kind: 'command', command, timeoutSeconds: 1 });
      expect(message).toMatch(/^--key-command did not finish within 1 s/);
      expect(message).not.toContain(b64.slice(0, 16));
      // Far below the 60 s the pipe stays open: the CLI stopped waiting at the deadline.
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      killPidFile(pidFile);
    }
  }, 60_000);

  it('command: output is accepted once the command exited 0, even if a process it started keeps stdout open', async () => {
    const keyFile = file('k5', `${b64}\n`, 0o600);
    const pidFile = join(scratch, 'lingering2.pid');
    const command = `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 60' & ${waitFor(pidFile)}; cat ${keyFile}`;
    const started = Date.now();
    try {
      const ring = await loadKeyRing({ kind: 'command', command, timeoutSeconds: 40 });
      expect(ring.current.equals(master)).toBe(true);
      expect(Date.now() - started).toBeLessThan(30_000);
      // A background process in the command's own process group is killed once the output is taken.
      const groupPidFile = join(scratch, 'group.pid');
      const again = await loadKeyRing({
        kind: 'command',
        command: `sh -c 'echo $$ > ${groupPidFile}; exec sleep 60' & ${waitFor(groupPidFile)}; cat ${keyFile}`,
        timeoutSeconds: 40,
      });
      expect(again.current.equals(master)).toBe(true);
      const pid = Number(readFileSync(groupPidFile, 'utf8'));
      await waitGone(pid);
    } finally {
      killPidFile(pidFile);
    }
  }, 60_000);
});
