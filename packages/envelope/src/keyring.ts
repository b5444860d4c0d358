/**
 * Key rings (docs/keys.md): one stable lookup key that names Redis keys, one current master key that
 * seals new values, and any number of previous master keys that still open old values.
 *
 * Two text forms are accepted wherever a key is read (file, environment variable, command output):
 *
 * - a single master key: 44 characters of standard padded base64 (RFC 4648 section 4), a ring of one
 *   whose lookup key is derived from it (docs/envelope.md), so deployments made before key rings keep
 *   their Redis key names;
 * - a key ring file:
 *
 *       session-migrate-keyring 1
 *       lookup <K_lookup, 32 bytes as 44 characters of standard base64>
 *       current <master key>
 *       previous <master key>        (zero or more)
 *       end
 *
 *   `#` comment lines and blank lines are ignored; the `end` line makes a truncated file detectable.
 *
 * Base64 is decoded strictly on both sides (test/fixtures/cases/BUG-22): only the `+/` alphabet with its `=`
 * padding; URL-safe or unpadded text is a malformed key, never "a wrong key". Error messages name the
 * source and the line, never the text.
 */
import { timingSafeEqual } from 'node:crypto';
import { UserFacingError } from '@session-migrate/common';
import { KDF_CONTEXT, KDF_ID_LOOKUP, KEY_ID_BYTES, MASTER_KEY_BYTES, deriveKeys } from './envelope.ts';
import type { Sodium } from './sodium.ts';

/** First line of a key ring file. */
export const KEYRING_HEADER = 'session-migrate-keyring 1';
/** crypto_kdf subkey ID of the lookup ID, derived from K_lookup (docs/keys.md); envelope.ts uses the same. */
export const KDF_ID_LOOKUP_ID = 4;

const STRICT_BASE64_32 = /^[A-Za-z0-9+/]{43}=$/;

/** A key ring in memory. Holds secrets: never log it; wipe it with wipeKeyRing() when done. */
export interface KeyRing {
  /** `key` when read from a single 44-character key, `ring` when read from a key ring file. */
  readonly form: 'key' | 'ring';
  /** K_lookup, 32 bytes: the keyed BLAKE2b key that names Redis keys; stable across rotation. */
  readonly lookupKey: Buffer;
  /** Current 32-byte master key: seals new values. */
  readonly current: Buffer;
  /** Previous 32-byte master keys, newest first as listed: they only open values. */
  readonly previous: Buffer[];
}

/** The printable identity of a ring: one-way functions of the keys, safe to log. */
export interface KeyRingIds {
  /** 16 hex characters: first 8 bytes of crypto_kdf_derive_from_key(16, 4, "sessmig1", K_lookup). */
  lookupId: string;
  /** Key ID of the current master key (docs/envelope.md). */
  currentKeyId: string;
  /** Key IDs of the previous master keys, in ring order. */
  previousKeyIds: string[];
}

/** Zeroes every key buffer of a ring (the ring is unusable afterwards). */
export function wipeKeyRing(ring: KeyRing): void {
  ring.lookupKey.fill(0);
  ring.current.fill(0);
  for (const k of ring.previous) k.fill(0);
}

/** Derives K_lookup of a master key: crypto_kdf_derive_from_key(32, 2, "sessmig1", master). */
export function deriveLookupKey(sodium: Sodium, masterKey: Uint8Array): Buffer {
  const k = sodium.crypto_kdf_derive_from_key(32, KDF_ID_LOOKUP, KDF_CONTEXT, masterKey);
  const out = Buffer.from(k);
  k.fill(0);
  return out;
}

/** Lookup ID of a 32-byte lookup key: 16 lowercase hex characters, safe to print. */
export function lookupIdOf(sodium: Sodium, lookupKey: Uint8Array): string {
  if (lookupKey.length !== 32) throw new RangeError('a lookup key is 32 bytes');
  return Buffer.from(sodium.crypto_kdf_derive_from_key(16, KDF_ID_LOOKUP_ID, KDF_CONTEXT, lookupKey).subarray(0, KEY_ID_BYTES)).toString(
    'hex',
  );
}

/** Key ID of a 32-byte master key (docs/envelope.md): 16 lowercase hex characters. */
export function keyIdOf(sodium: Sodium, masterKey: Uint8Array): string {
  const d = deriveKeys(sodium, masterKey);
  d.encryptionKey.fill(0);
  d.lookupKey.fill(0);
  return d.keyId;
}

/** The IDs of a ring (lookup ID, current and previous key IDs). */
export function keyRingIds(sodium: Sodium, ring: KeyRing): KeyRingIds {
  return {
    lookupId: lookupIdOf(sodium, ring.lookupKey),
    currentKeyId: keyIdOf(sodium, ring.current),
    previousKeyIds: ring.previous.map((k) => keyIdOf(sodium, k)),
  };
}

/** Whether text is a key ring file (its first non-comment, non-blank line is the header's first word). */
export function looksLikeKeyRing(text: string): boolean {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    return line.split(/\s+/)[0] === 'session-migrate-keyring';
  }
  return false;
}

function decodeKey(text: string, what: string): Buffer {
  if (!STRICT_BASE64_32.test(text)) {
    throw new UserFacingError(
      `${what}: not a session-migrate key (expected ${MASTER_KEY_BYTES} bytes as 44 characters of standard base64, with '+', '/' and one '='; URL-safe or unpadded base64 is refused)`,
    );
  }
  const key = Buffer.from(text, 'base64');
  if (!isCanonicalBase64(key, text)) {
    key.fill(0);
    throw new UserFacingError(
      `${what}: not a session-migrate key (not canonical base64: the last character before '=' has non-zero unused bits, so it is not the encoding of any key; copy the key again or make a new one)`,
    );
  }
  return key;
}

/**
 * Whether `text` is exactly the standard base64 encoding of `bytes` (RFC 4648 section 3.5: encoders
 * set the unused pad bits to zero; Node's and PHP's decoders ignore them, so `...c=` and `...d=` would
 * otherwise decode to the same key). Compares in constant time; the re-encoding is zeroed.
 */
export function isCanonicalBase64(bytes: Buffer, text: string): boolean {
  const again = Buffer.from(bytes.toString('base64'), 'latin1');
  const given = Buffer.from(text, 'latin1');
  try {
    return again.length === given.length && timingSafeEqual(again, given);
  } finally {
    again.fill(0);
    given.fill(0);
  }
}

/**
 * Parses key text: a single master key or a key ring file (see the module comment).
 * @param source names the text in errors, e.g. `key file /etc/sm/ring` (never the text itself).
 * @throws UserFacingError (exit 2) for a malformed key, a truncated ring (no `end` line), a missing
 *   or repeated `lookup`/`current`, an unknown line, text after `end`, or two keys with the same key ID.
 */
export function parseKeyText(sodium: Sodium, text: string, source: string): KeyRing {
  return looksLikeKeyRing(text) ? parseRingText(sodium, text, source) : parseSingleKey(sodium, text, source);
}

/** A single master key (44 characters of standard base64, one line); parseKeyText's first form. */
function parseSingleKey(sodium: Sodium, text: string, source: string): KeyRing {
  const trimmed = text.trim();
  if (trimmed === '')
    throw new UserFacingError(
      `${source}: empty; expected a session-migrate key or key ring (create one with 'session-migrate keys generate --out FILE')`,
    );
  if (trimmed.includes('\n')) {
    throw new UserFacingError(`${source}: not a session-migrate key (several lines, but no '${KEYRING_HEADER}' header line)`);
  }
  const current = decodeKey(trimmed, source);
  return { form: 'key', lookupKey: deriveLookupKey(sodium, current), current, previous: [] };
}

/**
 * What a key ring file's lines hold while they are read (parseRingText). Every decoded key is kept in
 * `keys` so that a failure zeroes all of them before it throws.
 */
class RingLines {
  readonly keys: Buffer[] = [];
  sawHeader = false;
  ended = false;
  lookup: Buffer | undefined;
  current: Buffer | undefined;
  currentLine = 0;
  readonly previous: Array<{ key: Buffer; line: number }> = [];

  constructor(private readonly source: string) {}

  fail(message: string): never {
    for (const k of this.keys) k.fill(0);
    throw new UserFacingError(`${this.source}: ${message}`);
  }

  /** One non-blank, non-comment line, numbered `n` from 1. */
  take(line: string, n: number): void {
    if (this.ended) this.fail(`line ${n}: text after the 'end' line`);
    if (!this.sawHeader) {
      if (line !== KEYRING_HEADER) this.fail(`line ${n}: unsupported key ring version (expected '${KEYRING_HEADER}')`);
      this.sawHeader = true;
      return;
    }
    if (line === 'end') {
      this.ended = true;
      return;
    }
    const parts = line.split(/[ \t]+/);
    const entry = parts[0];
    if (parts.length !== 2 || (entry !== 'lookup' && entry !== 'current' && entry !== 'previous')) {
      this.fail(`line ${n}: expected 'lookup', 'current' or 'previous' followed by one key, or 'end'`);
    }
    let key: Buffer;
    try {
      key = decodeKey(parts[1]!, `line ${n} (${entry})`);
    } catch (err) {
      this.fail((err as Error).message);
    }
    this.keys.push(key);
    this.place(entry, key, n);
  }

  private place(entry: 'lookup' | 'current' | 'previous', key: Buffer, n: number): void {
    if (entry === 'lookup') {
      if (this.lookup !== undefined) this.fail(`line ${n}: a second 'lookup' line (a ring has exactly one lookup key)`);
      this.lookup = key;
    } else if (entry === 'current') {
      if (this.current !== undefined)
        this.fail(`line ${n}: a second 'current' line (a ring has exactly one current key; older ones are 'previous')`);
      this.current = key;
      this.currentLine = n;
    } else {
      this.previous.push({ key, line: n });
    }
  }

  /** The ring, once every line is read: complete, and no key ID twice. */
  finish(sodium: Sodium): KeyRing {
    if (!this.sawHeader) this.fail(`no '${KEYRING_HEADER}' header line`);
    if (!this.ended) this.fail(`truncated: no 'end' line (restore the ring from its backup)`);
    if (this.lookup === undefined) this.fail(`no 'lookup' line`);
    if (this.current === undefined) this.fail(`no 'current' line`);
    const seen = new Map<string, number>();
    for (const { key, line } of [{ key: this.current, line: this.currentLine }, ...this.previous]) {
      const id = keyIdOf(sodium, key);
      const first = seen.get(id);
      if (first !== undefined) this.fail(`key ID ${id} appears twice (lines ${first} and ${line}); remove the duplicate line`);
      seen.set(id, line);
    }
    return { form: 'ring', lookupKey: this.lookup, current: this.current, previous: this.previous.map((p) => p.key) };
  }
}

/** A key ring file (see the module comment); parseKeyText's second form. */
function parseRingText(sodium: Sodium, text: string, source: string): KeyRing {
  const ring = new RingLines(source);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    ring.take(line, i + 1);
  }
  return ring.finish(sodium);
}

/**
 * Formats a ring as key ring file text (with the IDs as comments). The result holds key material:
 * write it only to a 0600 file.
 */
export function formatKeyRing(sodium: Sodium, ring: Pick<KeyRing, 'lookupKey' | 'current' | 'previous'>): string {
  const ids = keyRingIds(sodium, { form: 'ring', ...ring });
  const lines = [
    KEYRING_HEADER,
    '# session-migrate key ring (docs/keys.md). Secret: keep it mode 0600, out of version control.',
    `# lookup ID ${ids.lookupId}: names Redis keys; stays the same when master keys rotate`,
    `lookup ${ring.lookupKey.toString('base64')}`,
    `# key ID ${ids.currentKeyId}: seals new values`,
    `current ${ring.current.toString('base64')}`,
  ];
  ring.previous.forEach((k, i) => {
    lines.push(`# key ID ${ids.previousKeyIds[i]}: opens older values`, `previous ${k.toString('base64')}`);
  });
  lines.push('end', '');
  return lines.join('\n');
}
