/**
 * Key layout 2 (docs/envelope.md, "Redis key names"): the one home of every Redis key name that
 * session-migrate and the generated PHP handler agree on.
 *
 *   session    <prefix>{<64 hex>}
 *   tombstone  <prefix>destroyed:{<64 hex>}
 *   lock       <prefix>lock:{<64 hex>}
 *
 * `<64 hex>` is hex(BLAKE2b-256(session ID, keyed with K_lookup)). The braces are a Redis Cluster
 * hash tag (https://redis.io/docs/reference/cluster-spec/#hash-tags): only the digest is hashed,
 * so a session, its tombstone and its lock share one hash slot and one Lua script may touch all
 * three, while sessions still spread over all 16384 slots. The same names are used on a single
 * node, so moving to cluster mode later renames nothing. A prefix may therefore not contain `{` or
 * `}` (it would move the hash tag).
 */

/** Version of the key layout (docs/envelope.md); recorded in plans. */
export const KEY_LAYOUT_VERSION = 2;

/** Infix after the prefix of a tombstone key name. */
export const TOMBSTONE_INFIX = 'destroyed:';

/** Infix after the prefix of a lock key name. */
export const LOCK_INFIX = 'lock:';

const DIGEST = /^[0-9a-f]{64}$/;

function checkDigest(digestHex: string): void {
  if (!DIGEST.test(digestHex)) throw new RangeError('a session digest is 64 lowercase hex characters');
}

/**
 * Whether a prefix keeps the hash tag on the digest: it must not contain `{` or `}`.
 * @returns a reason when it does not, else undefined.
 */
export function prefixProblem(prefix: string): string | undefined {
  return /[{}]/.test(prefix) ? 'must not contain "{" or "}" (the key layout puts a Redis Cluster hash tag after it)' : undefined;
}

/** `<prefix>{<digest>}`: the session's value. @throws RangeError for a digest that is not 64 hex. */
export function sessionKeyName(prefix: string, digestHex: string): string {
  checkDigest(digestHex);
  return `${prefix}{${digestHex}}`;
}

/** `<prefix>destroyed:{<digest>}`: left by the handler's destroy(), blocks a bulk copy. */
export function tombstoneKeyName(prefix: string, digestHex: string): string {
  checkDigest(digestHex);
  return `${prefix}${TOMBSTONE_INFIX}{${digestHex}}`;
}

/** `<prefix>lock:{<digest>}`: the handler's session lock (SET NX PX with an owner token). */
export function lockKeyName(prefix: string, digestHex: string): string {
  checkDigest(digestHex);
  return `${prefix}${LOCK_INFIX}{${digestHex}}`;
}

/** What a key name under a prefix is, by layout 2. */
export type KeyKind = { kind: 'session' | 'tombstone' | 'lock'; digestHex: string } | { kind: 'other' };

const REST = /^(destroyed:|lock:)?\{([0-9a-f]{64})\}$/;

/**
 * Classifies a key name (bytes or text) that starts with `prefix`; anything else is `other`.
 * Allocation-light: only the part after the prefix is decoded.
 */
export function classifyKeyName(prefix: string | Buffer, key: string | Buffer): KeyKind {
  const p = typeof prefix === 'string' ? Buffer.from(prefix, 'utf8') : prefix;
  const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (k.length < p.length + 66 || k.compare(p, 0, p.length, 0, p.length) !== 0) return { kind: 'other' };
  const m = REST.exec(k.toString('latin1', p.length));
  if (m === null) return { kind: 'other' };
  const kind = m[1] === 'destroyed:' ? 'tombstone' : m[1] === 'lock:' ? 'lock' : 'session';
  return { kind, digestHex: m[2]! };
}

/** The digest of a session key name `<prefix>{<digest>}`. @throws RangeError for any other name. */
export function digestOfSessionKey(prefix: string, sessionKey: string): string {
  const c = classifyKeyName(prefix, sessionKey);
  if (c.kind !== 'session') throw new RangeError(`key ${sessionKey} is not a session key under prefix ${prefix}`);
  return c.digestHex;
}

/** The tombstone key name of a session key name. @throws RangeError when it is not a session key. */
export function tombstoneKeyFor(prefix: string, sessionKey: string): string {
  return tombstoneKeyName(prefix, digestOfSessionKey(prefix, sessionKey));
}

/** The lock key name of a session key name. @throws RangeError when it is not a session key. */
export function lockKeyFor(prefix: string, sessionKey: string): string {
  return lockKeyName(prefix, digestOfSessionKey(prefix, sessionKey));
}

/** TOMBSTONE_INFIX as bytes. */
const TOMBSTONE_INFIX_BYTES = Buffer.from(TOMBSTONE_INFIX, 'latin1');
/** Lowercase hex digits, by value (0-15), as bytes. */
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** Writes `{<64 hex>}` of a digest given as 64 hex characters or as its 32 bytes; returns the end offset. */
function writeDigestTag(out: Buffer, at: number, digest: string | Uint8Array): number {
  out[at++] = 0x7b; // {
  if (typeof digest === 'string') {
    at += out.write(digest, at, 'latin1');
  } else {
    for (let i = 0; i < 32; i++) {
      const b = digest[i]!;
      out[at++] = HEX[b >> 4]!;
      out[at++] = HEX[b & 15]!;
    }
  }
  out[at] = 0x7d; // }
  return at + 1;
}

/**
 * Writes a session's key name and its tombstone's name as bytes, back to back, into `out` at
 * `offset`: `<prefix>{<digest>}` then `<prefix>destroyed:{<digest>}` (the same names as
 * sessionKeyName and tombstoneKeyName), for writers that pack a batch of sessions into one buffer.
 * @param prefixBytes the prefix as UTF-8 bytes
 * @param digest EnvelopeCodec.sessionDigest's output (64 lowercase hex characters; only its length
 *   is checked here, in the hot path), or its 32 bytes (EnvelopeCodec.sessionDigestBytes), written
 *   as lowercase hex without a string in between
 * @returns the byte lengths of the two names
 * @throws RangeError for a digest of another length or a buffer too small
 */
export function writeSessionKeyNames(
  out: Buffer,
  offset: number,
  prefixBytes: Uint8Array,
  digest: string | Uint8Array,
): [keyBytes: number, tombstoneBytes: number] {
  if (digest.length !== (typeof digest === 'string' ? 64 : 32))
    throw new RangeError('a session digest is 64 lowercase hex characters (or its 32 bytes)');
  const keyBytes = prefixBytes.length + 66;
  const tombstoneBytes = prefixBytes.length + TOMBSTONE_INFIX.length + 66;
  if (offset < 0 || offset + keyBytes + tombstoneBytes > out.length)
    throw new RangeError('the output buffer is too small for the key names');
  let at = offset;
  out.set(prefixBytes, at);
  at = writeDigestTag(out, at + prefixBytes.length, digest);
  out.set(prefixBytes, at);
  at += prefixBytes.length;
  out.set(TOMBSTONE_INFIX_BYTES, at);
  writeDigestTag(out, at + TOMBSTONE_INFIX_BYTES.length, digest);
  return [keyBytes, tombstoneBytes];
}
