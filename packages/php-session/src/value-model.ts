/**
 * Conversion of decoded sessions to the JSON value model used by the shared QA cases
 * (test/fixtures/cases/README.md "Value model", produced on the PHP side by tools/php-session-norm.php).
 */
import { isValidUtf8, nameHasRawBytes, phpKeyBytes } from './bytes.ts';
import type { PhpEntry, PhpKey, PhpReference, PhpValue } from './model.ts';
import { handleNumericKey } from './unserialize.ts';

/**
 * PHP's var_export() text for a float with serialize_precision = -1 (the default): the shortest
 * round-trip digits, formatted by zend_gcvt(value, 17, '.', 'E') (main/snprintf.c) -- exponential when
 * the decimal exponent is < -4 or > 17 -- plus ".0" when the text has no '.', 'E' (ext/standard/var.c,
 * smart_str_append_double). INF / -INF / NAN as PHP names them.
 */
export function phpFloatToString(x: number): string {
  if (Number.isNaN(x)) return 'NAN';
  if (x === Infinity) return 'INF';
  if (x === -Infinity) return '-INF';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const neg = x < 0;
  const [mant, exp] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mant.replace('.', '');
  const decpt = Number(exp) + 1; // value = 0.DIGITS * 10^decpt
  let out: string;
  if (decpt < 0 ? decpt < -3 : decpt > 17) {
    const e = decpt - 1;
    out = digits[0]! + '.' + (digits.length > 1 ? digits.slice(1) : '0') + 'E' + (e < 0 ? '-' : '+') + Math.abs(e);
  } else if (decpt <= 0) {
    out = '0.' + '0'.repeat(-decpt) + digits;
  } else if (digits.length <= decpt) {
    out = digits + '0'.repeat(decpt - digits.length) + '.0';
  } else {
    out = digits.slice(0, decpt) + '.' + digits.slice(decpt);
  }
  return neg ? '-' + out : out;
}

function bytesModel(bytes: Buffer): unknown {
  return isValidUtf8(bytes) ? bytes.toString('utf8') : { $bytes_hex: bytes.toString('hex') };
}

function keyModel(key: PhpKey, isProperty: boolean): unknown {
  if (typeof key !== 'string') return key;
  // (array)$object turns numeric property names into int keys (the norm script reads props that way)
  if (isProperty) {
    const n = handleNumericKey(key);
    if (n !== null) return n;
  }
  return nameHasRawBytes(key) ? { $bytes_hex: phpKeyBytes(key).toString('hex') } : key;
}

/**
 * Count how many array/property slots hold each PHP reference. PHP shows (ReflectionReference) only
 * references with more than one holder: a reference whose other holders were released behaves as a
 * plain value.
 */
function countReferenceHolders(entries: PhpEntry[]): Map<PhpReference, number> {
  const counts = new Map<PhpReference, number>();
  const visited = new Set<PhpEntry[]>();
  const todo: PhpEntry[][] = [entries];
  visited.add(entries);
  const visit = (v: PhpValue): void => {
    let inner = v;
    if (v.type === 'reference') {
      counts.set(v.target, (counts.get(v.target) ?? 0) + 1);
      inner = v.target.value;
    }
    const list = inner.type === 'array' ? inner.entries : inner.type === 'object' ? inner.props : null;
    if (list && !visited.has(list)) {
      visited.add(list);
      todo.push(list);
    }
  };
  while (todo.length > 0) {
    for (const [, v] of todo.pop()!) visit(v);
  }
  return counts;
}

/** @internal Rendering policies, used by the tests to print exactly what PHP's norm script prints. */
export interface RenderHooks {
  /** The value shown for slot `index` of `list` (after dereferencing); default: the slot's value. */
  slotValue?: (list: PhpEntry[], index: number, isProperty: boolean) => PhpValue;
  /** Show Serializable objects as PHP does without their class: an object with no properties. */
  serializableAsObject?: boolean;
  /** Stop with an error past this many output nodes (default 10 million). */
  maxNodes?: number;
}

type Task =
  | { kind: 'slot'; ref: PhpReference | null; value: PhpValue; assign: (out: unknown) => void }
  | { kind: 'leave'; node: object; isObject: boolean };

/**
 * Converts decoded session entries to the JSON value model of test/fixtures/cases/README.md:
 * strings are JSON strings when valid UTF-8, otherwise `{"$bytes_hex"}`; floats `{"$float": "1.5"}`;
 * arrays `{"$array": [[k, v], ...]}`; objects `{"$object", "objectNo", "props"}` numbered in
 * depth-first order with `{"$sameObjectAs": n}` for repeats; references `{"$phpReference": "r1",
 * "value"}` (only while more than one slot holds them, as PHP reports them); enums
 * `{"$enum": "Class:Case"}`; `C:` objects `{"$serializable", "payload"}`. Ints outside +-2^53 are
 * bigint. Like PHP's printer it descends into an array again when the way back to it passed an object
 * (the object then prints as `$sameObjectAs`); a cycle of arrays and references alone, which PHP cannot
 * print at all, is cut with `{"$recursion": true}`. Iterative: deep values cannot overflow the stack.
 */
export function toValueModel(entries: Array<[PhpKey, PhpValue]>): unknown {
  return renderValueModel(entries, {});
}

/**
 * The state of one renderValueModel run: an explicit stack of tasks (fill a slot, or leave an array or
 * object), object numbers, reference ids, and the current descent for PHP's recursion rule.
 */
class ValueModelRenderer {
  private readonly holders: Map<PhpReference, number>;
  private readonly objectNo = new Map<object, number>();
  private readonly refIds = new Map<PhpReference, string>();
  // the current descent: arrays (with their positions) and objects (which end any cycle through them)
  private depth = 0;
  private readonly arrayDepths = new Map<object, number[]>();
  private readonly objectDepths: number[] = [];
  private readonly maxNodes: number;
  private nodes = 0;
  private readonly stack: Task[] = [];

  constructor(
    entries: PhpEntry[],
    private readonly hooks: RenderHooks,
  ) {
    this.holders = countReferenceHolders(entries);
    this.maxNodes = hooks.maxNodes ?? 10_000_000;
  }

  /** Renders `entries` as the list of `[key, value]` pairs. @throws Error past maxNodes output nodes. */
  run(entries: PhpEntry[]): unknown[] {
    const root: unknown[] = [];
    this.pushPairs(entries, false, root);
    const { stack } = this;
    while (stack.length > 0) {
      const task = stack.pop()!;
      if (task.kind === 'leave') {
        this.leave(task.node, task.isObject);
        continue;
      }
      if (++this.nodes > this.maxNodes) throw new Error('value model too large');
      if (task.ref) this.renderReference(task.ref, task.value, task.assign);
      else this.renderValue(task.value, task.assign);
    }
    return root;
  }

  /** Queues the slots of `list` (so that they render in order), each into its `[key, value]` pair of `out`. */
  private pushPairs(list: PhpEntry[], isProperty: boolean, out: unknown[]): void {
    const { holders, hooks } = this;
    for (let i = list.length - 1; i >= 0; i--) {
      const [k, real] = list[i]!;
      const pair: unknown[] = [keyModel(k, isProperty), null];
      out[i] = pair;
      // norm script: ReflectionReference on the slot itself, then the value read through the key
      const ref = real.type === 'reference' && (holders.get(real.target) ?? 0) + (real.target.extraHolders ?? 0) >= 2 ? real.target : null;
      let value = hooks.slotValue ? hooks.slotValue(list, i, isProperty) : real;
      if (value.type === 'reference') value = value.target.value;
      this.stack.push({
        kind: 'slot',
        ref,
        value,
        assign: (o) => {
          pair[1] = o;
        },
      });
    }
  }

  /** Descends into an array or object; its `leave` task is queued below its slots. */
  private enter(node: object, isObject: boolean): void {
    this.depth++;
    if (isObject) this.objectDepths.push(this.depth);
    else {
      const list = this.arrayDepths.get(node);
      if (list) list.push(this.depth);
      else this.arrayDepths.set(node, [this.depth]);
    }
    this.stack.push({ kind: 'leave', node, isObject });
  }

  private leave(node: object, isObject: boolean): void {
    if (isObject) this.objectDepths.pop();
    else this.arrayDepths.get(node)!.pop();
    this.depth--;
  }

  /** `{"$phpReference": "rN", "value"}`, ids numbered in order of first appearance. */
  private renderReference(target: PhpReference, value: PhpValue, assign: (out: unknown) => void): void {
    let id = this.refIds.get(target);
    if (id === undefined) {
      id = `r${this.refIds.size + 1}`;
      this.refIds.set(target, id);
    }
    const wrapper: { $phpReference: string; value: unknown } = { $phpReference: id, value: null };
    assign(wrapper);
    this.stack.push({
      kind: 'slot',
      ref: null,
      value,
      assign: (o) => {
        wrapper.value = o;
      },
    });
  }

  /** One dereferenced value: scalars at once, objects and arrays by queueing their slots. */
  private renderValue(v: PhpValue, assign: (out: unknown) => void): void {
    switch (v.type) {
      case 'null':
        assign(null);
        break;
      case 'bool':
        assign(v.value);
        break;
      case 'int':
        assign(v.value);
        break;
      case 'float':
        assign({ $float: phpFloatToString(v.value) });
        break;
      case 'string':
        assign(bytesModel(v.bytes));
        break;
      case 'enum':
        assign({ $enum: `${v.className}:${v.caseName}` });
        break;
      case 'reference':
        assign(null);
        break; // not reached: slots are dereferenced above
      case 'serializable':
        this.renderSerializable(v, assign);
        break;
      case 'object':
        this.renderObject(v, assign);
        break;
      case 'array':
        this.renderArray(v, assign);
        break;
    }
  }

  /** The object number of `v`, or null when it was numbered already (`$sameObjectAs` assigned). */
  private numberObject(v: object, assign: (out: unknown) => void): number | null {
    const seen = this.objectNo.get(v);
    if (seen !== undefined) {
      assign({ $sameObjectAs: seen });
      return null;
    }
    const n = this.objectNo.size + 1;
    this.objectNo.set(v, n);
    return n;
  }

  private renderSerializable(v: Extract<PhpValue, { type: 'serializable' }>, assign: (out: unknown) => void): void {
    const n = this.numberObject(v, assign);
    if (n === null) return;
    assign(
      this.hooks.serializableAsObject
        ? { $object: v.className, objectNo: n, props: [] }
        : { $serializable: v.className, payload: bytesModel(v.payload) },
    );
  }

  private renderObject(v: Extract<PhpValue, { type: 'object' }>, assign: (out: unknown) => void): void {
    const n = this.numberObject(v, assign);
    if (n === null) return;
    const props: unknown[] = [];
    assign({ $object: v.className, objectNo: n, props });
    this.enter(v, true);
    this.pushPairs(v.props, true, props);
  }

  /** An array, or `{"$recursion": true}` when it is open already and no object was entered since. */
  private renderArray(v: Extract<PhpValue, { type: 'array' }>, assign: (out: unknown) => void): void {
    const { objectDepths } = this;
    const open = this.arrayDepths.get(v);
    const last = open && open.length > 0 ? open[open.length - 1]! : -1;
    if (last >= 0 && !(objectDepths.length > 0 && objectDepths[objectDepths.length - 1]! > last)) {
      assign({ $recursion: true });
      return;
    }
    const out: unknown[] = [];
    assign({ $array: out });
    this.enter(v, false);
    this.pushPairs(v.entries, false, out);
  }
}

/** @internal {@link toValueModel} with rendering hooks. */
export function renderValueModel(entries: Array<[PhpKey, PhpValue]>, hooks: RenderHooks): unknown {
  return new ValueModelRenderer(entries, hooks).run(entries);
}
