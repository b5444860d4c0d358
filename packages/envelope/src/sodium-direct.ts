/**
 * The envelope's two hot primitives, XChaCha20-Poly1305-IETF and keyed BLAKE2b, called straight on
 * libsodium's WebAssembly exports with buffers allocated once, instead of through libsodium-wrappers'
 * per-call helpers (which malloc, copy and free every argument and convert the output: about 4-7 µs
 * of a 1 KiB seal, against 2.5 µs here). Same library, same functions, same bytes: only the calling
 * convention differs (docs/envelope.md; checked against docs/envelope-vectors.json and against the
 * wrappers on random inputs in packages/envelope/test/envelope.test.ts).
 *
 * Why not node:crypto's ChaCha20-Poly1305 with HChaCha20 in JavaScript: measured on Node 20 with a
 * 1 KiB session it is slower (about 6.4 µs: createCipheriv alone costs 2 µs, and a cipher cannot be
 * re-keyed), and it would put a second implementation of the AEAD beside the PHP side's libsodium.
 *
 * The functions and their C signatures are libsodium's (https://doc.libsodium.org/secret-key_cryptography/aead/chacha20-poly1305/xchacha20-poly1305_construction,
 * https://doc.libsodium.org/hashing/generic_hashing). In WebAssembly (wasm32, as libsodium.js builds
 * it) every `unsigned long long` length is passed as two 32-bit halves, low first, as the wrappers
 * themselves call them (libsodium.js wrapper/wrap-template.js).
 *
 * One instance per thread (libsodium.js has one heap per module instance, and a worker thread loads
 * its own). Holds secrets in the WebAssembly heap: `wipe()` zeroes them.
 */
import type { Sodium } from './sodium.ts';

/** The raw exports of libsodium.js's module that this file calls (libsodium-wrappers exposes it as `sodium.libsodium`). */
interface RawLibsodium {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _crypto_aead_xchacha20poly1305_ietf_encrypt(
    c: number,
    clenP: number,
    m: number,
    mlenLo: number,
    mlenHi: number,
    ad: number,
    adlenLo: number,
    adlenHi: number,
    nsec: number,
    npub: number,
    k: number,
  ): number;
  _crypto_aead_xchacha20poly1305_ietf_decrypt(
    m: number,
    mlenP: number,
    nsec: number,
    c: number,
    clenLo: number,
    clenHi: number,
    ad: number,
    adlenLo: number,
    adlenHi: number,
    npub: number,
    k: number,
  ): number;
  _crypto_generichash(out: number, outlen: number, input: number, inlenLo: number, inlenHi: number, key: number, keylen: number): number;
}

const REQUIRED: Array<keyof RawLibsodium> = [
  '_malloc',
  '_free',
  '_crypto_aead_xchacha20poly1305_ietf_encrypt',
  '_crypto_aead_xchacha20poly1305_ietf_decrypt',
  '_crypto_generichash',
];

const NONCE_BYTES = 24;
const TAG_BYTES = 16;

/** A region of the WebAssembly heap, grown on demand. */
class Region {
  ptr = 0;
  size = 0;
  constructor(private readonly lib: RawLibsodium) {}
  /** The address of at least `size` bytes (the old contents are not kept). */
  reserve(size: number): number {
    if (size > this.size) {
      if (this.ptr !== 0) {
        this.lib.HEAPU8.fill(0, this.ptr, this.ptr + this.size);
        this.lib._free(this.ptr);
      }
      // Rounded up, so that sessions of slowly growing sizes do not reallocate each time.
      const want = Math.max(4096, 2 ** Math.ceil(Math.log2(size)));
      const ptr = this.lib._malloc(want);
      if (ptr === 0) throw new RangeError(`libsodium could not allocate ${want} bytes`);
      this.ptr = ptr;
      this.size = want;
    }
    return this.ptr;
  }
  wipe(): void {
    if (this.ptr === 0) return;
    this.lib.HEAPU8.fill(0, this.ptr, this.ptr + this.size);
    this.lib._free(this.ptr);
    this.ptr = 0;
    this.size = 0;
  }
}

/**
 * Direct calls of libsodium's AEAD and generic hash on one thread's libsodium instance.
 * Keys are registered once (`addKey`) and live in the heap until `wipe()`.
 */
export class DirectSodium {
  private readonly input: Region;
  private readonly output: Region;
  private readonly ad: Region;
  private small: number;
  private readonly keys: number[] = [];

  private constructor(private readonly lib: RawLibsodium) {
    this.input = new Region(lib);
    this.output = new Region(lib);
    this.ad = new Region(lib);
    // nonce (24) and hash output (32)
    this.small = lib._malloc(64);
    if (this.small === 0) throw new RangeError('libsodium could not allocate 64 bytes');
  }

  /** The direct interface of a loaded libsodium, or undefined when its raw exports are not there (another build). */
  static of(sodium: Sodium): DirectSodium | undefined {
    const lib = (sodium as unknown as { libsodium?: Partial<RawLibsodium> }).libsodium;
    if (lib === undefined || !(lib.HEAPU8 instanceof Uint8Array) || REQUIRED.some((f) => typeof lib[f] !== 'function')) return undefined;
    return new DirectSodium(lib as RawLibsodium);
  }

  /** Copies a 32-byte key into the heap; returns its handle for seal/open/hash. */
  addKey(key: Uint8Array): number {
    if (key.length !== 32) throw new RangeError('a key is 32 bytes');
    const ptr = this.lib._malloc(32);
    if (ptr === 0) throw new RangeError('libsodium could not allocate 32 bytes');
    this.lib.HEAPU8.set(key, ptr);
    this.keys.push(ptr);
    return ptr;
  }

  /**
   * crypto_aead_xchacha20poly1305_ietf_encrypt: writes ciphertext || tag (plaintext.length + 16
   * bytes) into `out` at `offset`.
   * @param adParts the associated data, as consecutive parts (no concatenation needed)
   */
  encrypt(out: Uint8Array, offset: number, plaintext: Uint8Array, adParts: readonly Uint8Array[], nonce: Uint8Array, key: number): void {
    const mlen = plaintext.length;
    let adlen = 0;
    for (const p of adParts) adlen += p.length;
    // In place: the ciphertext overwrites the plaintext (the stream cipher XORs each word after
    // reading it; libsodium's crypto_aead_xchacha20poly1305_ietf_encrypt_detached reads `m` only
    // there), and the tag follows it. So the plaintext does not stay in the heap, with no wipe.
    const c = this.output.reserve(mlen + TAG_BYTES);
    const ad = this.ad.reserve(adlen + 1);
    // After any malloc the heap may have grown: take the view now.
    const heap = this.lib.HEAPU8;
    heap.set(plaintext, c);
    let at = ad;
    for (const p of adParts) {
      heap.set(p, at);
      at += p.length;
    }
    heap.set(nonce, this.small);
    if (this.lib._crypto_aead_xchacha20poly1305_ietf_encrypt(c, 0, c, mlen, 0, ad, adlen, 0, 0, this.small, key) !== 0) {
      heap.fill(0, c, c + mlen);
      throw new Error('crypto_aead_xchacha20poly1305_ietf_encrypt failed');
    }
    out.set(heap.subarray(c, c + mlen + TAG_BYTES), offset);
  }

  /**
   * crypto_aead_xchacha20poly1305_ietf_decrypt of ciphertext || tag.
   * @returns the plaintext, or undefined when the tag does not verify.
   */
  decrypt(ciphertext: Uint8Array, adParts: readonly Uint8Array[], nonce: Uint8Array, key: number): Buffer | undefined {
    const clen = ciphertext.length;
    if (clen < TAG_BYTES) return undefined;
    let adlen = 0;
    for (const p of adParts) adlen += p.length;
    const c = this.input.reserve(clen + 1);
    const m = this.output.reserve(clen);
    const ad = this.ad.reserve(adlen + 1);
    const heap = this.lib.HEAPU8;
    heap.set(ciphertext, c);
    let at = ad;
    for (const p of adParts) {
      heap.set(p, at);
      at += p.length;
    }
    heap.set(nonce.subarray(0, NONCE_BYTES), this.small);
    if (this.lib._crypto_aead_xchacha20poly1305_ietf_decrypt(m, 0, 0, c, clen, 0, ad, adlen, 0, this.small, key) !== 0) return undefined;
    const plaintext = Buffer.from(heap.subarray(m, m + clen - TAG_BYTES));
    heap.fill(0, m, m + clen - TAG_BYTES);
    return plaintext;
  }

  /** crypto_generichash(32, input, key): the 32-byte keyed BLAKE2b digest, as 64 lowercase hex characters. */
  hashHex(input: Uint8Array, key: number): string {
    return Buffer.from(this.hash(input, key)).toString('hex');
  }

  /**
   * crypto_generichash(32, input, key), the 32-byte keyed BLAKE2b digest: a view of this instance's
   * heap, valid until its next call (copy it to keep it). A string input is hashed as its UTF-8 bytes.
   */
  hash(input: Uint8Array | string, key: number): Uint8Array {
    if (typeof input === 'string') {
      // An ASCII string (every PHP session ID: [A-Za-z0-9,-]) is its own UTF-8: copied into the heap
      // as it is, without a Buffer in between; anything else goes through Buffer.from.
      const inp = this.input.reserve(input.length + 1);
      const heap = this.lib.HEAPU8;
      let i = 0;
      for (; i < input.length; i++) {
        const c = input.charCodeAt(i);
        if (c > 0x7f) break;
        heap[inp + i] = c;
      }
      if (i < input.length) return this.hash(Buffer.from(input, 'utf8'), key);
      return this.digestAt(inp, input.length, key);
    }
    const inp = this.input.reserve(input.length + 1);
    this.lib.HEAPU8.set(input, inp);
    return this.digestAt(inp, input.length, key);
  }

  /** crypto_generichash(32) of `length` heap bytes at `inp`, as a view of the heap. */
  private digestAt(inp: number, length: number, key: number): Uint8Array {
    const out = this.small + NONCE_BYTES;
    if (this.lib._crypto_generichash(out, 32, inp, length, 0, key, 32) !== 0) throw new Error('crypto_generichash failed');
    return this.lib.HEAPU8.subarray(out, out + 32);
  }

  /** Zeroes and frees every key and buffer in the heap; the instance is unusable afterwards. */
  wipe(): void {
    const heap = this.lib.HEAPU8;
    for (const k of this.keys) {
      heap.fill(0, k, k + 32);
      this.lib._free(k);
    }
    this.keys.length = 0;
    this.input.wipe();
    this.output.wipe();
    this.ad.wipe();
    this.lib.HEAPU8.fill(0, this.small, this.small + 64);
    this.lib._free(this.small);
  }
}
