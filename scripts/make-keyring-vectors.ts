/**
 * Regenerates docs/keyring-vectors.json: key and key ring texts (docs/keys.md) with the IDs and key
 * names both implementations must derive, and malformed texts with the error each must report. The
 * TypeScript tests (packages/envelope/test/keyring.test.ts) and the PHP tests (test/php-keyring.test.ts)
 * both read it.
 *
 *   npx tsx scripts/make-keyring-vectors.ts
 */
import { writeFileSync } from 'node:fs';
import { EnvelopeCodec, deriveLookupKey, formatKeyRing, keyRingIds, loadSodium, parseKeyText } from '@session-migrate/envelope';

const sodium = await loadSodium();
const bytes = (f: (i: number) => number) => Buffer.from(Array.from({ length: 32 }, (_, i) => f(i) & 0xff));
const master = bytes((i) => i); // docs/envelope-vectors.json master_key
const other = bytes((i) => 0xff - i); // docs/envelope-vectors.json other_master_key
const third = bytes((i) => 0x40 + 3 * i);
const freshLookup = bytes((i) => 0xa5 ^ (7 * i));
const b64 = (b: Buffer) => b.toString('base64');
const SESSION_ID = 'abcdef0123456789abcdef0123';
const PREFIX = 'smsess:';

const validTexts: Array<{ name: string; text: string }> = [
  { name: 'single key file (a ring of one; lookup key derived from it)', text: `${b64(master)}\n` },
  {
    name: 'ring made from that key by keys ring init, then rotated once (same lookup ID and key names)',
    text: formatKeyRing(sodium, { lookupKey: deriveLookupKey(sodium, master), current: other, previous: [master] }),
  },
  {
    name: 'hand-written ring: CRLF line ends, comments, blank lines, tabs, two previous keys',
    text: [
      '# ring',
      'session-migrate-keyring 1',
      '',
      `lookup\t${b64(freshLookup)}`,
      '# newest first',
      `current ${b64(third)}`,
      `previous ${b64(other)}`,
      `previous ${b64(master)}`,
      'end',
      '',
    ].join('\r\n'),
  },
];
const valid = [];
for (const v of validTexts) {
  const ring = parseKeyText(sodium, v.text, 'vector');
  const ids = keyRingIds(sodium, ring);
  const codec = await EnvelopeCodec.fromRing(ring);
  valid.push({
    name: v.name,
    text: v.text,
    form: ring.form,
    lookup_key_hex: ring.lookupKey.toString('hex'),
    lookup_id: ids.lookupId,
    current_key_id: ids.currentKeyId,
    previous_key_ids: ids.previousKeyIds,
    prefix: PREFIX,
    session_id: SESSION_ID,
    redis_key: codec.keyName(PREFIX, SESSION_ID),
  });
}

const ring = (lines: string[]) => lines.join('\n') + '\n';
const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** The key's base64 with one unused bit of the last character set: decodes (laxly) to the same 32 bytes. */
const nonCanonical = (b: Buffer) => {
  const t = b64(b);
  const last = t[42]!;
  return t.slice(0, 42) + B64_ALPHABET[B64_ALPHABET.indexOf(last) ^ 1]! + '=';
};
const L = `lookup ${b64(freshLookup)}`;
const invalid = [
  {
    name: 'URL-safe base64 key (libsodium.js default, BUG-22)',
    text: `${master.toString('base64url')}\n`,
    expect: 'not a session-migrate key',
  },
  { name: 'unpadded standard base64 key', text: `${b64(other).replace(/=$/, '')}\n`, expect: 'not a session-migrate key' },
  { name: 'key of 31 bytes', text: `${b64(master.subarray(1))}\n`, expect: 'not a session-migrate key' },
  { name: 'key of 33 bytes', text: `${b64(Buffer.concat([master, Buffer.from([1])]))}\n`, expect: 'not a session-migrate key' },
  {
    name: 'non-canonical base64 key (unused bits of the last character set; decodes laxly to the same key)',
    text: `${nonCanonical(master)}\n`,
    expect: 'not a session-migrate key',
  },
  {
    name: 'non-canonical base64 current key inside a ring',
    text: ring(['session-migrate-keyring 1', L, `current ${nonCanonical(other)}`, 'end']),
    expect: 'line 3 (current): not a session-migrate key',
  },
  {
    name: 'non-canonical base64 lookup key inside a ring',
    text: ring(['session-migrate-keyring 1', `lookup ${nonCanonical(freshLookup)}`, `current ${b64(other)}`, 'end']),
    expect: 'line 2 (lookup): not a session-migrate key',
  },
  { name: 'truncated key file', text: b64(master).slice(0, 30), expect: 'not a session-migrate key' },
  {
    name: 'ring truncated (no end line)',
    text: ring(['session-migrate-keyring 1', L, `current ${b64(other)}`, `previous ${b64(master)}`]),
    expect: "truncated: no 'end' line",
  },
  {
    name: 'ring truncated inside a key',
    text: ring(['session-migrate-keyring 1', L, `current ${b64(other).slice(0, 20)}`]),
    expect: 'line 3 (current): not a session-migrate key',
  },
  {
    name: 'duplicate key ID (same key as current and previous)',
    text: ring(['session-migrate-keyring 1', L, `current ${b64(other)}`, `previous ${b64(master)}`, `previous ${b64(other)}`, 'end']),
    expect: 'appears twice (lines 3 and 5)',
  },
  {
    name: 'URL-safe key inside a ring',
    text: ring(['session-migrate-keyring 1', L, `current ${other.toString('base64url')}`, 'end']),
    expect: 'line 3 (current): not a session-migrate key',
  },
  {
    name: 'unknown ring version',
    text: ring(['session-migrate-keyring 2', L, `current ${b64(other)}`, 'end']),
    expect: 'unsupported key ring version',
  },
  {
    name: 'two current keys',
    text: ring(['session-migrate-keyring 1', L, `current ${b64(other)}`, `current ${b64(master)}`, 'end']),
    expect: "a second 'current' line",
  },
  {
    name: 'two lookup keys',
    text: ring(['session-migrate-keyring 1', L, L, `current ${b64(other)}`, 'end']),
    expect: "a second 'lookup' line",
  },
  { name: 'no lookup key', text: ring(['session-migrate-keyring 1', `current ${b64(other)}`, 'end']), expect: "no 'lookup' line" },
  { name: 'no current key', text: ring(['session-migrate-keyring 1', L, `previous ${b64(other)}`, 'end']), expect: "no 'current' line" },
  {
    name: 'unknown entry',
    text: ring(['session-migrate-keyring 1', L, `primary ${b64(other)}`, 'end']),
    expect: "line 3: expected 'lookup', 'current' or 'previous'",
  },
  {
    name: 'text after end',
    text: ring(['session-migrate-keyring 1', L, `current ${b64(other)}`, 'end', `previous ${b64(master)}`]),
    expect: "line 5: text after the 'end' line",
  },
  { name: 'empty', text: '\n', expect: 'empty' },
];
for (const v of invalid) {
  try {
    parseKeyText(sodium, v.text, 'vector');
    throw new Error(`invalid vector parsed: ${v.name}`);
  } catch (err) {
    if (!(err as Error).message.includes(v.expect)) throw new Error(`${v.name}: got "${(err as Error).message}"`);
  }
}

writeFileSync(
  new URL('../docs/keyring-vectors.json', import.meta.url),
  JSON.stringify(
    {
      spec: 'docs/keys.md',
      note: 'expect: a fragment both implementations put in their error message; messages never contain the text',
      valid,
      invalid,
    },
    null,
    2,
  ) + '\n',
);
console.log(`wrote ${valid.length} valid and ${invalid.length} invalid key ring vectors`);
