/**
 * Validating passes for {@link classifySession}: they walk exactly the grammar the decoders walk
 * (unserialize.ts for php / php_binary / php_serialize, igbinary.ts for igbinary) and reach exactly the
 * same verdict -- accepted or not, entries decoded before a failure, warnings in the same order -- without
 * building the value model: no string slicing for values, no value objects, no per-container objects.
 *
 * What acceptance depends on, and how it is tracked here:
 * - token grammar, lengths, counts, `unserialize_max_depth`, class names: checked in place, byte by byte;
 * - `r:` / `R:` back-references (var_unserializer.re): PHP numbers every value except `R:`, and a slot is
 *   a POSITION (container + key), so a repeated key makes a later value share the earlier value's slot.
 *   A back-reference is valid when its slot exists, is not the position being written, and (for `r:`)
 *   holds an object. The first pass tracks none of this: when it meets `r:`/`R:` it stops and the payload
 *   is validated again in tracking mode, which numbers positions (deduplicating keys exactly as the
 *   decoder's findOrAddEntry does) and remembers per position whether its value is an object;
 * - igbinary value references and string ids: only the table sizes matter (igbinary.ts never lets a
 *   reference see a half-built entry), so two counters and the offsets of the strings read so far;
 * - warnings: the same ids, added at the same points; top-level key warnings of php_serialize and
 *   igbinary are added after the value (and trailing-bytes) warnings, as the decoders add them.
 *
 * The equivalence with the decoders is tested over the whole test corpus (test/classify-equivalence.test.ts).
 * Scratch stacks are module-level and reused: the validators are synchronous and never re-entered.
 */
import { bytesToName, asciiLower } from './bytes.ts';
import { hasIgbinaryHeader } from './igbinary.ts';
import { intValue } from './model.ts';
import { DEFAULT_MAX_DEPTH, NOT_SERIALIZABLE_CLASSES, handleNumericKey, isValidClassName } from './unserialize.ts';

/** What classification needs from one decode attempt (the decoder's `Internal`, without the values). */
export interface Verdict {
  /** the decoder's `result.ok` */
  ok: boolean;
  /** would PHP's session_decode() accept it */
  phpAccepts: boolean;
  /** top-level entries decoded before a failure (php, php_binary; used to sniff corrupt payloads) */
  decodedEntries: number;
  /** warning ids in the decoder's order; [] when not ok */
  warnings: string[];
}

type Handler = 'php' | 'php_binary' | 'php_serialize' | 'igbinary';

const HT_MAX_SIZE = 0x40000000;
const MAX_SAFE = 9007199254740991;
const LONG_MAX = 9223372036854775807n;
const U64 = 1n << 64n;
/** "9223372036854775807" */
const LONG_MAX_DIGITS = [57, 50, 50, 51, 51, 55, 50, 48, 51, 54, 56, 53, 52, 55, 55, 53, 56, 48, 55];

const QUOTE = 0x22,
  COLON = 0x3a,
  SEMI = 0x3b,
  LBRACE = 0x7b,
  RBRACE = 0x7d,
  PLUS = 0x2b,
  MINUS = 0x2d;
const DOT = 0x2e,
  ZERO = 0x30,
  NINE = 0x39,
  BACKSLASH = 0x5c,
  PIPE = 0x7c;

const W_CLAMPED = 'int-out-of-range-clamped';
const W_SERIALIZABLE = 'serializable-object';
const W_ENUM = 'enum-requires-class';
const W_TRAILING = 'trailing-bytes-ignored-by-php';
const W_NUMERIC = 'session-numeric-key';
const W_TOO_LONG = 'session-key-too-long';
const W_DUPLICATE = 'session-key-duplicate';
const W_PRECISION = 'int-key-precision-lost';

/** Adds to an insertion-ordered set of ids (the decoders use a Set; there are only a few ids). */
function addWarning(list: string[], id: string): void {
  if (!list.includes(id)) list.push(id);
}

function failed(decodedEntries: number, phpAccepts = false): Verdict {
  return { ok: false, phpAccepts, decodedEntries, warnings: [] };
}

// ---- shared scratch (grown on demand, never shrunk) ----------------------------------------------------

/** Remaining elements per open container. */
let remStack = new Float64Array(64);
/** 1 when the open container is an object. */
let objStack = new Uint8Array(64);
/** Tracking mode: position of each back-reference slot. */
let slotPos = new Int32Array(256);
/** Tracking mode: 1 when the value at a position is (or references) an object / C: object / enum. */
let posObj = new Uint8Array(256);
/** igbinary: offset and length of every string read so far (the string-id table). */
let strStart = new Float64Array(64);
let strLen = new Float64Array(64);
/**
 * Tracking mode, key deduplication without strings: one record per key of the open containers (a stack:
 * a container's keys sit above its parent's until it closes), pointing at the key's identity bytes in
 * the payload or, when they are not there as such (S: keys, ints not written canonically), in keyBytes.
 */
let keyBytes = Buffer.alloc(1024);
let recAt = new Int32Array(64);
let recLen = new Int32Array(64);
let recPos = new Int32Array(64);
/** Tracking mode: first key record and first identity byte of each open container. */
let frameRec = new Int32Array(64);
let frameByte = new Int32Array(64);

function growFrames(n: number): void {
  if (n < remStack.length) return;
  const r = new Float64Array(remStack.length * 2);
  r.set(remStack);
  remStack = r;
  const o = new Uint8Array(objStack.length * 2);
  o.set(objStack);
  objStack = o;
  const a = new Int32Array(frameRec.length * 2);
  a.set(frameRec);
  frameRec = a;
  const b = new Int32Array(frameByte.length * 2);
  b.set(frameByte);
  frameByte = b;
}

function grown(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

function growKeyBytes(n: number): void {
  if (n <= keyBytes.length) return;
  const b = Buffer.alloc(Math.max(n, keyBytes.length * 2));
  keyBytes.copy(b);
  keyBytes = b;
}

function growRecords(n: number): void {
  if (n < recAt.length) return;
  recAt = grown(recAt);
  recLen = grown(recLen);
  recPos = grown(recPos);
}

/** Containers with more keys than this look keys up in a Map (of latin1 strings) instead of scanning. */
const SCAN_LIMIT = 16;

// ---- helpers shared by both grammars -------------------------------------------------------------------

/**
 * The decoders' class-name decision, the name lower-cased in ASCII only (as PHP does) compared with
 * 'stdclass' and NOT_SERIALIZABLE_CLASSES: 1 = stdClass, 2 = refuses unserialization, 0 = any other class.
 */
export function classNameKind(buf: Buffer, start: number, end: number): 0 | 1 | 2 {
  const n = end - start;
  for (let i = start; i < end; i++) {
    if (buf[i]! >= 0x80) {
      const lower = asciiLower(bytesToName(buf, start, end));
      return lower === 'stdclass' ? 1 : NOT_SERIALIZABLE_CLASSES.has(lower) ? 2 : 0;
    }
  }
  // ASCII: only a name with the length and first letter of a candidate is lower-cased and looked up
  const first = buf[start]! | 0x20;
  if (n === 8 && first === 0x73 && asciiLowerEquals(buf, start, 'stdclass')) return 1;
  if (n >= CANDIDATE_SHAPES.length || !CANDIDATE_SHAPES[n]!.includes(first)) return 0;
  return NOT_SERIALIZABLE_CLASSES.has(asciiLower(buf.toString('latin1', start, end))) ? 2 : 0;
}

/** Lower-case first letters of the NOT_SERIALIZABLE_CLASSES names, by name length. */
const CANDIDATE_SHAPES: number[][] = (() => {
  const shapes: number[][] = [];
  for (const name of NOT_SERIALIZABLE_CLASSES) {
    while (shapes.length <= name.length) shapes.push([]);
    shapes[name.length]!.push(name.charCodeAt(0));
  }
  return shapes;
})();

/** ASCII bytes at `start`, lower-cased, equal `lower` (all lower-case letters)? */
function asciiLowerEquals(buf: Buffer, start: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((buf[start + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/**
 * `handleNumericKey(bytesToName(buf[start, end)))`. A name with a non-ASCII byte is never numeric (every
 * character after an optional leading '-' must be an ASCII digit), and an ASCII name reads the same in
 * latin1, so the string is only built for names that start like a number.
 */
export function numericKeyOf(buf: Buffer, start: number, end: number): number | bigint | null {
  const n = end - start;
  if (n === 0 || n > 20) return null;
  const c = buf[start]!;
  if (c !== MINUS && (c < ZERO || c > NINE)) return null;
  for (let i = start + 1; i < end; i++) {
    const d = buf[i]!;
    if (d < ZERO || d > NINE) return null;
  }
  return handleNumericKey(buf.toString('latin1', start, end));
}

/** Warnings checkTopLevelKey() adds for a string key (given as its exact bytes). */
function stringKeyWarnings(buf: Buffer, start: number, end: number, out: string[]): void {
  if (numericKeyOf(buf, start, end) !== null) addWarning(out, W_NUMERIC);
  if (end - start > 127) addWarning(out, W_TOO_LONG);
}

// ---- php / php_binary / php_serialize values (var_unserializer.re, as ported in unserialize.ts) -------

/**
 * One `php_unserialize_data_t` walked without values. Mirrors VarUnserializer method by method; the
 * comments name the decoder's checks only where the mapping is not one to one.
 */
class VarValidator {
  pos = 0;
  /** Open containers (the decoder's explicit stack). */
  private sp = 0;
  private depth = 0;
  /** Set when a back-reference was met outside tracking mode: validate again with `track`. */
  needTrack = false;
  /** Tracking mode: number of slots (var_push calls) and of positions. */
  private slots = 0;
  private positions = 0;
  /** Tracking mode: key records and identity bytes in use (see keyBytes). */
  private recTop = 0;
  private byteTop = 0;
  /** Tracking mode: per open container with many keys, identity -> position. */
  private keyMaps: Array<Map<string, number> | null> = [];
  /** php_serialize: warnings of the root array's keys (added after everything else, like arrayToSession). */
  rootKeyWarnings: string[] | null = null;

  // results of the token scanners
  private ivNeg = false;
  /**
   * ivText..(ivSig + ivLen) is the int's canonical decimal text: the optional '-' and the digits (a '+'
   * is skipped), valid unless there are leading zeros, "-0" or clamping (then ivCanonical is false).
   */
  private ivCanonical = false;
  private ivText = 0;
  private ivSig = 0;
  private ivLen = 0;
  private ivNext = 0;
  private uivNext = 0;
  /** Set by quotedName(): the name's first byte and its closing quote. */
  private nameStart = 0;
  private nameEnd = 0;
  private strAt = 0;
  private strN = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly end: number,
    private readonly warnings: string[],
    private readonly maxDepth: number,
    private readonly track: boolean,
  ) {}

  /** Byte at i, or 0 past the end (the decoder's `at`). */
  private at(i: number): number {
    return i < this.end ? this.buf[i]! : 0;
  }

  /** A fresh position (a new [key, value] entry or a new session cell). */
  newPosition(): number {
    const p = this.positions++;
    if (p >= posObj.length) {
      const a = new Uint8Array(posObj.length * 2);
      a.set(posObj);
      posObj = a;
    }
    posObj[p] = 0;
    return p;
  }

  /** unserializeInto: one value at position `at`, containers included. */
  value(at: number): boolean {
    if (!this.one(at)) return false;
    const buf = this.buf;
    while (this.sp > 0) {
      const f = this.sp - 1;
      const r = remStack[f]!;
      if (r > 0) {
        remStack[f] = r - 1;
        const p = this.key(f);
        if (p < 0) return false;
        if (!this.one(p)) return false;
      } else {
        this.depth--;
        const p = this.pos;
        if (p >= this.end || buf[p] !== RBRACE) return false;
        this.pos = p + 1;
        this.sp = f;
        if (this.track) {
          this.keyMaps[f] = null;
          this.recTop = frameRec[f]!;
          this.byteTop = frameByte[f]!;
        }
      }
    }
    return true;
  }

  /**
   * An array key or property name (parseKey + the key handling of unserializeInto). Returns the position
   * the value goes to (0 outside tracking mode), or -1 on failure.
   */
  private key(f: number): number {
    const c = this.at(this.pos);
    const rootKeys = f === 0 && this.rootKeyWarnings !== null && objStack[0] === 0;
    if (c === 0x69 /* i */) {
      if (!this.intToken()) return -1;
      if (rootKeys) {
        if (typeof this.intValue() === 'bigint') addWarning(this.rootKeyWarnings!, W_PRECISION);
        addWarning(this.rootKeyWarnings!, W_NUMERIC);
      }
      return this.track ? this.intKeyPosition(f) : 0;
    }
    if (c === 0x73 /* s */ || c === 0x53 /* S */) {
      const escaped = c === 0x53;
      if (!this.stringToken(escaped)) return -1;
      if (rootKeys) {
        // arrayToSession -> checkTopLevelKey on the key after ZEND_HANDLE_NUMERIC_STR
        const kb = escaped ? this.unescape(this.strAt, this.strN) : this.buf;
        const ks = escaped ? 0 : this.strAt;
        const numeric = numericKeyOf(kb, ks, ks + this.strN);
        if (numeric !== null) {
          if (typeof numeric === 'bigint') addWarning(this.rootKeyWarnings!, W_PRECISION);
          addWarning(this.rootKeyWarnings!, W_NUMERIC);
        } else if (this.strN > 127) {
          addWarning(this.rootKeyWarnings!, W_TOO_LONG);
        }
      }
      return this.track ? this.stringKeyPosition(f, escaped) : 0;
    }
    return -1;
  }

  /*
   * Key identity in tracking mode. The decoder compares keys as PHP does: in an array, an int key or a
   * string that ZEND_HANDLE_NUMERIC_STR turns into an int compares as that int, any other string as its
   * bytes; in an object every key is a string (an int key becomes its decimal text). In both cases two
   * keys are the same exactly when these bytes are the same: an int key's canonical decimal text, a
   * string key's bytes. (A string key whose bytes are a canonical in-range decimal is precisely a numeric
   * one, which becomes that int.)
   */

  /** Position of the int key just scanned. */
  private intKeyPosition(f: number): number {
    if (this.ivCanonical) return this.position(f, this.buf, this.ivText, this.ivSig + this.ivLen - this.ivText);
    const text = String(this.intValue());
    const a = this.byteTop;
    growKeyBytes(a + text.length);
    for (let i = 0; i < text.length; i++) keyBytes[a + i] = text.charCodeAt(i);
    return this.position(f, keyBytes, a, text.length);
  }

  /** Position of the string key just scanned. */
  private stringKeyPosition(f: number, escaped: boolean): number {
    const n = this.strN;
    if (!escaped) return this.position(f, this.buf, this.strAt, n);
    growKeyBytes(this.byteTop + n);
    this.unescape(this.strAt, n).copy(keyBytes, this.byteTop);
    return this.position(f, keyBytes, this.byteTop, n);
  }

  /**
   * findOrAddEntry for the key whose identity bytes are src[at, at + n) (src: the payload, or keyBytes
   * at byteTop): the position of the same key earlier in container `f` (its value is reset, like the
   * decoder's NULL_VALUE), else a new position.
   */
  private position(f: number, src: Buffer, at: number, n: number): number {
    const map = this.keyMaps[f];
    if (map) {
      const name = src.toString('latin1', at, at + n);
      const seen = map.get(name);
      if (seen !== undefined) {
        posObj[seen] = 0;
        return seen;
      }
      const p = this.newPosition();
      map.set(name, p);
      return p;
    }
    const buf = this.buf;
    const base = frameRec[f]!;
    for (let r = base; r < this.recTop; r++) {
      if (recLen[r] !== n) continue;
      // recAt >= 0: an offset in the payload; < 0: ~offset in keyBytes
      const b = recAt[r]!;
      const other = b >= 0 ? buf : keyBytes;
      const o = b >= 0 ? b : ~b;
      let i = 0;
      while (i < n && other[o + i] === src[at + i]) i++;
      if (i === n) {
        const p = recPos[r]!;
        posObj[p] = 0;
        return p;
      }
    }
    const p = this.newPosition();
    const r = this.recTop++;
    growRecords(r + 1);
    if (src === buf) {
      recAt[r] = at;
    } else {
      recAt[r] = ~at;
      this.byteTop = at + n;
    }
    recLen[r] = n;
    recPos[r] = p;
    if (this.recTop - base > SCAN_LIMIT) {
      const m = new Map<string, number>();
      for (let k = base; k < this.recTop; k++) {
        const b = recAt[k]!;
        const o = b >= 0 ? b : ~b;
        m.set((b >= 0 ? buf : keyBytes).toString('latin1', o, o + recLen[k]!), recPos[k]!);
      }
      this.keyMaps[f] = m;
    }
    return p;
  }

  /** parseOne: one token at position `at`; containers push a frame. */
  private one(at: number): boolean {
    const start = this.pos;
    if (start >= this.end) return false;
    const c = this.buf[start]!;
    if (this.track && c !== 0x52 /* R */) {
      const s = this.slots++;
      if (s >= slotPos.length) {
        const a = new Int32Array(slotPos.length * 2);
        a.set(slotPos);
        slotPos = a;
      }
      slotPos[s] = at; // posObj[at] is 0 here: a new position, or a repeated key's (reset by position())
    }
    switch (c) {
      case 0x4e: // N;
        if (this.at(start + 1) !== SEMI) return false;
        this.pos = start + 2;
        return true;
      case 0x62: {
        // b:0; b:1;
        const v = this.at(start + 2);
        if (this.at(start + 1) !== COLON || (v !== 0x30 && v !== 0x31) || this.at(start + 3) !== SEMI) return false;
        this.pos = start + 4;
        return true;
      }
      case 0x69:
        return this.intToken();
      case 0x64:
        return this.doubleToken();
      case 0x73:
        return this.stringToken(false);
      case 0x53:
        return this.stringToken(true);
      case 0x61:
        return this.array();
      case 0x4f:
        return this.object(at, false);
      case 0x43:
        return this.object(at, true);
      case 0x45:
        return this.enumToken(at);
      case 0x72:
        return this.backRef(at, false);
      case 0x52:
        return this.backRef(at, true);
      default:
        return false;
    }
  }

  /** parseIntToken: `"i:" [+-]? [0-9]+ ";"`, with parse_iv2's clamping warning. */
  private intToken(): boolean {
    const buf = this.buf;
    const start = this.pos;
    if (this.at(start + 1) !== COLON) return false;
    let p = start + 2;
    let c = this.at(p);
    const neg = c === MINUS;
    if (neg || c === PLUS) c = this.at(++p);
    const digitsStart = p;
    while (c === ZERO) c = this.at(++p);
    const sig = p;
    while (c >= ZERO && c <= NINE) c = this.at(++p);
    if (p === digitsStart || c !== SEMI) return false;
    const len = p - sig;
    const clamped = len > 19 || (len === 19 && exceedsLongMax(buf, sig, neg));
    if (clamped) addWarning(this.warnings, W_CLAMPED);
    this.ivNeg = neg;
    this.ivSig = sig;
    this.ivLen = len;
    this.ivText = neg ? start + 2 : digitsStart;
    this.ivCanonical = !clamped && (sig === digitsStart || (len === 0 && sig === digitsStart + 1 && !neg));
    this.pos = p + 1;
    return true;
  }

  /** The value of the int token just scanned, exactly as parseIv returns it (keys only). */
  private intValue(): number | bigint {
    const { buf, ivNeg: neg, ivSig: s, ivLen: len } = this;
    if (len <= 15) {
      let v = 0;
      for (let i = s; i < s + len; i++) v = v * 10 + (buf[i]! - ZERO);
      return neg ? (v === 0 ? 0 : -v) : v;
    }
    if (len > 19) return neg ? -LONG_MAX - 1n : LONG_MAX;
    const digits = BigInt(buf.toString('latin1', s, s + len));
    if (digits > LONG_MAX + (neg ? 1n : 0n)) return neg ? -LONG_MAX - 1n : LONG_MAX;
    return intValue(neg ? -digits : digits);
  }

  /**
   * parse_iv2 used as a count or length (asCount(parseIv(p))): sign, leading zeros, digits. More than 15
   * significant digits is at least 10^15, more than any count or length the callers accept, so it is
   * reported as Infinity (or -1 when negative) like asCount does for bigints. Sets ivNext.
   */
  private count(p: number): number {
    let c = this.at(p);
    const neg = c === MINUS;
    if (neg || c === PLUS) c = this.at(++p);
    while (c === ZERO) c = this.at(++p);
    const sig = p;
    let v = 0;
    while (c >= ZERO && c <= NINE) {
      v = v * 10 + (c - ZERO);
      c = this.at(++p);
    }
    this.ivNext = p;
    if (p - sig > 15) return neg ? -1 : Infinity;
    return neg ? (v === 0 ? 0 : -v) : v;
  }

  /** parse_uiv (wraps modulo 2^64; beyond 2^53 -> Infinity). `p` points at a digit. Sets uivNext. */
  private uiv(p: number): number {
    const buf = this.buf;
    const start = p;
    let v = 0;
    let c = this.at(p);
    while (c >= ZERO && c <= NINE) {
      v = v * 10 + (c - ZERO);
      c = this.at(++p);
    }
    this.uivNext = p;
    if (p - start <= 15) return v;
    let big = 0n;
    for (let i = start; i < p; i++) big = (big * 10n + BigInt(buf[i]! - ZERO)) % U64;
    return big <= 9007199254740991n ? Number(big) : Infinity;
  }

  /** parseStringToken without building the string: sets strAt / strN (the raw, still escaped, bytes). */
  private stringToken(escaped: boolean): boolean {
    const start = this.pos;
    if (this.at(start + 1) !== COLON) return false;
    const d = this.at(start + 2);
    if (d < ZERO || d > NINE) return false;
    const len = this.uiv(start + 2);
    const next = this.uivNext;
    if (this.at(next) !== COLON || this.at(next + 1) !== QUOTE) return false;
    let cur = next + 2;
    const maxlen = this.end - cur;
    if (maxlen < len) return false;
    this.strAt = cur;
    this.strN = len;
    if (!escaped) {
      cur += len;
    } else {
      const buf = this.buf;
      const limit = cur + maxlen;
      for (let i = 0; i < len; i++) {
        if (cur >= limit) return false;
        if (buf[cur] === BACKSLASH) {
          for (let j = 0; j < 2; j++) {
            cur++;
            if (hexVal(this.at(cur)) < 0) return false;
          }
        }
        cur++;
      }
    }
    if (this.at(cur) !== QUOTE || this.at(cur + 1) !== SEMI) return false;
    this.pos = cur + 2;
    return true;
  }

  /** The bytes of an `S:` string already validated by stringToken (unserialize_str). */
  private unescape(cur: number, n: number): Buffer {
    const buf = this.buf;
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) {
      const b = buf[cur]!;
      if (b !== BACKSLASH) {
        out[i] = b;
      } else {
        out[i] = (hexVal(buf[cur + 1]!) << 4) + hexVal(buf[cur + 2]!);
        cur += 2;
      }
      cur++;
    }
    return out;
  }

  /** parseDoubleToken without the number. */
  private doubleToken(): boolean {
    const start = this.pos;
    if (this.at(start + 1) !== COLON) return false;
    let p = start + 2;
    let c = this.at(p);
    if (c === 0x4e && this.at(p + 1) === 0x41 && this.at(p + 2) === 0x4e && this.at(p + 3) === SEMI) {
      this.pos = p + 4;
      return true;
    }
    if (c === 0x49 && this.at(p + 1) === 0x4e && this.at(p + 2) === 0x46 && this.at(p + 3) === SEMI) {
      this.pos = p + 4;
      return true;
    }
    if (c === MINUS && this.at(p + 1) === 0x49 && this.at(p + 2) === 0x4e && this.at(p + 3) === 0x46 && this.at(p + 4) === SEMI) {
      this.pos = p + 5;
      return true;
    }
    if (c === PLUS || c === MINUS) c = this.at(++p);
    const intStart = p;
    while (c >= ZERO && c <= NINE) c = this.at(++p);
    const intDigits = p - intStart;
    let fracDigits = 0;
    if (c === DOT) {
      c = this.at(++p);
      const fracStart = p;
      while (c >= ZERO && c <= NINE) c = this.at(++p);
      fracDigits = p - fracStart;
    }
    if (intDigits === 0 && fracDigits === 0) return false;
    if (c === 0x65 || c === 0x45) {
      let q = p + 1;
      let e = this.at(q);
      if (e === PLUS || e === MINUS) e = this.at(++q);
      const expStart = q;
      while (e >= ZERO && e <= NINE) e = this.at(++q);
      if (q === expStart) return false;
      p = q;
      c = e;
    }
    if (c !== SEMI) return false;
    this.pos = p + 1;
    return true;
  }

  /** The max_depth check of process_nested_array_data / process_nested_object_data. */
  private enterNested(): boolean {
    if (this.maxDepth > 0 && this.depth >= this.maxDepth) return false;
    this.depth++;
    return true;
  }

  private push(elements: number, isObject: boolean): void {
    const f = this.sp++;
    growFrames(f + 1);
    remStack[f] = elements;
    objStack[f] = isObject ? 1 : 0;
    if (this.track) {
      this.keyMaps[f] = null;
      frameRec[f] = this.recTop;
      frameByte[f] = this.byteTop;
    }
  }

  /** parseArray: `"a:" uiv ":" "{"` */
  private array(): boolean {
    const start = this.pos;
    if (this.at(start + 1) !== COLON) return false;
    const d = this.at(start + 2);
    if (d < ZERO || d > NINE) return false;
    const elements = this.count(start + 2);
    const next = this.ivNext;
    if (this.at(next) !== COLON || this.at(next + 1) !== LBRACE) return false;
    const cur = next + 2;
    this.pos = cur;
    if (elements < 0 || elements >= HT_MAX_SIZE || elements > Math.floor((this.end - cur) / 2)) return false;
    if (elements === 0) {
      if (this.at(cur) !== RBRACE) return false;
      this.pos = cur + 1;
      return true;
    }
    if (!this.enterNested()) return false;
    this.push(elements, false);
    return true;
  }

  /**
   * The `":" uiv ":" '"' name '"'` that follows `O`, `C` and `E` at this.pos: sets nameStart/nameEnd
   * (nameEnd is the closing quote) and returns true, or false when malformed or the name is empty.
   */
  private quotedName(): boolean {
    const start = this.pos;
    if (this.at(start + 1) !== COLON) return false;
    const d = this.at(start + 2);
    if (d < ZERO || d > NINE) return false;
    const len = this.uiv(start + 2);
    const next = this.uivNext;
    if (this.at(next) !== COLON || this.at(next + 1) !== QUOTE) return false;
    const nameStart = next + 2;
    if (this.end - nameStart < len || len === 0) return false;
    if (this.at(nameStart + len) !== QUOTE) return false;
    this.nameStart = nameStart;
    this.nameEnd = nameStart + len;
    return true;
  }

  /** parseObject: `[OC] ":" uiv ":" ["]` */
  private object(at: number, custom: boolean): boolean {
    const buf = this.buf;
    const end = this.end;
    if (!this.quotedName()) return false;
    const nameStart = this.nameStart;
    const quote = this.nameEnd;
    if (this.at(quote + 1) !== COLON) return false;
    const first = buf[nameStart]!;
    if (first === 0 || first === BACKSLASH) return false;
    const kind = classNameKind(buf, nameStart, quote);
    if (kind === 2) return false;
    if (kind === 0 && !isValidClassName(buf, nameStart, quote)) return false;

    if (custom) {
      const datalen = this.count(quote + 2);
      const p = this.ivNext;
      if (end - p < 2 || buf[p] !== COLON || buf[p + 1] !== LBRACE) return false;
      const dataStart = p + 2;
      if (datalen < 0 || end - dataStart <= datalen) return false;
      if (buf[dataStart + datalen] !== RBRACE) return false;
      addWarning(this.warnings, W_SERIALIZABLE);
      if (this.track) posObj[at] = 1;
      this.pos = dataStart + datalen + 1;
      return true;
    }

    if (quote >= end - 2) return false;
    const elements = this.count(quote + 2);
    const p = this.ivNext;
    if (elements < 0 || elements > Math.floor((end - quote) / 2)) return false;
    if (this.at(p) !== COLON || this.at(p + 1) !== LBRACE) return false;
    this.pos = p + 2;
    if (this.track) posObj[at] = 1;
    if (elements >= HT_MAX_SIZE - 1) return false;
    if (!this.enterNested()) return false;
    this.push(elements, true);
    return true;
  }

  /** parseEnum: `"E:" uiv ":" ["]` */
  private enumToken(at: number): boolean {
    const buf = this.buf;
    if (!this.quotedName()) return false;
    const s = this.nameStart;
    const e = this.nameEnd;
    if (this.at(e + 1) !== SEMI) return false;
    let colon = s;
    while (colon < e && buf[colon] !== COLON) colon++;
    if (colon >= e) return false;
    if (!isValidClassName(buf, s, colon) || colon === s || colon + 1 === e) return false;
    addWarning(this.warnings, W_ENUM);
    this.pos = e + 2;
    if (this.track) posObj[at] = 1;
    return true;
  }

  /** parseBackRef: `"R:" uiv ";"` / `"r:" uiv ";"`. Only in tracking mode. */
  private backRef(at: number, isRef: boolean): boolean {
    if (!this.track) {
      this.needTrack = true;
      return false;
    }
    const start = this.pos;
    if (this.at(start + 1) !== COLON) return false;
    const d = this.at(start + 2);
    if (d < ZERO || d > NINE) return false;
    const uiv = this.uiv(start + 2);
    const next = this.uivNext;
    if (this.at(next) !== SEMI) return false;
    this.pos = next + 1;
    const id = uiv - 1;
    if (id < 0 || id >= this.slots) return false;
    const target = slotPos[id]!;
    if (target === at) return false; // back-reference to itself
    if (isRef) {
      posObj[at] = posObj[target]!;
      return true;
    } // both hold one reference to the same value
    if (posObj[target] !== 1) return false; // object back-reference to a non-object
    posObj[at] = 1;
    return true;
  }
}

function hexVal(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  return -1;
}

/** 19 significant digits at `s`: greater than ZEND_LONG_MAX (or than -ZEND_LONG_MIN when negative)? */
function exceedsLongMax(buf: Buffer, s: number, neg: boolean): boolean {
  for (let i = 0; i < 19; i++) {
    const limit = i === 18 && neg ? LONG_MAX_DIGITS[i]! + 1 : LONG_MAX_DIGITS[i]!;
    const c = buf[s + i]!;
    if (c !== limit) return c > limit;
  }
  return false;
}

/**
 * Top-level names of php / php_binary (SessionVars.set): duplicate, numeric, too long. Names are
 * compared as bytes (bytesToName is injective); a Set of latin1 strings takes over past a few names.
 */
class NameWarnings {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private set: Set<string> | null = null;
  constructor(
    private readonly buf: Buffer,
    private readonly warnings: string[],
  ) {}

  add(start: number, end: number): void {
    if (this.seen(start, end)) {
      addWarning(this.warnings, W_DUPLICATE);
      return;
    }
    stringKeyWarnings(this.buf, start, end, this.warnings);
  }

  /** Was this name seen before? Remembers it. */
  private seen(start: number, end: number): boolean {
    const buf = this.buf;
    if (this.set) {
      const name = buf.toString('latin1', start, end);
      if (this.set.has(name)) return true;
      this.set.add(name);
      return false;
    }
    const n = end - start;
    for (let k = 0; k < this.starts.length; k++) {
      const s = this.starts[k]!;
      if (this.ends[k]! - s !== n) continue;
      let i = 0;
      while (i < n && buf[s + i] === buf[start + i]) i++;
      if (i === n) return true;
    }
    this.starts.push(start);
    this.ends.push(end);
    if (this.starts.length > 16) {
      this.set = new Set();
      for (let k = 0; k < this.starts.length; k++) this.set.add(buf.toString('latin1', this.starts[k], this.ends[k]));
    }
    return false;
  }
}

/** decodePhp. Returns null when a back-reference needs tracking mode. */
function validatePhp(bytes: Buffer, maxDepth: number, track: boolean): Verdict | null {
  const warnings: string[] = [];
  const names = new NameWarnings(bytes, warnings);
  const u = new VarValidator(bytes, bytes.length, warnings, maxDepth, track);
  let decoded = 0;
  let p = 0;
  while (p < bytes.length) {
    const q = bytes.indexOf(PIPE, p);
    if (q < 0) return failed(decoded);
    u.pos = q + 1;
    if (!u.value(u.newPosition())) return u.needTrack ? null : failed(decoded);
    names.add(p, q);
    decoded++;
    p = u.pos;
  }
  return { ok: true, phpAccepts: true, decodedEntries: decoded, warnings };
}

/** decodePhpBinary. Returns null when a back-reference needs tracking mode. */
function validatePhpBinary(bytes: Buffer, maxDepth: number, track: boolean): Verdict | null {
  const warnings: string[] = [];
  const names = new NameWarnings(bytes, warnings);
  const u = new VarValidator(bytes, bytes.length, warnings, maxDepth, track);
  let decoded = 0;
  let p = 0;
  while (p < bytes.length) {
    const namelen = bytes[p]! & 0x7f;
    if (p + namelen >= bytes.length) return failed(decoded);
    u.pos = p + 1 + namelen;
    if (!u.value(u.newPosition())) return u.needTrack ? null : failed(decoded);
    names.add(p + 1, p + 1 + namelen);
    decoded++;
    p = u.pos;
  }
  return { ok: true, phpAccepts: true, decodedEntries: decoded, warnings };
}

/** decodePhpSerialize. Returns null when a back-reference needs tracking mode. */
function validatePhpSerialize(bytes: Buffer, maxDepth: number, track: boolean): Verdict | null {
  const warnings: string[] = [];
  const u = new VarValidator(bytes, bytes.length, warnings, maxDepth, track);
  const keyWarnings: string[] = [];
  u.rootKeyWarnings = keyWarnings;
  if (!u.value(u.newPosition())) return u.needTrack ? null : failed(0);
  if (u.pos < bytes.length) addWarning(warnings, W_TRAILING);
  // the root value's kind is its first byte: r:/R: can never be the root (no slot yet / itself)
  const root = bytes[0];
  if (root === 0x4e /* N */) return { ok: true, phpAccepts: true, decodedEntries: 0, warnings };
  if (root !== 0x61 /* a */) return failed(0, true); // PHP accepts a non-array, but it is no session
  for (const id of keyWarnings) addWarning(warnings, id);
  return { ok: true, phpAccepts: true, decodedEntries: 0, warnings };
}

// ---- igbinary (igbinary.ts) ------------------------------------------------------------------------------

const K_FAIL = 0,
  K_SCALAR = 1,
  K_ARRAY = 2,
  K_OBJECT = 3,
  K_OTHER = 4,
  K_REF = 5;

/** IgbinaryDecoder walked without values: only the sizes of its reference and string tables matter. */
class IgValidator {
  pos = 4;
  private sp = 0;
  private refs = 0;
  private strings = 0;
  /** result of the string readers: the string's offset and length */
  private sAt = 0;
  private sLen = 0;
  /** result of readLong: does the int need a bigint (|v| > 2^53 - 1)? */
  private longBig = false;
  readonly rootKeyWarnings: string[] = [];

  constructor(
    private readonly buf: Buffer,
    private readonly warnings: string[],
  ) {}

  /** decodeRoot after the header: the root value's kind, K_FAIL on failure. */
  run(): number {
    const kind = this.zval();
    if (kind === K_FAIL) return K_FAIL;
    while (this.sp > 0) {
      const f = this.sp - 1;
      const r = remStack[f]!;
      if (r === 0) {
        this.sp = f;
        continue;
      }
      remStack[f] = r - 1;
      if (!this.element(f)) return K_FAIL;
    }
    return kind;
  }

  private need(n: number): boolean {
    return this.buf.length - this.pos >= n;
  }

  /** readUint for widths 1, 2, 4 (callers check `need`). */
  private uint(width: number): number {
    const p = this.pos;
    this.pos += width;
    return width === 1 ? this.buf[p]! : width === 2 ? this.buf.readUInt16BE(p) : this.buf.readUInt32BE(p);
  }

  /** readUint(8) as a double: exact below 2^53, and at least 2^53 otherwise. */
  private uint64(): number {
    const p = this.pos;
    this.pos += 8;
    return this.buf.readUInt32BE(p) * 4294967296 + this.buf.readUInt32BE(p + 4);
  }

  /** readLong: sets longBig; warns when igbinary zeroes a too big 64-bit value. */
  private long(t: number): boolean {
    const width = t <= 0x07 ? 1 : t <= 0x09 ? 2 : t <= 0x0b ? 4 : 8;
    if (!this.need(width)) return false;
    if (width < 8) {
      this.pos += width;
      this.longBig = false;
      return true;
    }
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    if (hi >= 0x80000000 && (hi > 0x80000000 || lo !== 0 || t !== 0x21) /* long64n */) {
      addWarning(this.warnings, W_CLAMPED);
      this.longBig = false; // zeroed
    } else {
      this.longBig = hi * 4294967296 + lo > MAX_SAFE;
    }
    return true;
  }

  /** readCharArray: string8/16/32/64 and object8/16/32 names; adds to the string table. */
  private charArray(t: number): boolean {
    const width = t === 0x11 || t === 0x17 ? 1 : t === 0x12 || t === 0x18 ? 2 : t === 0x13 || t === 0x19 ? 4 : 8;
    if (!this.need(width)) return false;
    const n = width === 8 ? this.uint64() : this.uint(width);
    if (this.buf.length - this.pos < n) return false;
    const i = this.strings++;
    if (i >= strStart.length) {
      const a = new Float64Array(strStart.length * 2);
      a.set(strStart);
      strStart = a;
      const b = new Float64Array(strLen.length * 2);
      b.set(strLen);
      strLen = b;
    }
    strStart[i] = this.pos;
    strLen[i] = n;
    this.sAt = this.pos;
    this.sLen = n;
    this.pos += n;
    return true;
  }

  /** readStringId: string_id8/16/32 and object_id8/16/32. */
  private stringId(t: number): boolean {
    const width = t === 0x0e || t === 0x1a ? 1 : t === 0x0f || t === 0x1b ? 2 : t === 0x10 || t === 0x1c ? 4 : 0;
    if (width === 0 || !this.need(width)) return false;
    const i = this.uint(width);
    if (i >= this.strings) return false;
    this.sAt = strStart[i]!;
    this.sLen = strLen[i]!;
    return true;
  }

  /** parseElement: key, then value; a null key skips the element. */
  private element(f: number): boolean {
    if (!this.need(1)) return false;
    const kt = this.buf[this.pos++]!;
    const root = f === 0;
    if ((kt >= 0x06 && kt <= 0x0b) || kt === 0x20 || kt === 0x21) {
      if (!this.long(kt)) return false;
      if (root) {
        // array keys stay ints (a bigint beyond 2^53); property names become decimal strings, always numeric
        if (objStack[0] === 0 && this.longBig) addWarning(this.rootKeyWarnings, W_PRECISION);
        addWarning(this.rootKeyWarnings, W_NUMERIC);
      }
    } else if (kt >= 0x0e && kt <= 0x10) {
      if (!this.stringId(kt)) return false;
      if (root) stringKeyWarnings(this.buf, this.sAt, this.sAt + this.sLen, this.rootKeyWarnings);
    } else if ((kt >= 0x11 && kt <= 0x13) || kt === 0x26) {
      if (!this.charArray(kt)) return false;
      if (root) stringKeyWarnings(this.buf, this.sAt, this.sAt + this.sLen, this.rootKeyWarnings);
    } else if (kt === 0x0d) {
      // '' : neither numeric nor long
    } else if (kt === 0x00) {
      return true;
    } else {
      return false;
    }
    return this.zval() !== K_FAIL;
  }

  /** parseZval: the value's kind, K_FAIL on failure. */
  private zval(): number {
    if (!this.need(1)) return K_FAIL;
    const t = this.buf[this.pos++]!;
    switch (t) {
      case 0x25:
        return this.referenced();
      case 0x14:
      case 0x15:
      case 0x16:
        return this.array(t);
      case 0x17:
      case 0x18:
      case 0x19:
      case 0x1a:
      case 0x1b:
      case 0x1c:
        return this.object(t);
      case 0x01:
      case 0x02:
      case 0x03:
      case 0x22:
      case 0x23:
      case 0x24:
        return this.ref(t);
      default:
        return this.scalar(t);
    }
  }

  /**
   * The value after a `reference` type byte (0x25, any number of them; the first already read): K_REF,
   * or K_FAIL. A scalar becomes a back-reference target here; containers counted themselves.
   */
  private referenced(): number {
    let t = 0x25;
    while (t === 0x25) {
      if (!this.need(1)) return K_FAIL;
      t = this.buf[this.pos++]!;
    }
    this.pos--;
    const k = this.zval();
    if (k === K_FAIL) return K_FAIL;
    if (k === K_SCALAR) this.refs++;
    return K_REF;
  }

  /** A scalar of type byte `t` (already read): K_SCALAR, or K_FAIL when it is bad or `t` is no type. */
  private scalar(t: number): number {
    switch (t) {
      case 0x00:
      case 0x04:
      case 0x05:
      case 0x0d:
        return K_SCALAR;
      case 0x06:
      case 0x07:
      case 0x08:
      case 0x09:
      case 0x0a:
      case 0x0b:
      case 0x20:
      case 0x21:
        return this.long(t) ? K_SCALAR : K_FAIL;
      case 0x0c:
        if (!this.need(8)) return K_FAIL;
        this.pos += 8;
        return K_SCALAR;
      case 0x0e:
      case 0x0f:
      case 0x10:
        return this.stringId(t) ? K_SCALAR : K_FAIL;
      case 0x11:
      case 0x12:
      case 0x13:
      case 0x26:
        return this.charArray(t) ? K_SCALAR : K_FAIL;
      default:
        return K_FAIL;
    }
  }

  private push(n: number, isObject: boolean): void {
    const f = this.sp++;
    growFrames(f + 1);
    remStack[f] = n;
    objStack[f] = isObject ? 1 : 0;
  }

  /** readCount: width by type (array8/objectSer8 + 0, 1, 2). */
  private count(t: number, type8: number): number {
    const width = t === type8 ? 1 : t === type8 + 1 ? 2 : 4;
    if (!this.need(width)) return -1;
    return this.uint(width);
  }

  private array(t: number): number {
    const n = this.count(t, 0x14);
    if (n < 0) return K_FAIL;
    this.refs++;
    if (t === 0x14 && n === 0) return K_ARRAY;
    if (!this.need(n)) return K_FAIL;
    if (n > 0) this.push(n, false);
    return K_ARRAY;
  }

  private object(t: number): number {
    if (!(t <= 0x19 ? this.charArray(t) : this.stringId(t))) return K_FAIL;
    const kind = classNameKind(this.buf, this.sAt, this.sAt + this.sLen);
    if (kind === 2) return K_FAIL;
    const isStdClass = kind === 1;
    if (!this.need(1)) return K_FAIL;
    this.refs++;
    const inner = this.buf[this.pos++]!;
    switch (inner) {
      case 0x14:
      case 0x15:
      case 0x16: {
        const n = this.count(inner, 0x14);
        if (n < 0 || !this.need(n)) return K_FAIL;
        if (n > 0) this.push(n, true);
        return K_OBJECT;
      }
      case 0x1d:
      case 0x1e:
      case 0x1f: {
        if (isStdClass) return K_FAIL;
        const n = this.count(inner, 0x1d);
        if (n < 0 || !this.need(n)) return K_FAIL;
        this.pos += n;
        addWarning(this.warnings, W_SERIALIZABLE);
        return K_OTHER;
      }
      case 0x27: {
        if (isStdClass || !this.need(1)) return K_FAIL;
        const st = this.buf[this.pos++]!;
        const ok = st === 0x11 || st === 0x12 || st === 0x13 || st === 0x26 ? this.charArray(st) : this.stringId(st);
        if (!ok || this.sLen === 0) return K_FAIL;
        addWarning(this.warnings, W_ENUM);
        return K_OTHER;
      }
      default:
        return K_FAIL;
    }
  }

  /** parseRef: the entry must exist (a half-built entry is never visible, see igbinary.ts parseObject). */
  private ref(t: number): number {
    const width = t === 0x01 || t === 0x22 ? 1 : t === 0x02 || t === 0x23 ? 2 : 4;
    if (!this.need(width)) return K_FAIL;
    return this.uint(width) < this.refs ? K_REF : K_FAIL;
  }
}

/** decodeIgbinary. */
function validateIgbinary(bytes: Buffer): Verdict {
  if (bytes.length < 5 || !hasIgbinaryHeader(bytes)) return failed(0);
  const warnings: string[] = [];
  const g = new IgValidator(bytes, warnings);
  const kind = g.run();
  if (kind === K_FAIL) return failed(0);
  if (g.pos < bytes.length) addWarning(warnings, W_TRAILING);
  // the session must be an array, or an object with a property table (not a reference, C:, enum)
  if (kind !== K_ARRAY && kind !== K_OBJECT) return failed(0);
  for (const id of g.rootKeyWarnings) addWarning(warnings, id);
  return { ok: true, phpAccepts: true, decodedEntries: 0, warnings };
}

/**
 * The verdict decodeSession's internals reach for `handler` (with PHP's default
 * unserialize_max_depth), without decoding any value. Never throws for any input.
 */
export function validateSession(bytes: Buffer, handler: Handler, maxDepth: number = DEFAULT_MAX_DEPTH): Verdict {
  if (bytes.length === 0) return { ok: true, phpAccepts: true, decodedEntries: 0, warnings: [] };
  switch (handler) {
    case 'php':
      return validatePhp(bytes, maxDepth, false) ?? validatePhp(bytes, maxDepth, true)!;
    case 'php_binary':
      return validatePhpBinary(bytes, maxDepth, false) ?? validatePhpBinary(bytes, maxDepth, true)!;
    case 'php_serialize':
      return validatePhpSerialize(bytes, maxDepth, false) ?? validatePhpSerialize(bytes, maxDepth, true)!;
    case 'igbinary':
      return validateIgbinary(bytes);
    default:
      return failed(0);
  }
}
