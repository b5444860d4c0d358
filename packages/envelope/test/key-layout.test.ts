import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  EnvelopeCodec,
  KEY_LAYOUT_VERSION,
  classifyKeyName,
  lockKeyFor,
  prefixProblem,
  sessionKeyName,
  tombstoneKeyFor,
  writeSessionKeyNames,
} from '../src/index.ts';

const vectors = JSON.parse(readFileSync(new URL('../../../docs/envelope-vectors.json', import.meta.url), 'utf8')) as {
  key_layout: number;
  master_key_base64: string;
  valid: Array<{ prefix: string; session_id: string; redis_key: string; tombstone_key: string; lock_key: string }>;
};

describe('key layout 2 (docs/envelope.md)', () => {
  it('matches the shared vectors: session, tombstone and lock names', async () => {
    expect(vectors.key_layout).toBe(KEY_LAYOUT_VERSION);
    const codec = await EnvelopeCodec.create([Buffer.from(vectors.master_key_base64, 'base64')]);
    for (const v of vectors.valid) {
      expect(codec.keyName(v.prefix, v.session_id)).toBe(v.redis_key);
      expect(tombstoneKeyFor(v.prefix, v.redis_key)).toBe(v.tombstone_key);
      expect(lockKeyFor(v.prefix, v.redis_key)).toBe(v.lock_key);
      // The packed form of bulk writers: the same names as bytes, back to back.
      const out = Buffer.alloc(300, 0x2e);
      const prefix = Buffer.from(v.prefix, 'utf8');
      const [k, t] = writeSessionKeyNames(out, 3, prefix, codec.sessionDigest(v.session_id));
      expect(out.subarray(3, 3 + k).toString('utf8')).toBe(v.redis_key);
      expect(out.subarray(3 + k, 3 + k + t).toString('utf8')).toBe(v.tombstone_key);
      expect(out[2]).toBe(0x2e);
      expect(out[3 + k + t]).toBe(0x2e);
      // The digest as its 32 bytes (apply's workers): the same bytes, no string in between.
      const raw = Buffer.alloc(300, 0x2e);
      const digestBytes = codec.sessionDigestBytes(v.session_id);
      expect(Buffer.from(digestBytes).toString('hex')).toBe(codec.sessionDigest(v.session_id));
      expect(writeSessionKeyNames(raw, 3, prefix, codec.sessionDigestBytes(v.session_id))).toEqual([k, t]);
      expect(raw.equals(out)).toBe(true);
    }
    // Every byte value in every digest position, against Node's hex.
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 167) & 255));
    for (let at = 0; at < 256; at += 32) {
      const bytes = all.subarray(at, at + 32);
      const [a, b] = [Buffer.alloc(200), Buffer.alloc(200)];
      writeSessionKeyNames(a, 0, Buffer.from('p:'), bytes);
      writeSessionKeyNames(b, 0, Buffer.from('p:'), bytes.toString('hex'));
      expect(a.equals(b)).toBe(true);
    }
    expect(() => writeSessionKeyNames(Buffer.alloc(200), 0, Buffer.from('p:'), new Uint8Array(31))).toThrow(RangeError);
    // A prefix in UTF-8 beyond ASCII.
    const out = Buffer.alloc(200);
    const [k] = writeSessionKeyNames(out, 0, Buffer.from('sé:', 'utf8'), 'ab'.repeat(32));
    expect(out.subarray(0, k).toString('utf8')).toBe(sessionKeyName('sé:', 'ab'.repeat(32)));
    expect(() => writeSessionKeyNames(out, 0, Buffer.from('p:'), 'ab')).toThrow(RangeError);
    expect(() => writeSessionKeyNames(Buffer.alloc(100), 0, Buffer.from('p:'), 'ab'.repeat(32))).toThrow(RangeError);
  });

  it('puts the hash tag on the digest only', () => {
    const d = 'ab'.repeat(32);
    expect(sessionKeyName('p:', d)).toBe(`p:{${d}}`);
    expect(() => sessionKeyName('p:', 'AB'.repeat(32))).toThrow(RangeError);
    expect(() => sessionKeyName('p:', 'ab')).toThrow(RangeError);
  });

  it('classifies names under a prefix, and nothing else', () => {
    const d = '0f'.repeat(32);
    expect(classifyKeyName('p:', `p:{${d}}`)).toEqual({ kind: 'session', digestHex: d });
    expect(classifyKeyName('p:', `p:destroyed:{${d}}`)).toEqual({ kind: 'tombstone', digestHex: d });
    expect(classifyKeyName(Buffer.from('p:'), Buffer.from(`p:lock:{${d}}`))).toEqual({ kind: 'lock', digestHex: d });
    for (const other of [`p:${d}`, `q:{${d}}`, `p:{${d}}x`, `p:{${d.toUpperCase()}}`, `p:destroyed:${d}`, `p:{${d}`, 'p:']) {
      expect(classifyKeyName('p:', other)).toEqual({ kind: 'other' });
    }
    expect(() => tombstoneKeyFor('p:', `p:${d}`)).toThrow(RangeError);
  });

  it('refuses a prefix with braces (it would move the hash tag)', () => {
    expect(prefixProblem('smsess:')).toBeUndefined();
    expect(prefixProblem('app{1}:')).toMatch(/must not contain/);
    expect(prefixProblem('a}')).toMatch(/must not contain/);
  });
});
