import { describe, expect, it, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, statSync, writeFileSync, chmodSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EnvelopeCodec, MIN_ENVELOPE_BYTES, deriveKeys, generateKeyFile, loadSodium, parseMasterKey, readKeyFile } from '../src/index.ts';

/** Every temporary directory of this file, removed afterwards (they hold session files and keys). */
const scratchRoot = mkdtempSync(join(tmpdir(), 'sm-test-'));
afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }));

const vectors = JSON.parse(readFileSync(new URL('../../../docs/envelope-vectors.json', import.meta.url), 'utf8')) as {
  master_key_base64: string;
  key_id: string;
  other_master_key_base64: string;
  other_key_id: string;
  valid: Array<{
    name: string;
    prefix: string;
    session_id: string;
    redis_key: string;
    nonce_hex: string;
    plaintext_hex: string;
    envelope_hex: string;
  }>;
  invalid: Array<{ name: string; redis_key: string; envelope_hex: string; expect: string }>;
};
const master = Buffer.from(vectors.master_key_base64, 'base64');
const codec = await EnvelopeCodec.create([master]);

describe('envelope vectors (docs/envelope-vectors.json)', () => {
  it('derives the published key ID', () => {
    expect(codec.keyId).toBe(vectors.key_id);
  });
  for (const v of vectors.valid) {
    it(`seals and opens: ${v.name}`, () => {
      expect(codec.keyName(v.prefix, v.session_id)).toBe(v.redis_key);
      const sealed = codec.seal(v.redis_key, Buffer.from(v.plaintext_hex, 'hex'), Buffer.from(v.nonce_hex, 'hex'));
      expect(sealed.toString('hex')).toBe(v.envelope_hex);
      const opened = codec.open(v.redis_key, Buffer.from(v.envelope_hex, 'hex'));
      expect(opened).toEqual({ ok: true, plaintext: Buffer.from(v.plaintext_hex, 'hex'), keyId: vectors.key_id });
    });
  }
  for (const v of vectors.invalid) {
    it(`rejects: ${v.name} -> ${v.expect}`, () => {
      const opened = codec.open(v.redis_key, Buffer.from(v.envelope_hex, 'hex'));
      expect(opened.ok).toBe(false);
      if (!opened.ok) expect(opened.reason).toBe(v.expect);
    });
  }
});

describe('EnvelopeCodec', () => {
  it('uses a fresh nonce for every seal', () => {
    const a = codec.seal('k', Buffer.from('x'));
    const b = codec.seal('k', Buffer.from('x'));
    expect(a.subarray(11, 35).equals(b.subarray(11, 35))).toBe(false);
    expect(a.length).toBe(MIN_ENVELOPE_BYTES + 1);
  });
  it('opens values of a previous key in the ring and names keys with the current one', async () => {
    const other = Buffer.from(vectors.other_master_key_base64, 'base64');
    const ring = await EnvelopeCodec.create([other, master]);
    expect(ring.keyId).toBe(vectors.other_key_id);
    const v = vectors.valid[0]!;
    expect(ring.open(v.redis_key, Buffer.from(v.envelope_hex, 'hex')).ok).toBe(true);
    expect(ring.keyName(v.prefix, v.session_id)).not.toBe(v.redis_key);
  });
  it('rejects a wrong key as unknown-key-id and a same-ID wrong key as auth-failed', async () => {
    const other = await EnvelopeCodec.create([Buffer.from(vectors.other_master_key_base64, 'base64')]);
    const sealed = codec.seal('smsess:x', Buffer.from('uid|i:1;'));
    expect(other.open('smsess:x', sealed)).toMatchObject({ ok: false, reason: 'unknown-key-id', keyId: vectors.key_id });
  });
});

describe('direct libsodium calls (sodium-direct.ts) give the bytes of libsodium-wrappers', () => {
  it('seal, open and key names agree with the wrappers on random inputs of every size class', async () => {
    const sodium = await loadSodium();
    const derived = deriveKeys(sodium, master);
    // Sizes across the growth of the heap regions (4 KiB first, then powers of two), and a session of 70 KB.
    const sizes = [0, 1, 15, 16, 17, 63, 64, 65, 1009, 4095, 4096, 4097, 70_000, 3, 1024];
    for (const size of sizes) {
      const plaintext = randomBytes(size);
      const nonce = randomBytes(24);
      // Key names: text, and raw bytes that are not UTF-8 (verify reads key names as bytes).
      const key =
        size % 2 === 0 ? `smsess:{${randomBytes(32).toString('hex')}}` : Buffer.concat([Buffer.from('smsess:'), randomBytes(size % 200)]);
      const keyBytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
      const sealed = codec.seal(key, plaintext, nonce);
      const header = sealed.subarray(0, 11);
      const expected = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext,
        Buffer.concat([header, keyBytes]),
        null,
        nonce,
        derived.encryptionKey,
      );
      expect(sealed.subarray(35).equals(Buffer.from(expected))).toBe(true);
      expect(sealed.subarray(11, 35).equals(nonce)).toBe(true);
      const opened = codec.open(typeof key === 'string' ? key : key, sealed);
      expect(opened.ok && opened.plaintext.equals(plaintext)).toBe(true);
      // One flipped bit anywhere in the ciphertext or tag, or another key name: auth-failed.
      const tampered = Buffer.from(sealed);
      tampered[35 + Math.floor(Math.random() * (tampered.length - 35))]! ^= 1;
      expect(codec.open(key, tampered)).toMatchObject({ ok: false, reason: 'auth-failed' });
      expect(codec.open(Buffer.concat([keyBytes, Buffer.from('x')]), sealed)).toMatchObject({ ok: false, reason: 'auth-failed' });
      // sealTo writes the same envelope into a larger buffer at an offset.
      const out = Buffer.alloc(sealed.length + 10, 0xaa);
      expect(codec.sealTo(out, 5, key, plaintext, nonce)).toBe(sealed.length);
      expect(out.subarray(5, 5 + sealed.length).equals(sealed)).toBe(true);
      expect(out[4]).toBe(0xaa);
      expect(out[5 + sealed.length]).toBe(0xaa);
    }
    expect(() => codec.sealTo(Buffer.alloc(MIN_ENVELOPE_BYTES), 1, 'k', Buffer.alloc(0))).toThrow(RangeError);
    // Session IDs, and strings beyond ASCII (hashed as UTF-8: not copied into the heap char by char).
    for (const id of [
      'a',
      'abcdef0123456789abcdef0123',
      'x'.repeat(256),
      'MIpn8u1nzgP98t,UbBeLw6y-zB3qS9H',
      'é',
      'ab\u0080',
      'x'.repeat(5000) + '€',
      '',
    ]) {
      expect(codec.sessionDigest(id)).toBe(Buffer.from(sodium.crypto_generichash(32, Buffer.from(id), derived.lookupKey)).toString('hex'));
    }
  });

  it('a wiped codec leaves no key in the WebAssembly heap', async () => {
    const sodium = await loadSodium();
    const heap = (sodium as unknown as { libsodium: { HEAPU8: Uint8Array } }).libsodium;
    const key = randomBytes(32);
    const c = await EnvelopeCodec.create([key]);
    c.seal('k', Buffer.from('x'));
    const enc = deriveKeys(sodium, key).encryptionKey;
    const find = (needle: Uint8Array) => Buffer.from(heap.HEAPU8.buffer, heap.HEAPU8.byteOffset, heap.HEAPU8.byteLength).indexOf(needle);
    expect(find(enc)).toBeGreaterThanOrEqual(0);
    // Sealed in place: no plaintext is left in the heap after a seal (nor after an open).
    const secret = randomBytes(1000);
    const sealed = c.seal('k', secret);
    expect(find(secret)).toBe(-1);
    expect(c.open('k', sealed)).toMatchObject({ ok: true });
    expect(find(secret)).toBe(-1);
    c.wipe();
    expect(find(enc)).toBe(-1);
  });
});

describe('key files', () => {
  const dir = mkdtempSync(join(scratchRoot, 'sm-keys-'));
  it('generates a 0600 base64 key and refuses to overwrite it', () => {
    const path = join(dir, 'master.key');
    const key = generateKeyFile(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toBe(key.toString('base64') + '\n');
    expect(readKeyFile(path).equals(key)).toBe(true);
    expect(() => generateKeyFile(path)).toThrow(/already exists/);
    expect(() => generateKeyFile(join(dir, 'missing-dir', 'k'))).toThrow(/directory .*missing-dir does not exist/);
  });
  it('rejects URL-safe base64, short keys and garbage without echoing them (BUG-22)', () => {
    const urlSafe = Buffer.alloc(32, 0xfb).toString('base64url');
    expect(() => parseMasterKey(urlSafe, 'k')).toThrow(/not a session-migrate key/);
    expect(() => parseMasterKey('c2hvcnQ=', 'k')).toThrow(/not a session-migrate key/);
    try {
      parseMasterKey('SECRET-GARBAGE', 'k');
    } catch (e) {
      expect(String(e)).not.toContain('SECRET');
    }
    expect(parseMasterKey(vectors.master_key_base64 + '\r\n', 'k').equals(master)).toBe(true);
  });
  it('rejects non-canonical base64 (unused bits of the last character set) without echoing it', () => {
    const canonical = vectors.master_key_base64 as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const flipped = canonical.slice(0, 42) + alphabet[alphabet.indexOf(canonical[42]!) ^ 1] + '=';
    expect(Buffer.from(flipped, 'base64').equals(master)).toBe(true); // the lax decoder sees the same key
    let message = '';
    try {
      parseMasterKey(`${flipped}\n`, 'key file k');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^key file k: not a session-migrate key \(not canonical base64/);
    expect(message).not.toContain(flipped.slice(0, 16));
  });
  it('refuses a key file readable by others, a FIFO and a missing file; follows a symlink to a 0600 file', () => {
    const path = join(dir, 'open.key');
    writeFileSync(path, vectors.master_key_base64);
    chmodSync(path, 0o644);
    expect(() => readKeyFile(path)).toThrow(/chmod 600/);
    chmodSync(path, 0o600);
    expect(readKeyFile(path).equals(master)).toBe(true);
    symlinkSync(path, join(dir, 'link.key'));
    expect(readKeyFile(join(dir, 'link.key')).equals(master)).toBe(true);
    execFileSync('mkfifo', [join(dir, 'fifo.key')]);
    expect(() => readKeyFile(join(dir, 'fifo.key'))).toThrow(/not a regular file/);
    expect(() => readKeyFile(join(dir, 'nope.key'))).toThrow(/no such file/);
  });
});
