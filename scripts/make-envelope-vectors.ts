/**
 * Regenerates docs/envelope-vectors.json from fixed keys and nonces. The committed file is the
 * reference: the TypeScript tests and the PHP tests both check against it, so regenerate it only
 * when the spec (docs/envelope.md) changes.
 *
 *   npx tsx scripts/make-envelope-vectors.ts
 */
import { writeFileSync } from 'node:fs';
import { EnvelopeCodec, KEY_LAYOUT_VERSION, loadSodium, deriveKeys, lockKeyFor, tombstoneKeyFor } from '@session-migrate/envelope';

const master = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const other = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xff - i));
const sodium = await loadSodium();
const keys = deriveKeys(sodium, master);
const codec = await EnvelopeCodec.create([master]);
const otherCodec = await EnvelopeCodec.create([other]);

const nonce = (seed: number) => Buffer.from(Array.from({ length: 24 }, (_, i) => (seed + i) & 0xff));
const cases = [
  {
    name: 'php-format session with UTF-8',
    prefix: 'smsess:',
    sessionId: 'abcdef0123456789abcdef0123',
    plaintext: Buffer.from('uid|i:42;name|s:4:"Zoë";', 'utf8'),
  },
  { name: 'empty session', prefix: 'smsess:', sessionId: 'MIpn8u1nzgP98t,UbBeLw6y-zB3qS9H', plaintext: Buffer.alloc(0) },
  {
    name: 'non-UTF-8 bytes, other prefix',
    prefix: 'shop:sess:',
    sessionId: '-,AbCdEf0123456789,-xyzXYZ0123',
    plaintext: Buffer.from('6e616d657c733a343a224a6f73e9223b', 'hex'),
  },
  {
    name: 'php_serialize with NUL bytes',
    prefix: 'smsess:',
    sessionId: 'q1w2e3r4t5y6u7i8o9p0a1s2d3',
    plaintext: Buffer.from('a:1:{s:10:"\u0000Cart\u0000items";a:0:{}}', 'latin1'),
  },
];
const valid = cases.map((c, i) => {
  const redisKey = codec.keyName(c.prefix, c.sessionId);
  const n = nonce(i * 24);
  return {
    name: c.name,
    prefix: c.prefix,
    session_id: c.sessionId,
    redis_key: redisKey,
    tombstone_key: tombstoneKeyFor(c.prefix, redisKey),
    lock_key: lockKeyFor(c.prefix, redisKey),
    nonce_hex: n.toString('hex'),
    plaintext_hex: c.plaintext.toString('hex'),
    envelope_hex: codec.seal(redisKey, c.plaintext, n).toString('hex'),
  };
});
const base = valid[0]!;
const env = Buffer.from(base.envelope_hex, 'hex');
const flip = (b: Buffer, at: number) => {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x01;
  return c;
};
const invalid = [
  {
    name: 'plaintext planted under the prefix',
    redis_key: base.redis_key,
    envelope_hex: Buffer.from('uid|i:1;').toString('hex'),
    expect: 'not-envelope',
  },
  { name: 'too short', redis_key: base.redis_key, envelope_hex: env.subarray(0, 50).toString('hex'), expect: 'not-envelope' },
  {
    name: 'version 2',
    redis_key: base.redis_key,
    envelope_hex: Buffer.concat([env.subarray(0, 2), Buffer.from([2]), env.subarray(3)]).toString('hex'),
    expect: 'unsupported-version',
  },
  { name: 'key ID byte flipped', redis_key: base.redis_key, envelope_hex: flip(env, 5).toString('hex'), expect: 'unknown-key-id' },
  { name: 'nonce byte flipped', redis_key: base.redis_key, envelope_hex: flip(env, 20).toString('hex'), expect: 'auth-failed' },
  { name: 'ciphertext byte flipped', redis_key: base.redis_key, envelope_hex: flip(env, 40).toString('hex'), expect: 'auth-failed' },
  { name: 'tag byte flipped', redis_key: base.redis_key, envelope_hex: flip(env, env.length - 1).toString('hex'), expect: 'auth-failed' },
  { name: 'moved to another session key', redis_key: valid[1]!.redis_key, envelope_hex: base.envelope_hex, expect: 'auth-failed' },
  {
    name: 'moved to another prefix',
    redis_key: 'other:' + base.redis_key.slice('smsess:'.length),
    envelope_hex: base.envelope_hex,
    expect: 'auth-failed',
  },
  {
    name: 'moved to the key layout 1 name (no hash tag)',
    redis_key: base.redis_key.replace(/[{}]/g, ''),
    envelope_hex: base.envelope_hex,
    expect: 'auth-failed',
  },
  {
    name: 'sealed under another master key',
    redis_key: base.redis_key,
    envelope_hex: otherCodec.seal(base.redis_key, Buffer.from('uid|i:42;'), nonce(7)).toString('hex'),
    expect: 'unknown-key-id',
  },
];
const doc = {
  spec: 'docs/envelope.md',
  version: 1,
  key_layout: KEY_LAYOUT_VERSION,
  master_key_base64: master.toString('base64'),
  master_key_hex: master.toString('hex'),
  key_id: keys.keyId,
  encryption_key_hex: Buffer.from(keys.encryptionKey).toString('hex'),
  lookup_key_hex: Buffer.from(keys.lookupKey).toString('hex'),
  other_master_key_base64: other.toString('base64'),
  other_key_id: otherCodec.keyId,
  valid,
  invalid,
};
writeFileSync(new URL('../docs/envelope-vectors.json', import.meta.url), JSON.stringify(doc, null, 2) + '\n');
console.log(`wrote ${valid.length} valid and ${invalid.length} invalid vectors`);
