/**
 * A byte-exact port of PHP 8.2's value unserializer (php-src ext/standard/var_unserializer.re,
 * `php_var_unserialize_internal`, `process_nested_array_data`, `process_nested_object_data`,
 * `object_custom`, `object_common`) for use by the session decoders in ext/session/session.c.
 *
 * Differences from PHP, all deliberate:
 * - no class registry: every class except stdClass (and a few internal classes that refuse
 *   unserialization) is treated as missing, i.e. as PHP's __PHP_Incomplete_Class, and `C:` payloads
 *   are kept instead of dropped;
 * - `E:` enum cases decode without the enum being loaded (PHP needs it; a warning says so);
 * - it is iterative (explicit stack), so deep nesting can never overflow the JS stack. PHP's own limit,
 *   `unserialize_max_depth` (default 4096, counted like PHP does), is enforced.
 *
 * Back-references: PHP numbers every value it unserializes except `R:` and array/property keys
 * (`var_push` at the top of php_var_unserialize_internal). The table is shared by all values decoded
 * with the same `php_unserialize_data_t`, which for the `php` and `php_binary` session handlers means
 * across all keys of the session. A slot is a position (container + index), exactly like PHP's slot is
 * a `zval *`.
 */
import { bytesToName, asciiLower } from './bytes.ts';
import { type PhpEntry, type PhpKey, type PhpObject, type PhpReferenceNode, type PhpValue, NULL_VALUE, intValue } from './model.ts';

/** PHP's default `unserialize_max_depth` (main/main.c / ext/standard/basic_functions.c). */
export const DEFAULT_MAX_DEPTH = 4096;
/** HT_MAX_SIZE for 64-bit builds (Zend/zend_types.h). */
const HT_MAX_SIZE = 0x40000000;
const LONG_MAX = 9223372036854775807n;
const U64 = 1n << 64n;

const CH = {
  quote: 0x22,
  colon: 0x3a,
  semi: 0x3b,
  lbrace: 0x7b,
  rbrace: 0x7d,
  plus: 0x2b,
  minus: 0x2d,
  dot: 0x2e,
  zero: 0x30,
  nine: 0x39,
  backslash: 0x5c,
  pipe: 0x7c,
} as const;

/**
 * Internal classes that exist in every PHP 8.2 build and are flagged ZEND_ACC_NOT_SERIALIZABLE:
 * unserializing them throws "Unserialization of 'X' is not allowed" (var_unserializer.re).
 * Lower-case names.
 */
export const NOT_SERIALIZABLE_CLASSES: ReadonlySet<string> = new Set([
  'closure',
  'generator',
  'fiber',
  'weakmap',
  'weakreference',
  'sensitiveparametervalue',
  'reflection',
  'reflectionclass',
  'reflectionobject',
  'reflectionmethod',
  'reflectionfunction',
  'reflectionproperty',
  'reflectionparameter',
  'reflectiontype',
  'reflectionnamedtype',
  'reflectionuniontype',
  'reflectionintersectiontype',
  'reflectionextension',
  'reflectionzendextension',
  'reflectionclassconstant',
  'reflectionenum',
  'reflectionenumunitcase',
  'reflectionenumbackedcase',
  'reflectionreference',
  'reflectionattribute',
  'reflectiongenerator',
  'reflectionfiber',
  'reflectionfunctionabstract',
]);

interface Frame {
  entries: PhpEntry[];
  remaining: number;
  isObject: boolean;
  /** key -> index in entries once the container is large (small ones are scanned). */
  seen: Map<PhpKey, number> | null;
}

export class UnserializeError {
  constructor(
    readonly message: string,
    readonly offset: number,
  ) {}
}

/** Sink for the stable warning ids the decoder reports. */
export type WarningSink = (id: string) => void;

/**
 * One `php_unserialize_data_t`: a cursor over a byte buffer plus the shared back-reference table.
 * Call {@link unserializeInto} once per value (`php_var_unserialize`).
 */
export class VarUnserializer {
  pos: number;
  /** The back-reference table (var_hash): slot i is slotHolders[i][slotIndexes[i]][1]. */
  private readonly slotHolders: PhpEntry[][] = [];
  private readonly slotIndexes: number[] = [];
  private depth = 0;
  private failure: UnserializeError | null = null;

  constructor(
    private readonly buf: Buffer,
    start: number,
    private readonly end: number,
    private readonly warn: WarningSink,
    private readonly maxDepth: number = DEFAULT_MAX_DEPTH,
  ) {
    this.pos = start;
  }

  get error(): UnserializeError | null {
    return this.failure;
  }

  /** Byte at i, or 0 past the end (PHP's buffers are NUL-terminated and re2c reads the NUL). */
  private at(i: number): number {
    return i < this.end ? this.buf[i]! : 0;
  }

  private fail(message: string, offset = this.pos): false {
    if (!this.failure) this.failure = new UnserializeError(message, offset);
    return false;
  }

  /**
   * Unserialize one value into `holder[index][1]` (php_var_unserialize). Returns false on failure;
   * {@link error} then says why. On success {@link pos} is just past the value.
   */
  unserializeInto(holder: PhpEntry[], index: number): boolean {
    const stack: Frame[] = [];
    if (!this.parseOne(holder, index, stack)) return false;
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!;
      if (f.remaining > 0) {
        f.remaining--;
        const keyStart = this.pos;
        const key = this.parseKey();
        if (key === null) return this.fail('invalid array key', keyStart);
        let k: PhpKey;
        if (f.isObject) {
          // process_nested_object_data: int keys become strings ("object properties should include no
          // integers").
          k = typeof key === 'string' ? key : String(key);
        } else if (typeof key === 'string') {
          // process_nested_array_data: ZEND_HANDLE_NUMERIC turns canonical decimal strings into ints.
          const n = handleNumericKey(key);
          k = n === null ? key : n;
        } else {
          k = key;
        }
        const idx = findOrAddEntry(f, k);
        f.entries[idx]![1] = NULL_VALUE; // a repeated key: the old value is released, the bucket stays
        if (!this.parseOne(f.entries, idx, stack)) return false;
      } else {
        this.depth--;
        // finish_nested_data
        if (this.pos >= this.end || this.buf[this.pos] !== CH.rbrace) {
          return this.fail('missing "}" at end of array or object');
        }
        this.pos++;
        stack.pop();
      }
    }
    return true;
  }

  /**
   * Array/property keys are unserialized with var_hash = NULL: only i:, s: and S: give a usable key
   * (everything else either returns 0 immediately or yields a non-int, non-string key, which fails).
   */
  private parseKey(): string | number | bigint | null {
    const c = this.at(this.pos);
    if (c === 0x69 /* i */) return this.parseIntToken();
    if (c === 0x73 /* s */ || c === 0x53 /* S */) {
      const bytes = this.parseStringToken(c === 0x53);
      return bytes === null ? null : bytesToName(bytes);
    }
    return null;
  }

  /** "i:" iv ";" -> the clamped int, or null. Cursor moves past the token on success. */
  private parseIntToken(): number | bigint | null {
    const start = this.pos;
    let p = start + 2;
    if (this.at(start + 1) !== CH.colon) return null;
    const numStart = p;
    if (this.at(p) === CH.plus || this.at(p) === CH.minus) p++;
    const digitsStart = p;
    while (isDigit(this.at(p))) p++;
    if (p === digitsStart || this.at(p) !== CH.semi) return null;
    const v = this.parseIv(numStart).value;
    this.pos = p + 1;
    return v;
  }

  /**
   * parse_iv2: optional sign, skips leading zeros, reads digits; clamps to ZEND_LONG_MAX/MIN with the
   * warning "Numerical result out of range" when the number has more than 19 significant digits or
   * does not fit. Returns the value (a number when it is a safe integer, else a bigint) and the position
   * after the digits.
   */
  private parseIv(p: number): { value: number | bigint; next: number } {
    let neg = false;
    if (this.at(p) === CH.minus) {
      neg = true;
      p++;
    } else if (this.at(p) === CH.plus) {
      p++;
    }
    while (this.at(p) === CH.zero) p++;
    const start = p;
    let v = 0;
    while (isDigit(this.at(p))) {
      v = v * 10 + (this.buf[p]! - CH.zero);
      p++;
    }
    const len = p - start;
    if (len <= 15) return { value: neg ? (v === 0 ? 0 : -v) : v, next: p };
    if (len > 19) {
      this.warn('int-out-of-range-clamped');
      return { value: neg ? -LONG_MAX - 1n : LONG_MAX, next: p };
    }
    const digits = BigInt(this.buf.toString('latin1', start, p));
    if (digits > LONG_MAX + (neg ? 1n : 0n)) {
      this.warn('int-out-of-range-clamped');
      return { value: neg ? -LONG_MAX - 1n : LONG_MAX, next: p };
    }
    return { value: intValue(neg ? -digits : digits), next: p };
  }

  /**
   * parse_uiv: digits as size_t, wrapping modulo 2^64 like the C code. Exact up to 2^53; a larger
   * (wrapped) value is returned as Infinity, which no length or slot id can match. `p` must point at a
   * digit.
   */
  private parseUiv(p: number): { value: number; next: number } {
    const start = p;
    let v = 0;
    while (isDigit(this.at(p))) {
      v = v * 10 + (this.buf[p]! - CH.zero);
      p++;
    }
    if (p - start <= 15) return { value: v, next: p };
    let big = 0n;
    for (let i = start; i < p; i++) big = (big * 10n + BigInt(this.buf[i]! - CH.zero)) % U64;
    return { value: big <= 9007199254740991n ? Number(big) : Infinity, next: p };
  }

  /**
   * `"s:" uiv ":" ["]` / `"S:" uiv ":" ["]` -> the string bytes, or null (cursor unchanged on failure).
   */
  private parseStringToken(escaped: boolean): Buffer | null {
    const start = this.pos;
    if (this.at(start + 1) !== CH.colon || !isDigit(this.at(start + 2))) return null;
    const { value: len, next } = this.parseUiv(start + 2);
    if (this.at(next) !== CH.colon || this.at(next + 1) !== CH.quote) return null;
    let cur = next + 2;
    const maxlen = this.end - cur;
    if (maxlen < len) return null;
    const n = len;
    let bytes: Buffer;
    if (!escaped) {
      bytes = this.buf.subarray(cur, cur + n);
      cur += n;
    } else {
      // unserialize_str: "\xx" is one byte given as two hex digits
      const out = Buffer.allocUnsafe(n);
      const limit = cur + maxlen;
      for (let i = 0; i < n; i++) {
        if (cur >= limit) return null;
        const b = this.buf[cur]!;
        if (b !== CH.backslash) {
          out[i] = b;
        } else {
          let ch = 0;
          for (let j = 0; j < 2; j++) {
            cur++;
            const h = hexVal(this.at(cur));
            if (h < 0) return null;
            ch = (ch << 4) + h;
          }
          out[i] = ch;
        }
        cur++;
      }
      bytes = out;
    }
    if (this.at(cur) !== CH.quote || this.at(cur + 1) !== CH.semi) return null;
    this.pos = cur + 2;
    return bytes;
  }

  /** php_var_unserialize_internal for one value; containers push a frame instead of recursing. */
  private parseOne(holder: PhpEntry[], index: number, stack: Frame[]): boolean {
    const start = this.pos;
    if (start >= this.end) return this.fail('unexpected end of data');
    const c = this.buf[start]!;
    if (c !== 0x52 /* R */) {
      this.slotHolders.push(holder);
      this.slotIndexes.push(index);
    }
    switch (c) {
      case 0x61:
        return this.parseArray(holder, index, stack);
      case 0x4f:
      case 0x43:
        return this.parseObject(holder, index, stack, c === 0x43);
      case 0x45:
        return this.parseEnum(holder, index);
      case 0x72:
      case 0x52:
        return this.parseBackRef(holder, index, c === 0x52);
      case CH.rbrace:
        return this.fail('unexpected "}" (fewer elements than declared)');
    }
    const value = this.parseScalar(c, start);
    if (value === undefined) return this.fail('unknown value type');
    if (value === null) return false;
    holder[index]![1] = value;
    return true;
  }

  /**
   * A scalar starting with type byte `c` at `start` (`N;`, `b:`, `i:`, `d:`, `s:`, `S:`): the value,
   * null after a failure (recorded by fail, with the type's message), or undefined when `c` starts no
   * scalar.
   */
  private parseScalar(c: number, start: number): PhpValue | null | undefined {
    switch (c) {
      case 0x4e: // N;
        if (this.at(start + 1) !== CH.semi) return this.failed('invalid null');
        this.pos = start + 2;
        return NULL_VALUE;
      case 0x62: {
        // b:0; b:1;
        const v = this.at(start + 2);
        if (this.at(start + 1) !== CH.colon || (v !== 0x30 && v !== 0x31) || this.at(start + 3) !== CH.semi) {
          return this.failed('invalid bool');
        }
        this.pos = start + 4;
        return { type: 'bool', value: v === 0x31 };
      }
      case 0x69: {
        // i: iv ;
        const v = this.parseIntToken();
        return v === null ? this.failed('invalid int') : { type: 'int', value: v };
      }
      case 0x64: {
        // d:
        const v = this.parseDoubleToken();
        return v === null ? this.failed('invalid float') : { type: 'float', value: v };
      }
      case 0x73:
      case 0x53: {
        // s: S:
        const bytes = this.parseStringToken(c === 0x53);
        return bytes === null ? this.failed('invalid string (length or quotes do not match)') : { type: 'string', bytes };
      }
      default:
        return undefined;
    }
  }

  /** fail() for a helper that returns a value: records the failure, returns null. */
  private failed(message: string): null {
    this.fail(message);
    return null;
  }

  /**
   * `"d:" ("NAN" | "-"? "INF") ";"` or `"d:" (iv | nv | nvexp) ";"` with
   * nv = [+-]? ([0-9]* "." [0-9]+ | [0-9]+ "." [0-9]*), nvexp = (iv | nv) [eE] iv.
   */
  private parseDoubleToken(): number | null {
    const start = this.pos;
    if (this.at(start + 1) !== CH.colon) return null;
    let p = start + 2;
    const word = this.buf.toString('latin1', p, Math.min(this.end, p + 5));
    if (word.startsWith('NAN;')) {
      this.pos = p + 4;
      return NaN;
    }
    if (word.startsWith('INF;')) {
      this.pos = p + 4;
      return Infinity;
    }
    if (word.startsWith('-INF;')) {
      this.pos = p + 5;
      return -Infinity;
    }
    const numStart = p;
    if (this.at(p) === CH.plus || this.at(p) === CH.minus) p++;
    const intStart = p;
    while (isDigit(this.at(p))) p++;
    const intDigits = p - intStart;
    let fracDigits = 0;
    if (this.at(p) === CH.dot) {
      p++;
      const fracStart = p;
      while (isDigit(this.at(p))) p++;
      fracDigits = p - fracStart;
    }
    if (intDigits === 0 && fracDigits === 0) return null;
    const e = this.at(p);
    if (e === 0x65 || e === 0x45) {
      let q = p + 1;
      if (this.at(q) === CH.plus || this.at(q) === CH.minus) q++;
      const expStart = q;
      while (isDigit(this.at(q))) q++;
      if (q === expStart) return null;
      p = q;
    }
    if (this.at(p) !== CH.semi) return null;
    this.pos = p + 1;
    // zend_strtod and JS Number() both round correctly, and accept the same decimal forms.
    return Number(this.buf.toString('latin1', numStart, p));
  }

  /** `"a:" uiv ":" "{"` */
  private parseArray(holder: PhpEntry[], index: number, stack: Frame[]): boolean {
    const start = this.pos;
    if (this.at(start + 1) !== CH.colon || !isDigit(this.at(start + 2))) return this.fail('invalid array header');
    const { value: iv, next } = this.parseIv(start + 2); // "use iv() not uiv() in order to check data range"
    const elements = asCount(iv);
    if (this.at(next) !== CH.colon || this.at(next + 1) !== CH.lbrace) return this.fail('invalid array header');
    const cur = next + 2;
    this.pos = cur;
    if (elements < 0 || elements >= HT_MAX_SIZE || isFakeElemCount(elements, this.end - cur)) {
      return this.fail('array element count exceeds the data', start);
    }
    const entries: PhpEntry[] = [];
    holder[index]![1] = { type: 'array', entries };
    if (elements === 0) {
      if (this.at(cur) !== CH.rbrace) return this.fail('missing "}" at end of array');
      this.pos = cur + 1;
      return true;
    }
    if (!this.enterNested()) return false;
    stack.push({ entries, remaining: elements, isObject: false, seen: null });
    return true;
  }

  /** The max_depth check at the top of process_nested_array_data / process_nested_object_data. */
  private enterNested(): boolean {
    if (this.maxDepth > 0 && this.depth >= this.maxDepth) {
      return this.fail(`nesting deeper than ${this.maxDepth} levels (unserialize_max_depth)`);
    }
    this.depth++;
    return true;
  }

  /** `object ":" uiv ":" ["]` with object = [OC]. */
  private parseObject(holder: PhpEntry[], index: number, stack: Frame[], custom: boolean): boolean {
    const start = this.pos;
    if (this.at(start + 1) !== CH.colon || !isDigit(this.at(start + 2))) return this.fail('invalid object header');
    const { value: len, next } = this.parseUiv(start + 2);
    if (this.at(next) !== CH.colon || this.at(next + 1) !== CH.quote) return this.fail('invalid object header');
    const nameStart = next + 2;
    const maxlen = this.end - nameStart;
    if (maxlen < len || len === 0) return this.fail('invalid class name length', start);
    const quote = nameStart + len;
    if (this.at(quote) !== CH.quote || this.at(quote + 1) !== CH.colon) return this.fail('invalid class name', quote);
    const first = this.buf[nameStart]!;
    if (first === 0 || first === CH.backslash) return this.fail('invalid class name', nameStart);
    let className = bytesToName(this.buf, nameStart, quote);
    const lower = asciiLower(className);
    if (lower === 'stdclass') {
      className = 'stdClass';
    } else if (NOT_SERIALIZABLE_CLASSES.has(lower)) {
      return this.fail('class that does not allow unserialization', nameStart);
    } else if (!isValidClassName(this.buf, nameStart, quote)) {
      // unknown class: zend_is_valid_class_name() decides before it becomes __PHP_Incomplete_Class
      return this.fail('invalid class name', nameStart);
    }
    this.pos = quote;

    if (custom) {
      // object_custom
      const { value: iv, next: p } = this.parseIv(quote + 2);
      const datalen = asCount(iv);
      if (this.end - p < 2 || this.buf[p] !== CH.colon) return this.fail('invalid Serializable header', p);
      if (this.buf[p + 1] !== CH.lbrace) return this.fail('invalid Serializable header', p + 1);
      const dataStart = p + 2;
      if (datalen < 0 || this.end - dataStart <= datalen) {
        return this.fail('Serializable payload length exceeds the data', dataStart);
      }
      const n = datalen;
      if (this.buf[dataStart + n] !== CH.rbrace) return this.fail('Serializable payload not closed by "}"', dataStart + n);
      // No class loaded: PHP warns "Class X has no unserializer" and drops the payload; we keep it.
      this.warn('serializable-object');
      holder[index]![1] = { type: 'serializable', className, payload: this.buf.subarray(dataStart, dataStart + n) };
      this.pos = dataStart + n + 1;
      return true;
    }

    if (quote >= this.end - 2) return this.fail('truncated object header', quote);
    const { value: iv, next: p } = this.parseIv(quote + 2);
    const elements = asCount(iv);
    if (elements < 0 || isFakeElemCount(elements, this.end - quote)) {
      return this.fail('object property count exceeds the data', start);
    }
    if (this.at(p) !== CH.colon) return this.fail('invalid object header', p);
    if (this.at(p + 1) !== CH.lbrace) return this.fail('invalid object header', p + 1);
    this.pos = p + 2;
    const obj: PhpObject = { type: 'object', className, props: [] };
    holder[index]![1] = obj;
    if (elements >= HT_MAX_SIZE - 1) return this.fail('object property count too large', start);
    // object_common -> process_nested_object_data runs (and counts depth) even for 0 properties
    if (!this.enterNested()) return false;
    stack.push({ entries: obj.props, remaining: elements, isObject: true, seen: null });
    return true;
  }

  /** `"E:" uiv ":" ["]` */
  private parseEnum(holder: PhpEntry[], index: number): boolean {
    const start = this.pos;
    if (this.at(start + 1) !== CH.colon || !isDigit(this.at(start + 2))) return this.fail('invalid enum');
    const { value: len, next } = this.parseUiv(start + 2);
    if (this.at(next) !== CH.colon || this.at(next + 1) !== CH.quote) return this.fail('invalid enum');
    const s = next + 2;
    if (this.end - s < len || len === 0) return this.fail('invalid enum length', start);
    const e = s + len;
    if (this.at(e) !== CH.quote || this.at(e + 1) !== CH.semi) return this.fail('invalid enum', e);
    const colon = this.buf.indexOf(CH.colon, s);
    if (colon < 0 || colon >= e) return this.fail('invalid enum name (missing colon)', s);
    if (!isValidClassName(this.buf, s, colon) || colon === s || colon + 1 === e) {
      return this.fail('invalid enum name', s);
    }
    // PHP looks the enum up (zend_lookup_class) and fails when it is not loaded.
    this.warn('enum-requires-class');
    this.pos = e + 2;
    holder[index]![1] = {
      type: 'enum',
      className: bytesToName(this.buf, s, colon),
      caseName: bytesToName(this.buf, colon + 1, e),
    };
    return true;
  }

  /** `"R:" uiv ";"` (PHP reference) and `"r:" uiv ";"` (same object). */
  private parseBackRef(holder: PhpEntry[], index: number, isRef: boolean): boolean {
    const start = this.pos;
    if (this.at(start + 1) !== CH.colon || !isDigit(this.at(start + 2))) return this.fail('invalid back-reference');
    const { value: uiv, next } = this.parseUiv(start + 2);
    if (this.at(next) !== CH.semi) return this.fail('invalid back-reference');
    this.pos = next + 1;
    // id = parse_uiv() - 1 as zend_long; var_access() rejects negative and unused ids
    const id = uiv - 1;
    if (id < 0 || id >= this.slotHolders.length) return this.fail('back-reference to an unknown slot', start);
    const targetEntry = this.slotHolders[id]![this.slotIndexes[id]!]!;
    if (targetEntry === holder[index]) return this.fail('back-reference to itself', start);
    const current = targetEntry[1];
    if (isRef) {
      let node: PhpReferenceNode;
      if (current.type === 'reference') {
        node = current;
      } else {
        node = { type: 'reference', target: { value: current } };
        targetEntry[1] = node; // ZVAL_NEW_REF(rval_ref, rval_ref)
      }
      holder[index]![1] = node;
      return true;
    }
    const deref = current.type === 'reference' ? current.target.value : current;
    if (deref.type !== 'object' && deref.type !== 'serializable' && deref.type !== 'enum') {
      return this.fail('object back-reference to a non-object', start);
    }
    holder[index]![1] = deref;
    return true;
  }
}

function isDigit(b: number): boolean {
  return b >= CH.zero && b <= CH.nine;
}

function hexVal(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  return -1;
}

/** IS_FAKE_ELEM_COUNT: "each element is encoded using at least 2 characters". */
function isFakeElemCount(elements: number, serializedLen: number): boolean {
  return elements > Math.floor(serializedLen / 2);
}

/** A count or length from parse_iv2: bigints are beyond anything a buffer can hold. */
function asCount(v: number | bigint): number {
  return typeof v === 'bigint' ? (v < 0n ? -1 : Infinity) : v;
}

/** Small containers are scanned; from this size on a Map finds repeated keys. */
const MAP_THRESHOLD = 8;

/**
 * The index of key `k` in the frame's container, adding `[k, null]` when it is new (zend_hash_lookup:
 * a repeated key reuses its bucket, in its first position).
 */
export function findOrAddEntry(f: { entries: PhpEntry[]; seen: Map<PhpKey, number> | null }, k: PhpKey): number {
  const list = f.entries;
  if (f.seen) {
    const i = f.seen.get(k);
    if (i !== undefined) return i;
    f.seen.set(k, list.length);
  } else {
    for (let i = 0; i < list.length; i++) if (list[i]![0] === k) return i;
    if (list.length + 1 >= MAP_THRESHOLD) {
      f.seen = new Map();
      for (let i = 0; i < list.length; i++) f.seen.set(list[i]![0], i);
      f.seen.set(k, list.length);
    }
  }
  list.push([k, NULL_VALUE]);
  return list.length - 1;
}

/** zend_is_valid_class_name (Zend/zend_compile.c): bytes in [A-Za-z0-9_\\\x80-\xff]. */
export function isValidClassName(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x5c || c >= 0x80;
    if (!ok) return false;
  }
  return true;
}

/**
 * ZEND_HANDLE_NUMERIC_STR (Zend/zend_hash.h, _zend_handle_numeric_str_ex): a string array key that is a
 * canonical decimal int ("0", "-5", no leading zeros, not "-0", within zend_long) is stored as int.
 */
export function handleNumericKey(key: string): number | bigint | null {
  const n = key.length;
  if (n === 0 || n > 20) return null;
  let i = 0;
  if (key.charCodeAt(0) === CH.minus) {
    i = 1;
    if (n === 1) return null;
  }
  const first = key.charCodeAt(i);
  if (first < CH.zero || first > CH.nine) return null;
  if (first === CH.zero && n > 1) return null; // leading zero, or "-0"
  for (let j = i + 1; j < n; j++) {
    const c = key.charCodeAt(j);
    if (c < CH.zero || c > CH.nine) return null;
  }
  if (n - i <= 15) return Number(key);
  const v = BigInt(key);
  if (v > LONG_MAX || v < -LONG_MAX - 1n) return null;
  return intValue(v);
}
