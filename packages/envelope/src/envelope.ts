/**
 * Envelope format version 1: see docs/envelope.md (the one spec) and docs/envelope-vectors.json.
 *
 *   magic "SM" (2) | version 0x01 (1) | key ID (8) | nonce (24) | XChaCha20-Poly1305-IETF ciphertext+tag
 *   AD = header (bytes 0..10) || Redis key name
 */
import { randomFillSync } from 'node:crypto';
import { DEFAULT_PREFIX } from '@session-migrate/common';
import { loadSodium, type Sodium } from './sodium.ts';
import { sessionKeyName } from './key-layout.ts';
import { DirectSodium } from './sodium-direct.ts';

export const MAGIC = Buffer.from('SM', 'latin1');
export const VERSION = 1;
export const KEY_ID_BYTES = 8;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
export const HEADER_BYTES = 2 + 1 + KEY_ID_BYTES;
/** Smallest possible envelope: header, nonce and tag around an empty plaintext (51 bytes). */
export const MIN_ENVELOPE_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
export const MASTER_KEY_BYTES = 32;
/** crypto_kdf context (exactly 8 bytes), shared with the PHP class. */
export const KDF_CONTEXT = 'sessmig1';
export const KDF_ID_ENCRYPTION = 1;
export const KDF_ID_LOOKUP = 2;
export const KDF_ID_KEY_ID = 3;
/** crypto_kdf subkey ID of the lookup ID, derived from K_lookup (docs/keys.md). */
const KDF_ID_LOOKUP_ID = 4;
/** Default Redis key prefix: defined once in @session-migrate/common (defaults.ts). */
export { DEFAULT_PREFIX };

/** Why an envelope did not open (docs/envelope.md, "Opening"). */
export type OpenFailure = 'not-envelope' | 'unsupported-version' | 'unknown-key-id' | 'auth-failed';

export type OpenResult = { ok: true; plaintext: Buffer; keyId: string } | { ok: false; reason: OpenFailure; keyId?: string };

/** Keys derived from one master key. Holds secrets: never log an instance. */
export interface DerivedKeys {
  /** Key ID, 16 lowercase hex characters; safe to print. */
  readonly keyId: string;
  readonly keyIdBytes: Buffer;
  readonly encryptionKey: Uint8Array;
  readonly lookupKey: Uint8Array;
}

/** Derives the per-purpose keys of a 32-byte master key with crypto_kdf (docs/envelope.md). */
export function deriveKeys(sodium: Sodium, masterKey: Uint8Array): DerivedKeys {
  if (masterKey.length !== MASTER_KEY_BYTES) {
    throw new RangeError(`master key must be ${MASTER_KEY_BYTES} bytes`);
  }
  const keyIdBytes = Buffer.from(sodium.crypto_kdf_derive_from_key(16, KDF_ID_KEY_ID, KDF_CONTEXT, masterKey).subarray(0, KEY_ID_BYTES));
  return {
    keyId: keyIdBytes.toString('hex'),
    keyIdBytes,
    encryptionKey: sodium.crypto_kdf_derive_from_key(32, KDF_ID_ENCRYPTION, KDF_CONTEXT, masterKey),
    lookupKey: sodium.crypto_kdf_derive_from_key(32, KDF_ID_LOOKUP, KDF_CONTEXT, masterKey),
  };
}

/**
 * Draws nonces from node:crypto in bulk: libsodium.js's randombytes_buf costs ~150 µs a call, ten
 * times the AEAD itself on 1 KiB.
 */
class NoncePool {
  private pool = Buffer.alloc(0);
  private offset = 0;

  next(): Buffer {
    if (this.offset + NONCE_BYTES > this.pool.length) {
      this.pool = Buffer.allocUnsafe(NONCE_BYTES * 4096);
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const nonce = this.pool.subarray(this.offset, this.offset + NONCE_BYTES);
    this.offset += NONCE_BYTES;
    return nonce;
  }
}

/**
 * Seals and opens envelopes and names Redis keys, for a key ring: the first master key is current
 * (used for new writes), every key opens values carrying its key ID, and the ring's lookup key (by
 * default derived from the first master key) names keys.
 */
export class EnvelopeCodec {
  private readonly current: DerivedKeys;
  /** Header of every envelope sealed now: magic, version, current key ID. */
  private readonly currentHeader: Buffer;
  private readonly byKeyId: Map<string, DerivedKeys>;
  private readonly nonces = new NoncePool();
  /** K_lookup that names keys: the ring's stable lookup key (docs/keys.md). */
  private readonly lookupKey: Uint8Array;
  /** Lookup ID (16 hex characters) of lookupKey. */
  readonly lookupId: string;
  /**
   * libsodium called directly on its WebAssembly heap (sodium-direct.ts), with every key of the ring
   * and the lookup key copied there once; undefined when this libsodium build does not expose its
   * raw exports (then the wrappers are used, same results).
   */
  private readonly direct: { sodium: DirectSodium; current: number; byKeyId: Map<string, number>; lookup: number } | undefined;

  private constructor(
    private readonly sodium: Sodium,
    keys: DerivedKeys[],
    lookupKey: Uint8Array | undefined,
  ) {
    const first = keys[0];
    if (first === undefined) throw new RangeError('a key ring needs at least one key');
    this.current = first;
    this.currentHeader = this.header(first.keyIdBytes);
    this.byKeyId = new Map(keys.map((k) => [k.keyId, k]));
    if (lookupKey !== undefined && lookupKey.length !== 32) throw new RangeError('a lookup key is 32 bytes');
    this.lookupKey = lookupKey !== undefined ? Uint8Array.from(lookupKey) : first.lookupKey;
    this.lookupId = Buffer.from(
      sodium.crypto_kdf_derive_from_key(16, KDF_ID_LOOKUP_ID, KDF_CONTEXT, this.lookupKey).subarray(0, KEY_ID_BYTES),
    ).toString('hex');
    const direct = DirectSodium.of(sodium);
    if (direct !== undefined) {
      const byKeyId = new Map([...this.byKeyId].map(([id, k]) => [id, direct.addKey(k.encryptionKey)]));
      this.direct = { sodium: direct, current: byKeyId.get(first.keyId)!, byKeyId, lookup: direct.addKey(this.lookupKey) };
    }
  }

  /**
   * @param masterKeys 32-byte master keys; the first is current (seals), every one opens.
   * @param lookupKey the ring's 32-byte lookup key (docs/keys.md); default: K_lookup derived from the
   *   first master key, as for a single key file. The codec keeps its own copies of the keys: callers
   *   may zero theirs afterwards.
   * @throws RangeError when a key is not 32 bytes or the list is empty.
   */
  static async create(masterKeys: Uint8Array[], lookupKey?: Uint8Array): Promise<EnvelopeCodec> {
    const sodium = await loadSodium();
    return new EnvelopeCodec(
      sodium,
      masterKeys.map((k) => deriveKeys(sodium, k)),
      lookupKey,
    );
  }

  /** Codec for a key ring (keyring.ts): current, then previous keys, and the ring's lookup key. */
  static async fromRing(ring: { lookupKey: Uint8Array; current: Uint8Array; previous: Uint8Array[] }): Promise<EnvelopeCodec> {
    return EnvelopeCodec.create([ring.current, ...ring.previous], ring.lookupKey);
  }

  /** Whether wipe() was called: the keys are zeroes now. */
  get wiped(): boolean {
    return this.wipedAlready;
  }

  private wipedAlready = false;

  /**
   * Zeroes every derived key this codec holds; the codec is unusable afterwards. Calling it again
   * does nothing (the heap copies are freed once).
   */
  wipe(): void {
    if (this.wipedAlready) return;
    this.wipedAlready = true;
    this.direct?.sodium.wipe();
    for (const k of this.byKeyId.values()) {
      k.encryptionKey.fill(0);
      k.lookupKey.fill(0);
    }
    this.lookupKey.fill(0);
  }

  /**
   * A copy of the ring's lookup key, for worker threads of this process that only name sessions
   * (verify's presence check hands it to its PreparePool). The caller zeroes the copy once handed over.
   */
  lookupKeyCopy(): Uint8Array {
    return Uint8Array.from(this.lookupKey);
  }

  /** Key ID of the current key (16 hex characters). */
  get keyId(): string {
    return this.current.keyId;
  }

  /** Key IDs of every key in the ring, current first. */
  get keyIds(): string[] {
    return [...this.byKeyId.keys()];
  }

  /**
   * The 64-hex digest that names a session: hex(BLAKE2b-256(session ID) keyed with the ring's lookup key).
   * @param sessionId PHP session ID (the part after `sess_` in a file name).
   */
  sessionDigest(sessionId: string): string {
    return Buffer.from(this.sessionDigestBytes(sessionId)).toString('hex');
  }

  /**
   * The 32 bytes of sessionDigest (its hex is the digest in key names), for writers that put the
   * names into a buffer themselves (writeSessionKeyNames): no string is made. The result may be a
   * view of this codec's own memory, overwritten by its next call: use it (or copy it) at once.
   * @param sessionId PHP session ID (the part after `sess_` in a file name).
   */
  sessionDigestBytes(sessionId: string): Uint8Array {
    if (this.direct !== undefined) return this.direct.sodium.hash(sessionId, this.direct.lookup);
    return this.sodium.crypto_generichash(32, Buffer.from(sessionId, 'utf8'), this.lookupKey);
  }

  /**
   * Redis key name for a session ID, key layout 2: `<prefix>{<digest>}` (key-layout.ts, docs/envelope.md).
   * @param sessionId PHP session ID (the part after `sess_` in a file name).
   */
  keyName(prefix: string, sessionId: string): string {
    return sessionKeyName(prefix, this.sessionDigest(sessionId));
  }

  /**
   * Encrypts a session payload for one Redis key.
   * @param redisKey the full key name the value will be stored under (bound through the AD); a string
   *   is taken as UTF-8, bytes as they are.
   * @param plaintext the session bytes exactly as PHP wrote them.
   * @param nonce 24 bytes; only tests pass one, production draws a fresh random nonce.
   * @returns the envelope bytes (plaintext length + 51).
   */
  seal(redisKey: string | Uint8Array, plaintext: Uint8Array, nonce?: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(MIN_ENVELOPE_BYTES + plaintext.length);
    this.sealTo(out, 0, redisKey, plaintext, nonce);
    return out;
  }

  /**
   * seal() into a buffer the caller owns (e.g. one buffer for a whole batch of sessions).
   * @param out receives the envelope at `offset`: `MIN_ENVELOPE_BYTES + plaintext.length` bytes.
   * @returns the number of bytes written.
   * @throws RangeError when the nonce is not 24 bytes or `out` is too small.
   */
  sealTo(
    out: Uint8Array,
    offset: number,
    redisKey: string | Uint8Array,
    plaintext: Uint8Array,
    nonce: Uint8Array = this.nonces.next(),
  ): number {
    if (nonce.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`);
    const length = MIN_ENVELOPE_BYTES + plaintext.length;
    if (offset < 0 || offset + length > out.length) throw new RangeError('the output buffer is too small for the envelope');
    const keyBytes = typeof redisKey === 'string' ? Buffer.from(redisKey, 'utf8') : redisKey;
    const header = this.currentHeader;
    out.set(header, offset);
    out.set(nonce, offset + HEADER_BYTES);
    const at = offset + HEADER_BYTES + NONCE_BYTES;
    if (this.direct !== undefined) {
      this.direct.sodium.encrypt(out, at, plaintext, [header, keyBytes], nonce, this.direct.current);
    } else {
      out.set(
        this.sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
          plaintext,
          Buffer.concat([header, keyBytes]),
          null,
          nonce,
          this.current.encryptionKey,
        ),
        at,
      );
    }
    return length;
  }

  /**
   * Opens an envelope read from `redisKey` (a string is taken as UTF-8; a Buffer as the raw bytes of a
   * key name that may not be UTF-8). Never throws for bad input: the failure is named in the
   * result (docs/envelope.md, "Opening").
   */
  open(redisKey: string | Buffer, envelope: Uint8Array): OpenResult {
    const buf = Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength);
    if (buf.length < MIN_ENVELOPE_BYTES || buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1]) {
      return { ok: false, reason: 'not-envelope' };
    }
    const keyId = buf.subarray(3, HEADER_BYTES).toString('hex');
    if (buf[2] !== VERSION) return { ok: false, reason: 'unsupported-version', keyId };
    const keys = this.byKeyId.get(keyId);
    if (keys === undefined) return { ok: false, reason: 'unknown-key-id', keyId };
    const header = buf.subarray(0, HEADER_BYTES);
    const nonce = buf.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
    const keyBytes = typeof redisKey === 'string' ? Buffer.from(redisKey, 'utf8') : redisKey;
    const handle = this.direct?.byKeyId.get(keyId);
    if (this.direct !== undefined && handle !== undefined) {
      const plaintext = this.direct.sodium.decrypt(buf.subarray(HEADER_BYTES + NONCE_BYTES), [header, keyBytes], nonce, handle);
      return plaintext !== undefined ? { ok: true, plaintext, keyId } : { ok: false, reason: 'auth-failed', keyId };
    }
    try {
      const plaintext = this.sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        null,
        buf.subarray(HEADER_BYTES + NONCE_BYTES),
        Buffer.concat([header, keyBytes]),
        nonce,
        keys.encryptionKey,
      );
      return { ok: true, plaintext: Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength), keyId };
    } catch {
      return { ok: false, reason: 'auth-failed', keyId };
    }
  }

  private header(keyIdBytes: Buffer): Buffer {
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header[2] = VERSION;
    keyIdBytes.copy(header, 3);
    return header;
  }
}
