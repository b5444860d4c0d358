/**
 * Decoder for igbinary payloads (igbinary 3.x, format versions 1 and 2), following igbinary's
 * src/php7/igbinary.c: `igbinary_unserialize_header`, `igbinary_unserialize_zval`,
 * `igbinary_unserialize_array`, `igbinary_unserialize_object`, `igbinary_unserialize_object_properties`,
 * `igbinary_unserialize_ref`, and the session decoder `PS_SERIALIZER_DECODE_FUNC(igbinary)`.
 *
 * Format: a 4-byte big-endian version (0x00000001 or 0x00000002) and one value. Each value starts with a
 * type byte; lengths and ints are big-endian. Strings that appear again are written as string ids
 * (index into the table of strings read so far); arrays, objects and referenced scalars are numbered in
 * a separate table that `ref*`/`objref*` types point into.
 *
 * Like the `php` decoder it is iterative (no JS recursion) and needs no class registry: classes are
 * treated as missing (PHP's __PHP_Incomplete_Class), except stdClass.
 */
import { bytesToName, asciiLower } from './bytes.ts';
import {
  type PhpArray,
  type PhpEntry,
  type PhpKey,
  type PhpObject,
  type PhpReferenceNode,
  type PhpValue,
  NULL_VALUE,
  intValue,
} from './model.ts';
import { NOT_SERIALIZABLE_CLASSES, UnserializeError, type WarningSink, findOrAddEntry } from './unserialize.ts';

const T = {
  null: 0x00,
  ref8: 0x01,
  ref16: 0x02,
  ref32: 0x03,
  false: 0x04,
  true: 0x05,
  long8p: 0x06,
  long8n: 0x07,
  long16p: 0x08,
  long16n: 0x09,
  long32p: 0x0a,
  long32n: 0x0b,
  double: 0x0c,
  stringEmpty: 0x0d,
  stringId8: 0x0e,
  stringId16: 0x0f,
  stringId32: 0x10,
  string8: 0x11,
  string16: 0x12,
  string32: 0x13,
  array8: 0x14,
  array16: 0x15,
  array32: 0x16,
  object8: 0x17,
  object16: 0x18,
  object32: 0x19,
  objectId8: 0x1a,
  objectId16: 0x1b,
  objectId32: 0x1c,
  objectSer8: 0x1d,
  objectSer16: 0x1e,
  objectSer32: 0x1f,
  long64p: 0x20,
  long64n: 0x21,
  objref8: 0x22,
  objref16: 0x23,
  objref32: 0x24,
  ref: 0x25,
  string64: 0x26,
  enumCase: 0x27,
} as const;

const TWO63 = 1n << 63n;

/** Entries of igbinary's reference table (struct igbinary_value_ref). */
type RefEntry =
  | { kind: 'object'; node: PhpValue }
  | { kind: 'array'; node: PhpArray }
  | { kind: 'empty' }
  | { kind: 'ref'; node: PhpReferenceNode }
  | { kind: 'pending' };

interface Frame {
  entries: PhpEntry[];
  remaining: number;
  isObject: boolean;
  seen: Map<PhpKey, number> | null;
}

/** True for the 4-byte igbinary header 00 00 00 01 / 00 00 00 02. */
export function hasIgbinaryHeader(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 0 && (bytes[3] === 1 || bytes[3] === 2);
}

export class IgbinaryDecoder {
  pos = 0;
  private readonly strings: Buffer[] = [];
  private readonly refs: RefEntry[] = [];
  /** Values replaced by a repeated array key: igbinary keeps one reference to them forever. */
  private readonly leaked: PhpValue[] = [];
  private failure: UnserializeError | null = null;

  constructor(
    private readonly buf: Buffer,
    private readonly warn: WarningSink,
  ) {}

  get error(): UnserializeError | null {
    return this.failure;
  }

  private fail(message: string, offset = this.pos): false {
    if (!this.failure) this.failure = new UnserializeError(message, offset);
    return false;
  }

  private need(n: number): boolean {
    return this.buf.length - this.pos >= n;
  }

  /** Header plus the root value. Returns the root value, or null on failure. */
  decodeRoot(): PhpValue | null {
    if (this.buf.length < 5) {
      this.fail('igbinary payload shorter than 5 bytes', 0);
      return null;
    }
    if (!hasIgbinaryHeader(this.buf)) {
      this.fail('unsupported igbinary version header', 0);
      return null;
    }
    this.pos = 4;
    const holder: PhpEntry[] = [[0, NULL_VALUE]];
    const stack: Frame[] = [];
    if (!this.parseZval(holder, 0, false, stack)) return null;
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!;
      if (f.remaining === 0) {
        stack.pop();
        continue;
      }
      f.remaining--;
      if (!this.parseElement(f, stack)) return null;
    }
    const root = holder[0]![1];
    if (this.leaked.length > 0) this.countLeakedHolders(root);
    return root;
  }

  /**
   * References held by leaked values keep one more holder each (see `leaked`). Containers reachable
   * from the decoded value are skipped: their slots are counted there already.
   */
  private countLeakedHolders(root: PhpValue): void {
    const visited = new Set<PhpEntry[]>();
    const containerOf = (v: PhpValue): PhpEntry[] | null => {
      const inner = v.type === 'reference' ? v.target.value : v;
      return inner.type === 'array' ? inner.entries : inner.type === 'object' ? inner.props : null;
    };
    const live: PhpEntry[][] = [];
    const first = containerOf(root);
    if (first) {
      visited.add(first);
      live.push(first);
    }
    while (live.length > 0) {
      for (const [, v] of live.pop()!) {
        const c = containerOf(v);
        if (c && !visited.has(c)) {
          visited.add(c);
          live.push(c);
        }
      }
    }
    const todo: PhpValue[] = [...this.leaked];
    while (todo.length > 0) {
      const v = todo.pop()!;
      if (v.type === 'reference') v.target.extraHolders = (v.target.extraHolders ?? 0) + 1;
      const c = containerOf(v);
      if (c && !visited.has(c)) {
        visited.add(c);
        for (const [, x] of c) todo.push(x);
      }
    }
  }

  private readUint(width: 1 | 2 | 4 | 8): bigint | number {
    const p = this.pos;
    this.pos += width;
    switch (width) {
      case 1:
        return this.buf[p]!;
      case 2:
        return this.buf.readUInt16BE(p);
      case 4:
        return this.buf.readUInt32BE(p);
      case 8:
        return this.buf.readBigUInt64BE(p);
    }
  }

  /** igbinary_unserialize_long for every long type. */
  private readLong(t: number): bigint | null {
    const width =
      t === T.long8p || t === T.long8n ? 1 : t === T.long16p || t === T.long16n ? 2 : t === T.long32p || t === T.long32n ? 4 : 8;
    if (!this.need(width)) {
      this.fail('truncated int');
      return null;
    }
    let v = BigInt(this.readUint(width));
    const negative = t === T.long8n || t === T.long16n || t === T.long32n || t === T.long64n;
    if (width === 8 && v >= TWO63 && (v > TWO63 || !negative)) {
      this.warn('int-out-of-range-clamped'); // "igbinary_unserialize_long: too big 64bit long." -> 0
      v = 0n;
    }
    return negative ? -v : v;
  }

  /** igbinary_unserialize_chararray: string8/16/32/64 (and object8/16/32 class names). */
  private readCharArray(t: number): Buffer | null {
    const width =
      t === T.string8 || t === T.object8 ? 1 : t === T.string16 || t === T.object16 ? 2 : t === T.string32 || t === T.object32 ? 4 : 8;
    if (!this.need(width)) {
      this.fail('truncated string length');
      return null;
    }
    const len = BigInt(this.readUint(width));
    if (BigInt(this.buf.length - this.pos) < len) {
      this.fail('string length exceeds the data');
      return null;
    }
    const n = Number(len);
    const s = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.strings.push(s);
    return s;
  }

  /** igbinary_unserialize_string: string_id8/16/32 (and object_id8/16/32). */
  private readStringId(t: number): Buffer | null {
    const width =
      t === T.stringId8 || t === T.objectId8
        ? 1
        : t === T.stringId16 || t === T.objectId16
          ? 2
          : t === T.stringId32 || t === T.objectId32
            ? 4
            : 0;
    if (width === 0) {
      this.fail('unknown string type');
      return null;
    }
    if (!this.need(width)) {
      this.fail('truncated string id');
      return null;
    }
    const i = Number(this.readUint(width));
    const s = this.strings[i];
    if (s === undefined) {
      this.fail('string id out of range');
      return null;
    }
    return s;
  }

  /** One array element or object property (the loop bodies of _array / _object_properties). */
  private parseElement(f: Frame, stack: Frame[]): boolean {
    if (!this.need(1)) return this.fail('unexpected end of data');
    const kt = this.buf[this.pos++]!;
    let key: string | bigint;
    switch (kt) {
      case T.long8p:
      case T.long16p:
      case T.long8n:
      case T.long16n:
      case T.long32p:
      case T.long32n:
      case T.long64p:
      case T.long64n: {
        const v = this.readLong(kt);
        if (v === null) return false;
        key = v;
        break;
      }
      case T.stringId8:
      case T.stringId16:
      case T.stringId32: {
        const s = this.readStringId(kt);
        if (s === null) return false;
        key = bytesToName(s);
        break;
      }
      case T.string8:
      case T.string16:
      case T.string32:
      case T.string64: {
        const s = this.readCharArray(kt);
        if (s === null) return false;
        key = bytesToName(s);
        break;
      }
      case T.stringEmpty:
        key = '';
        break;
      case T.null:
        return true; // "Skip unserializing this element, serialized with no value."
      default:
        return this.fail('unknown key type', this.pos - 1);
    }
    // Object property names are strings (zend_long_to_str); array keys are added as they are, WITHOUT
    // numeric-string normalisation (igbinary_zend_hash_add_or_find / _index_add_or_find).
    const k = typeof key === 'string' ? key : f.isObject ? key.toString() : intValue(key);
    const before = f.entries.length;
    const idx = findOrAddEntry(f, k);
    if (idx < before && !f.isObject && !this.nextIsRef()) {
      // igbinary_zend_hash_add_or_find + igsd_addref_and_defer_dtor add a reference to the old value and
      // defer releasing it; the slot's own reference is only released when the new value is a ref*/objref*
      // (igbinary_unserialize_ref calls zval_ptr_dtor(z) first); every other type overwrites the slot, so
      // the old value keeps one reference forever. Object properties (igsd_defer_dtor) do not leak.
      const old = f.entries[idx]![1];
      if (old.type === 'reference' || old.type === 'array' || old.type === 'object' || old.type === 'serializable') {
        this.leaked.push(old);
      }
    }
    return this.parseZval(f.entries, idx, false, stack);
  }

  /** Is the next value (after any 0x25 prefixes) a ref* / objref* back-reference? */
  private nextIsRef(): boolean {
    let p = this.pos;
    while (p < this.buf.length && this.buf[p] === T.ref) p++;
    const t = this.buf[p];
    return t !== undefined && ((t >= T.ref8 && t <= T.ref32) || (t >= T.objref8 && t <= T.objref32));
  }

  /** igbinary_unserialize_zval into holder[index][1]; containers push a frame. */
  private parseZval(holder: PhpEntry[], index: number, wantRef: boolean, stack: Frame[]): boolean {
    if (!this.need(1)) return this.fail('unexpected end of data');
    const start = this.pos;
    const t = this.buf[this.pos++]!;
    switch (t) {
      case T.ref:
        return this.parseRefPrefix(holder, index, stack);
      case T.array8:
      case T.array16:
      case T.array32:
        return this.parseArray(t, holder, index, wantRef, stack);
      case T.object8:
      case T.object16:
      case T.object32:
      case T.objectId8:
      case T.objectId16:
      case T.objectId32:
        return this.parseObject(t, holder, index, wantRef, stack);
      case T.ref8:
      case T.ref16:
      case T.ref32:
      case T.objref8:
      case T.objref16:
      case T.objref32:
        return this.parseRef(t, holder, index, wantRef);
    }
    const v = this.parseScalar(t);
    if (v === undefined) return this.fail('unknown value type', start);
    if (v === null) return false;
    holder[index]![1] = v;
    return true;
  }

  /**
   * The value after a 0x25 (reference) prefix, made a reference in holder[index][1]. A chain of 0x25
   * behaves like one: the inner levels find the value already a reference.
   */
  private parseRefPrefix(holder: PhpEntry[], index: number, stack: Frame[]): boolean {
    let t: number = T.ref;
    while (t === T.ref) {
      if (!this.need(1)) return this.fail('unexpected end of data');
      t = this.buf[this.pos++]!;
    }
    this.pos--;
    if (!this.parseZval(holder, index, true, stack)) return false;
    const v = holder[index]![1];
    if (v.type !== 'reference') {
      const node: PhpReferenceNode = { type: 'reference', target: { value: v } };
      holder[index]![1] = node;
      // scalars are added to the reference table here; arrays and objects already were
      if (v.type !== 'array' && v.type !== 'object' && v.type !== 'serializable' && v.type !== 'enum') {
        this.refs.push({ kind: 'ref', node });
      }
    }
    return true;
  }

  /**
   * A scalar of type byte `t` (its type byte already read): the value, null after a failure (already
   * recorded by fail), or undefined when `t` is no scalar type.
   */
  private parseScalar(t: number): PhpValue | null | undefined {
    switch (t) {
      case T.null:
        return NULL_VALUE;
      case T.false:
        return { type: 'bool', value: false };
      case T.true:
        return { type: 'bool', value: true };
      case T.long8p:
      case T.long8n:
      case T.long16p:
      case T.long16n:
      case T.long32p:
      case T.long32n:
      case T.long64p:
      case T.long64n: {
        const v = this.readLong(t);
        return v === null ? null : { type: 'int', value: intValue(v) };
      }
      case T.double:
        if (!this.need(8)) return this.failed('truncated float');
        this.pos += 8;
        return { type: 'float', value: this.buf.readDoubleBE(this.pos - 8) };
      case T.stringEmpty:
        return { type: 'string', bytes: Buffer.alloc(0) };
      case T.stringId8:
      case T.stringId16:
      case T.stringId32: {
        const s = this.readStringId(t);
        return s === null ? null : { type: 'string', bytes: s };
      }
      case T.string8:
      case T.string16:
      case T.string32:
      case T.string64: {
        const s = this.readCharArray(t);
        return s === null ? null : { type: 'string', bytes: s };
      }
      default:
        return undefined;
    }
  }

  /** fail() for a helper that returns a value: records the failure, returns null. */
  private failed(why: string): null {
    this.fail(why);
    return null;
  }

  private readCount(t: number, array8: number): number | null {
    const width = t === array8 ? 1 : t === array8 + 1 ? 2 : 4;
    if (!this.need(width)) {
      this.fail('truncated array length');
      return null;
    }
    return Number(this.readUint(width));
  }

  private parseArray(t: number, holder: PhpEntry[], index: number, wantRef: boolean, stack: Frame[]): boolean {
    const n = this.readCount(t, T.array8);
    if (n === null) return false;
    if (t === T.array8 && n === 0) {
      const empty: PhpArray = { type: 'array', entries: [] };
      if (wantRef) {
        const node: PhpReferenceNode = { type: 'reference', target: { value: empty } };
        this.refs.push({ kind: 'ref', node });
        holder[index]![1] = node;
      } else {
        this.refs.push({ kind: 'empty' });
        holder[index]![1] = empty;
      }
      return true;
    }
    // "n cannot be larger than the number of minimum 'objects' in the array"
    if (!this.need(n)) return this.fail('array length exceeds the data');
    const arr: PhpArray = { type: 'array', entries: [] };
    if (wantRef) {
      const node: PhpReferenceNode = { type: 'reference', target: { value: arr } };
      this.refs.push({ kind: 'ref', node });
      holder[index]![1] = node;
    } else {
      this.refs.push({ kind: 'array', node: arr });
      holder[index]![1] = arr;
    }
    if (n > 0) stack.push({ entries: arr.entries, remaining: n, isObject: false, seen: null });
    return true;
  }

  /**
   * An object (igbinary_unserialize_object): its class name, then one of three bodies after the inner
   * type byte: properties (an array), a Serializable payload (object_ser) or an enum case.
   */
  private parseObject(t: number, holder: PhpEntry[], index: number, wantRef: boolean, stack: Frame[]): boolean {
    const nameStart = this.pos;
    const name = this.readClassName(t, nameStart);
    if (name === null) return false;
    if (!this.need(1)) return this.fail('unexpected end of data');
    const place = this.objectPlacer(holder, index, wantRef);
    const inner = this.buf[this.pos++]!;
    switch (inner) {
      case T.array8:
      case T.array16:
      case T.array32:
        return this.parseObjectProps(inner, name.className, place, stack);
      case T.objectSer8:
      case T.objectSer16:
      case T.objectSer32:
        // igbinary_unserialize_object_ser: needs the class's unserialize() (PHP fails when the class
        // is missing); the payload is kept opaque here.
        if (name.isStdClass) return this.fail('stdClass cannot hold Serializable data', nameStart);
        return this.parseObjectSer(inner, name.className, place);
      case T.enumCase:
        if (name.isStdClass) return this.fail('stdClass is not an enum', nameStart);
        return this.parseEnumCase(name.className, place);
      default:
        return this.fail('unknown object type', this.pos - 1);
    }
  }

  /**
   * The class name of an object (a char array or a string ID), `stdClass` in its canonical case; null
   * after a failure, also for a class PHP refuses to unserialize (IGBINARY_IS_NOT_UNSERIALIZABLE:
   * "Unserialization of 'X' is not allowed").
   */
  private readClassName(t: number, nameStart: number): { className: string; isStdClass: boolean } | null {
    const nameBytes = t <= T.object32 ? this.readCharArray(t) : this.readStringId(t);
    if (nameBytes === null) return null;
    const className = bytesToName(nameBytes);
    const isStdClass = asciiLower(className) === 'stdclass';
    if (NOT_SERIALIZABLE_CLASSES.has(asciiLower(className))) {
      this.fail('class that does not allow unserialization', nameStart);
      return null;
    }
    return { className: isStdClass ? 'stdClass' : className, isStdClass };
  }

  /**
   * Reserves the object's slot in the reference table now (references inside the object may not point
   * at it until it is placed) and returns the function that places the object, in the holder and in
   * that slot, as a reference when `wantRef`.
   */
  private objectPlacer(holder: PhpEntry[], index: number, wantRef: boolean): (node: PhpValue) => void {
    const refN = this.refs.length;
    this.refs.push({ kind: 'pending' });
    return (node) => {
      if (wantRef) {
        const r: PhpReferenceNode = { type: 'reference', target: { value: node } };
        this.refs[refN] = { kind: 'ref', node: r };
        holder[index]![1] = r;
      } else {
        this.refs[refN] = { kind: 'object', node };
        holder[index]![1] = node;
      }
    };
  }

  /** An object with properties: placed at once, its properties read as the frame pushed on `stack`. */
  private parseObjectProps(inner: number, className: string, place: (node: PhpValue) => void, stack: Frame[]): boolean {
    const obj: PhpObject = { type: 'object', className, props: [] };
    place(obj);
    const n = this.readCount(inner, T.array8);
    if (n === null) return false;
    if (!this.need(n)) return this.fail('property count exceeds the data');
    if (n > 0) stack.push({ entries: obj.props, remaining: n, isObject: true, seen: null });
    return true;
  }

  /** A Serializable object's payload (object_ser8/16/32), kept opaque. */
  private parseObjectSer(inner: number, className: string, place: (node: PhpValue) => void): boolean {
    const n = this.readCount(inner, T.objectSer8);
    if (n === null) return false;
    if (!this.need(n)) return this.fail('Serializable payload length exceeds the data');
    const payload = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.warn('serializable-object');
    place({ type: 'serializable', className, payload });
    return true;
  }

  /** An enum case: its name as a char array or a string ID, never empty. */
  private parseEnumCase(className: string, place: (node: PhpValue) => void): boolean {
    if (!this.need(1)) return this.fail('unexpected end of data');
    const st = this.buf[this.pos++]!;
    const caseBytes =
      st === T.string8 || st === T.string16 || st === T.string32 || st === T.string64 ? this.readCharArray(st) : this.readStringId(st);
    if (caseBytes === null) return false;
    if (caseBytes.length === 0) return this.fail('empty enum case name');
    this.warn('enum-requires-class');
    place({ type: 'enum', className, caseName: bytesToName(caseBytes) });
    return true;
  }

  private parseRef(t: number, holder: PhpEntry[], index: number, wantRef: boolean): boolean {
    const width = t === T.ref8 || t === T.objref8 ? 1 : t === T.ref16 || t === T.objref16 ? 2 : 4;
    if (!this.need(width)) return this.fail('truncated reference');
    const start = this.pos - 1;
    const n = Number(this.readUint(width));
    const entry = this.refs[n];
    if (entry === undefined || entry.kind === 'pending') return this.fail('reference to an unknown value', start);
    if (wantRef) {
      let node: PhpReferenceNode;
      switch (entry.kind) {
        case 'ref':
          node = entry.node;
          break;
        case 'object':
          node = { type: 'reference', target: { value: entry.node } };
          break;
        case 'array':
          node = { type: 'reference', target: { value: entry.node } };
          break;
        case 'empty':
          node = { type: 'reference', target: { value: { type: 'array', entries: [] } } };
          break;
      }
      // "Permanently convert the zval in IGB_REF_VAL() into a IS_REFERENCE"
      this.refs[n] = { kind: 'ref', node };
      holder[index]![1] = node;
      return true;
    }
    switch (entry.kind) {
      case 'ref':
        holder[index]![1] = entry.node.target.value;
        break;
      case 'object':
        holder[index]![1] = entry.node;
        break;
      case 'array':
        holder[index]![1] = entry.node;
        break;
      case 'empty':
        holder[index]![1] = { type: 'array', entries: [] };
        break;
    }
    return true;
  }
}
