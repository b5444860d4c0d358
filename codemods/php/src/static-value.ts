/**
 * Static values of PHP expressions, for the codemod (include paths) and the audit (run-time session
 * settings): what an expression evaluates to when that does not depend on the request, else
 * UNRESOLVED. One home for "what PHP would compute here".
 *
 * Resolved: string, number, boolean and null literals (heredoc/nowdoc and interpolation-free double
 * quotes included), arrays of those, `.` concatenation, `+ - * / % **` on numbers, unary `- + !`,
 * casts, `?:` with a static condition, `__DIR__`, `__FILE__`, `__LINE__`, `__NAMESPACE__`,
 * `__CLASS__`, `dirname(X[, levels])`, `constant('NAME')`, built-in constants
 * (DIRECTORY_SEPARATOR, PATH_SEPARATOR, PHP_EOL), and, with a PhpSymbols table, constants from
 * `const NAME = ...;` and `define('NAME', ...)` (namespaces and `use const` applied; a constant
 * defined twice with different values is unresolved) and class constants (`C::X`, `self::`,
 * `parent::`, `static::` when no known class extends the class, inherited through `extends` and
 * interfaces; `C::class`). Variables, function calls and everything else are UNRESOLVED.
 *
 * Strings are binary strings (one char per byte, as source.ts reads files); `__DIR__`/`__FILE__` are
 * the file's path as given (PHP resolves symbolic links for them: pass the real path).
 * Conversions follow PHP 8: Zend/zend_operators.c (string conversion of numbers with precision=14,
 * `%.14G`, as ini_set() and `.` use it; true "1", false and null ""), ext/standard/string.c dirname()
 * and Zend/zend_virtual_cwd.c/main zend_dirname().
 */
import { posix } from 'node:path';
import type { PhpNode } from './source.ts';

/** The value of an expression PHP cannot know before it runs. */
export const UNRESOLVED: unique symbol = Symbol('unresolved');
export type Unresolved = typeof UNRESOLVED;

/** A PHP array: entries in order, keys as PHP normalises them (numeric strings become ints). */
export interface PhpArray {
  kind: 'array';
  entries: Array<[string | number, PhpValue]>;
}

/** A PHP value: string (binary), int or float (number), bool, null, array. */
export type PhpValue = string | number | boolean | null | PhpArray;

/** Where an expression is: the file (real path), its namespace and `use` imports, the class around it. */
export interface PhpScope {
  file: string;
  /** Namespace without leading `\`, '' for the global one. */
  namespace: string;
  /** `use` class imports: lower-cased alias -> fully qualified name (no leading `\`). */
  uses: Map<string, string>;
  /** `use const` imports: alias -> fully qualified constant name. */
  constUses: Map<string, string>;
  /** Fully qualified name of the class (interface, trait, enum) around the expression, if any. */
  className: string | null;
}

/** An empty global scope for `file`. */
export function globalScope(file: string): PhpScope {
  return { file, namespace: '', uses: new Map(), constUses: new Map(), className: null };
}

const isNode = (v: unknown): v is PhpNode => typeof v === 'object' && v !== null && typeof (v as { kind?: unknown }).kind === 'string';

/** An identifier or name node's text, or a plain string. */
export function nodeName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isNode(v) && typeof v.name === 'string') return v.name;
  return null;
}

/**
 * PHP's dirname() (ext/standard/string.c, zend_dirname() for '/'-separated paths): trailing slashes
 * and the last component go, `dirname('a')` is '.', `dirname('/')` is '/', `dirname('')` is '';
 * with levels > 1 it stops once the path no longer shrinks.
 * @returns null for levels < 1 (PHP throws a ValueError).
 */
export function phpDirname(path: string, levels = 1): string | null {
  if (!Number.isInteger(levels) || levels < 1) return null;
  const once = (p: string): string => {
    if (p === '') return '';
    let end = p.length - 1;
    while (end >= 0 && p[end] === '/') end--;
    if (end < 0) return '/';
    while (end >= 0 && p[end] !== '/') end--;
    if (end < 0) return '.';
    while (end >= 0 && p[end] === '/') end--;
    if (end < 0) return '/';
    return p.slice(0, end + 1);
  };
  let out = path;
  for (let i = 0; i < levels; i++) {
    const next = once(out);
    const shrunk = next.length < out.length;
    out = next;
    if (!shrunk) break;
  }
  return out;
}

/** A float as PHP prints it in a string context (precision=14: `%.14G`, "1.0E+20", "0.3", "-0"). */
export function phpFloatToString(f: number): string {
  if (Number.isNaN(f)) return 'NAN';
  if (!Number.isFinite(f)) return f > 0 ? 'INF' : '-INF';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  const [mantissa, exp] = f.toExponential(13).split('e') as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 14) {
    let m = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
    if (!m.includes('.')) m += '.0';
    return `${m}E${e < 0 ? '-' : '+'}${Math.abs(e)}`;
  }
  const fixed = f.toFixed(Math.max(0, 13 - e));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/**
 * A value as PHP converts it to a string (zval_get_string): ints in decimal, floats as
 * phpFloatToString, true "1", false and null "". @returns null for an array (PHP gives "Array" with
 * a warning; no setting means that).
 */
export function phpToString(v: PhpValue): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number')
    return Number.isInteger(v) && Math.abs(v) < 2 ** 63 ? (Object.is(v, -0) ? '0' : String(v)) : phpFloatToString(v);
  if (v === true) return '1';
  if (v === false || v === null) return '';
  return null;
}

/** PHP truthiness (zval_is_true). */
export function phpTruthy(v: PhpValue): boolean {
  if (typeof v === 'string') return v !== '' && v !== '0';
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'boolean') return v;
  if (v === null) return false;
  return v.entries.length > 0;
}

/** An integer or float literal as php-parser gives it (`0x1F`, `0b11`, `0o17`, `017`, `1_000`, `1.5e3`). */
function numberLiteral(raw: string): number | null {
  const s = raw.replace(/_/g, '');
  let m: RegExpExecArray | null;
  if ((m = /^0[xX]([0-9a-fA-F]+)$/.exec(s)) !== null) return parseInt(m[1]!, 16);
  if ((m = /^0[bB]([01]+)$/.exec(s)) !== null) return parseInt(m[1]!, 2);
  if ((m = /^0[oO]?([0-7]+)$/.exec(s)) !== null && s.length > 1) return parseInt(m[1]!, 8);
  if (/^\d+$/.test(s)) return parseInt(s, 10);
  const f = Number(s);
  return Number.isFinite(f) || /^[\d.eE+-]+$/.test(s) ? f : null;
}

/** A numeric string's number (leading/trailing whitespace allowed, as PHP 8), else null. */
function numericString(s: string): number | null {
  if (!/^[ \t\n\r\v\f]*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[ \t\n\r\v\f]*$/.test(s)) return null;
  return Number(s.trim());
}

function toNumber(v: PhpValue): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === null) return 0;
  if (typeof v === 'string') return numericString(v);
  return null;
}

/** Array key normalisation: "5" -> 5, true -> 1, null -> "" (Zend/zend_hash.c ZEND_HANDLE_NUMERIC_STR). */
function arrayKey(k: PhpValue): string | number | null {
  if (typeof k === 'string') return /^(0|-?[1-9]\d*)$/.test(k) && Math.abs(Number(k)) < 2 ** 53 ? Number(k) : k;
  if (typeof k === 'number') return Math.trunc(k);
  if (typeof k === 'boolean') return k ? 1 : 0;
  if (k === null) return '';
  return null;
}

/** The entry of `key` in a PHP array (keys compared after normalisation), or undefined. */
export function arrayGet(a: PhpArray, key: string | number): PhpValue | undefined {
  const k = arrayKey(key);
  for (let i = a.entries.length - 1; i >= 0; i--) if (a.entries[i]![0] === k) return a.entries[i]![1];
  return undefined;
}

/** Positional argument `index`, or the named argument with one of `names`; a spread before it gives UNRESOLVED. */
export function callArgument(args: readonly PhpNode[], index: number, ...names: string[]): PhpNode | Unresolved | undefined {
  const named = args.find((a) => a.kind === 'namedargument' && names.includes(String(a.name)));
  if (named !== undefined) return named.value as PhpNode;
  if (args.some((a, i) => i <= index && (a.kind === 'variadic' || a.kind === 'variadicplaceholder'))) return UNRESOLVED;
  const positional = args[index];
  return positional !== undefined && positional.kind !== 'namedargument' ? positional : undefined;
}

interface ConstantDef {
  node: PhpNode;
  scope: PhpScope;
}
interface ClassDef {
  name: string;
  parent: string | null;
  interfaces: string[];
  consts: Map<string, ConstantDef>;
}

/** Built-in constants a static value may use (Linux values). */
const BUILTIN_CONSTANTS: Record<string, PhpValue> = { DIRECTORY_SEPARATOR: '/', PATH_SEPARATOR: ':', PHP_EOL: '\n' };

/** Lower-cases the namespace part of a constant name (PHP: namespaces are case-insensitive, constant names are not). */
function constantKey(fq: string): string {
  const i = fq.lastIndexOf('\\');
  return i < 0 ? fq : `${fq.slice(0, i).toLowerCase()}\\${fq.slice(i + 1)}`;
}

/**
 * Resolves a class name as PHP does in `scope` (namespace and `use` imports).
 * @returns the fully qualified name without a leading `\`.
 */
export function resolveClassName(name: string, resolution: string | undefined, scope: PhpScope): string {
  if (name.startsWith('\\') || resolution === 'fqn') return name.replace(/^\\/, '');
  if (resolution === 'rn' || /^namespace\\/i.test(name))
    return [scope.namespace, name.replace(/^namespace\\/i, '')].filter((x) => x !== '').join('\\');
  const [first, ...rest] = name.split('\\');
  const imported = scope.uses.get(first!.toLowerCase());
  if (imported !== undefined) return [imported, ...rest].join('\\');
  return scope.namespace === '' ? name : `${scope.namespace}\\${name}`;
}

/**
 * Constants and class constants of a set of files, and the evaluator that uses them. Add every file
 * first (addFile), then evaluate: a constant defined in a file read later is still found.
 */
export class PhpSymbols {
  private readonly constants = new Map<string, ConstantDef[]>();
  private readonly classes = new Map<string, ClassDef>();
  private readonly extended = new Set<string>();
  private readonly evaluating = new Set<string>();

  /** Records the `const`, `define()`, classes and interfaces of one parsed file. */
  addFile(ast: PhpNode, file: string): void {
    walkScoped(ast, globalScope(file), (node, scope) => {
      if (node.kind === 'constantstatement' && scope.className === null) {
        for (const c of (node.constants as PhpNode[] | undefined) ?? []) {
          const n = nodeName(c.name);
          if (n !== null && isNode(c.value))
            this.addConstant(scope.namespace === '' ? n : `${scope.namespace}\\${n}`, { node: c.value, scope });
        }
      } else if (
        node.kind === 'call' &&
        isNode(node.what) &&
        node.what.kind === 'name' &&
        String(node.what.name).replace(/^\\/, '').toLowerCase() === 'define'
      ) {
        const args = (node.arguments as PhpNode[] | undefined) ?? [];
        const nameArg = callArgument(args, 0, 'constant_name');
        const valueArg = callArgument(args, 1, 'value');
        if (nameArg === UNRESOLVED || nameArg === undefined || valueArg === UNRESOLVED || valueArg === undefined) return;
        const n = this.evaluate(nameArg, scope);
        if (typeof n === 'string' && n !== '') this.addConstant(n.replace(/^\\/, ''), { node: valueArg, scope });
      } else if (['class', 'interface', 'trait', 'enum'].includes(node.kind) && nodeName(node.name) !== null) {
        const fq = scope.className!;
        const ext = node.extends;
        const parent = isNode(ext)
          ? resolveClassName(String(ext.name), ext.resolution as string | undefined, { ...scope, className: null })
          : Array.isArray(ext) && isNode(ext[0])
            ? resolveClassName(String(ext[0].name), ext[0].resolution as string | undefined, scope)
            : null;
        const interfaces = (
          (node.kind === 'interface'
            ? Array.isArray(ext)
              ? ext
              : []
            : ((node.implements as PhpNode[] | null | undefined) ?? [])) as PhpNode[]
        )
          .filter(isNode)
          .map((i) => resolveClassName(String(i.name), i.resolution as string | undefined, scope));
        const def: ClassDef = {
          name: fq,
          parent: node.kind === 'interface' ? null : parent,
          interfaces: node.kind === 'interface' && parent !== null ? [...new Set([parent, ...interfaces])] : interfaces,
          consts: new Map(),
        };
        for (const member of (node.body as PhpNode[] | undefined) ?? []) {
          if (member.kind !== 'classconstant') continue;
          for (const c of (member.constants as PhpNode[] | undefined) ?? []) {
            const n = nodeName(c.name);
            if (n !== null && isNode(c.value)) def.consts.set(n, { node: c.value, scope });
          }
        }
        const key = fq.toLowerCase();
        // Two classes of one name (conditional declarations): which one PHP loads is not static.
        if (this.classes.has(key)) this.classes.set(key, { ...def, consts: new Map() });
        else this.classes.set(key, def);
        if (def.parent !== null) this.extended.add(def.parent.toLowerCase());
      }
    });
  }

  private addConstant(fq: string, def: ConstantDef): void {
    const key = constantKey(fq);
    const list = this.constants.get(key) ?? [];
    list.push(def);
    this.constants.set(key, list);
  }

  /** The value of constant `fq` (fully qualified), UNRESOLVED when unknown or defined with different values. */
  constantValue(fq: string): PhpValue | Unresolved {
    const key = constantKey(fq.replace(/^\\/, ''));
    const defs = this.constants.get(key);
    if (defs === undefined) return BUILTIN_CONSTANTS[key] ?? UNRESOLVED;
    if (this.evaluating.has(`c:${key}`)) return UNRESOLVED;
    this.evaluating.add(`c:${key}`);
    try {
      let out: PhpValue | Unresolved | undefined;
      for (const d of defs) {
        const v = this.evaluate(d.node, d.scope);
        if (v === UNRESOLVED) return UNRESOLVED;
        if (out !== undefined && JSON.stringify(out) !== JSON.stringify(v)) return UNRESOLVED;
        out = v;
      }
      return out ?? UNRESOLVED;
    } finally {
      this.evaluating.delete(`c:${key}`);
    }
  }

  /** Class constant `name` of class `fq`, looked up through parents and interfaces. */
  classConstant(fq: string, name: string): PhpValue | Unresolved {
    const seen = new Set<string>();
    const find = (cls: string): ConstantDef | null => {
      const key = cls.toLowerCase();
      if (seen.has(key)) return null;
      seen.add(key);
      const c = this.classes.get(key);
      if (c === undefined) return null;
      const own = c.consts.get(name);
      if (own !== undefined) return own;
      for (const next of [...(c.parent !== null ? [c.parent] : []), ...c.interfaces]) {
        const r = find(next);
        if (r !== null) return r;
      }
      return null;
    };
    const def = find(fq);
    if (def === null) return UNRESOLVED;
    const key = `k:${fq.toLowerCase()}::${name}`;
    if (this.evaluating.has(key)) return UNRESOLVED;
    this.evaluating.add(key);
    try {
      return this.evaluate(def.node, def.scope);
    } finally {
      this.evaluating.delete(key);
    }
  }

  /** Whether the files define constant `fq` (whatever its value). */
  defines(fq: string): boolean {
    return this.constants.has(constantKey(fq.replace(/^\\/, '')));
  }

  /** Whether any known class extends `fq` (then `static::X` may mean another class's constant). */
  isExtended(fq: string): boolean {
    return this.extended.has(fq.toLowerCase());
  }

  /** The parent class of `fq`, when known. */
  parentOf(fq: string): string | null {
    return this.classes.get(fq.toLowerCase())?.parent ?? null;
  }

  /** Evaluates `node` in `scope`. */
  evaluate(node: PhpNode, scope: PhpScope): PhpValue | Unresolved {
    return evaluateStatic(node, scope, this);
  }
}

/** What a node-kind evaluator sees: the scope, the symbols (when known), and `ev` for child nodes (one level deeper). */
interface EvalContext {
  scope: PhpScope;
  symbols: PhpSymbols | undefined;
  ev: (n: unknown) => PhpValue | Unresolved;
}

type KindEvaluator = (node: PhpNode, cx: EvalContext) => PhpValue | Unresolved;

/** `"..."` with interpolation: static only when every part is a plain string. */
function evalEncapsed(node: PhpNode): PhpValue | Unresolved {
  let out = '';
  for (const part of (node.value as PhpNode[] | undefined) ?? []) {
    const e = part.kind === 'encapsedpart' ? part.expression : part;
    if (!isNode(e) || e.kind !== 'string') return UNRESOLVED;
    out += String(e.value);
  }
  return out;
}

/** `__DIR__`, `__FILE__`, `__LINE__`, `__NAMESPACE__`, `__CLASS__`. */
function evalMagic(node: PhpNode, { scope }: EvalContext): PhpValue | Unresolved {
  const v = String(node.raw ?? node.value).toUpperCase();
  if (v === '__DIR__') return posix.dirname(scope.file);
  if (v === '__FILE__') return scope.file;
  if (v === '__LINE__') return node.loc?.start.line ?? UNRESOLVED;
  if (v === '__NAMESPACE__') return scope.namespace;
  if (v === '__CLASS__') return scope.className ?? '';
  return UNRESOLVED;
}

/**
 * The fully qualified names a constant reference may mean, in PHP's lookup order: the imported
 * (`use const`) name, else the namespace's constant then the global one (PHP's fallback for
 * unqualified names; https://www.php.net/manual/en/language.namespaces.fallback.php).
 */
function constantCandidates(raw: string, resolution: string | undefined, scope: PhpScope): string[] {
  const bare = raw.replace(/^\\/, '');
  if (raw.startsWith('\\') || resolution === 'fqn') return [bare];
  if (resolution === 'rn' || /^namespace\\/i.test(raw))
    return [[scope.namespace, raw.replace(/^namespace\\/i, '')].filter((x) => x !== '').join('\\')];
  if (bare.includes('\\')) return [resolveClassName(bare, 'qn', scope)];
  const imported = scope.constUses.get(bare);
  if (imported !== undefined) return [imported];
  const candidates: string[] = [];
  // Unqualified: the namespace's constant, else the global one (PHP's fallback).
  if (scope.namespace !== '') candidates.push(`${scope.namespace}\\${bare}`);
  candidates.push(bare);
  return candidates;
}

/** A constant reference (`true`, `FOO`, `\NS\FOO`, `namespace\FOO`). */
function evalConstant(node: PhpNode, { scope, symbols }: EvalContext): PhpValue | Unresolved {
  const raw = nodeName(node.name) ?? '';
  const lower = raw.replace(/^\\/, '').toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  if (lower === 'null') return null;
  const bare = raw.replace(/^\\/, '');
  for (const c of constantCandidates(raw, node.resolution as string | undefined, scope)) {
    const v = symbols !== undefined ? symbols.constantValue(c) : (BUILTIN_CONSTANTS[c] ?? UNRESOLVED);
    if (v !== UNRESOLVED) return v;
    // A namespaced constant that exists but is unresolved must not fall back to the global one.
    if (symbols !== undefined && c !== bare && symbols.defines(c)) return UNRESOLVED;
  }
  return UNRESOLVED;
}

/** Arithmetic and numeric comparison of two resolved operands (PHP's numeric-string rules via toNumber). */
function numericBinary(type: unknown, l: PhpValue, r: PhpValue): PhpValue | Unresolved {
  const a = toNumber(l);
  const b = toNumber(r);
  if (a === null || b === null) return UNRESOLVED;
  switch (type) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return b === 0 ? UNRESOLVED : a / b;
    case '%':
      return Number.isInteger(a) && Number.isInteger(b) && b !== 0 ? a % b : UNRESOLVED;
    case '**':
      return a ** b;
    case '<':
      return a < b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    case '>=':
      return a >= b;
    default:
      return UNRESOLVED;
  }
}

/** Binary operators: `??` and `?:` short-circuit; `.`, `===`/`!==`, logical, then numeric ones. */
function evalBinary(node: PhpNode, { ev }: EvalContext): PhpValue | Unresolved {
  const l = ev(node.left);
  if (node.type === '??') return l === UNRESOLVED ? UNRESOLVED : l !== null ? l : ev(node.right);
  if (node.type === '?:') return l === UNRESOLVED ? UNRESOLVED : phpTruthy(l) ? l : ev(node.right);
  const r = ev(node.right);
  if (l === UNRESOLVED || r === UNRESOLVED) return UNRESOLVED;
  if (node.type === '.') {
    const ls = phpToString(l);
    const rs = phpToString(r);
    return ls === null || rs === null ? UNRESOLVED : ls + rs;
  }
  if (node.type === '===' || node.type === '!==') {
    const same = JSON.stringify(l) === JSON.stringify(r) && typeof l === typeof r;
    return node.type === '===' ? same : !same;
  }
  if (node.type === '&&' || node.type === 'and') return phpTruthy(l) && phpTruthy(r);
  if (node.type === '||' || node.type === 'or') return phpTruthy(l) || phpTruthy(r);
  return numericBinary(node.type, l, r);
}

/** `!x`, `-x`, `+x`. */
function evalUnary(node: PhpNode, { ev }: EvalContext): PhpValue | Unresolved {
  const v = ev(node.what);
  if (v === UNRESOLVED) return UNRESOLVED;
  if (node.type === '!') return !phpTruthy(v);
  const n = toNumber(v);
  if (n === null) return UNRESOLVED;
  return node.type === '-' ? -n : node.type === '+' ? n : UNRESOLVED;
}

/** `(string)`, `(bool)`, `(int)`, `(float)` casts. */
function evalCast(node: PhpNode, { ev }: EvalContext): PhpValue | Unresolved {
  const v = ev(node.expr);
  if (v === UNRESOLVED) return UNRESOLVED;
  switch (node.type) {
    case 'string': {
      const s = phpToString(v);
      return s === null ? UNRESOLVED : s;
    }
    case 'bool':
    case 'boolean':
      return phpTruthy(v);
    case 'int':
    case 'integer': {
      const n = toNumber(v);
      return n === null ? (typeof v === 'string' ? parseInt(v, 10) || 0 : UNRESOLVED) : Math.trunc(n);
    }
    case 'float':
    case 'double':
    case 'real': {
      const n = toNumber(v);
      return n === null ? UNRESOLVED : n;
    }
    default:
      return UNRESOLVED;
  }
}

/** `test ? a : b` and `test ?: b` written as a ternary node. */
function evalTernary(node: PhpNode, { ev }: EvalContext): PhpValue | Unresolved {
  const test = ev(node.test);
  if (test === UNRESOLVED) return UNRESOLVED;
  if (!phpTruthy(test)) return ev(node.falseExpr);
  return node.trueExpr === null || node.trueExpr === undefined ? test : ev(node.trueExpr);
}

/** An array literal: PHP's next-integer-key rule, later duplicate keys overwrite; unpacking is not static. */
function evalArray(node: PhpNode, { ev }: EvalContext): PhpValue | Unresolved {
  const out: PhpArray = { kind: 'array', entries: [] };
  let next = 0;
  for (const item of (node.items as Array<PhpNode | null> | undefined) ?? []) {
    if (item === null) return UNRESOLVED;
    const entry = item.kind === 'entry' ? item : ({ kind: 'entry', key: null, value: item, unpack: false } as PhpNode);
    if (entry.unpack === true) return UNRESOLVED;
    const value = ev(entry.value);
    if (value === UNRESOLVED) return UNRESOLVED;
    let key: string | number | null;
    if (entry.key === null || entry.key === undefined) key = next;
    else {
      const k = ev(entry.key);
      if (k === UNRESOLVED) return UNRESOLVED;
      key = arrayKey(k);
      if (key === null) return UNRESOLVED;
    }
    if (typeof key === 'number' && key >= next) next = key + 1;
    const at = out.entries.findIndex((e) => e[0] === key);
    if (at >= 0) out.entries[at] = [key, value];
    else out.entries.push([key, value]);
  }
  return out;
}

/** `dirname($path, $levels)` with positional or named arguments. */
function evalDirnameCall(args: readonly PhpNode[], { ev }: EvalContext): PhpValue | Unresolved {
  const p = callArgument(args, 0, 'path');
  const l = callArgument(args, 1, 'levels');
  if (p === undefined || p === UNRESOLVED || l === UNRESOLVED) return UNRESOLVED;
  const path = ev(p);
  const levels = l === undefined ? 1 : ev(l);
  if (path === UNRESOLVED || levels === UNRESOLVED) return UNRESOLVED;
  const ps = phpToString(path);
  const n = toNumber(levels);
  if (ps === null || n === null) return UNRESOLVED;
  const out = phpDirname(ps, n);
  return out === null ? UNRESOLVED : out;
}

/** `constant('NAME')` or `constant('Class::NAME')`; needs the symbols. */
function evalConstantCall(args: readonly PhpNode[], { ev }: EvalContext, symbols: PhpSymbols): PhpValue | Unresolved {
  const n = callArgument(args, 0, 'name');
  if (n === undefined || n === UNRESOLVED) return UNRESOLVED;
  const name = ev(n);
  if (typeof name !== 'string') return UNRESOLVED;
  const m = /^\\?([^:]+)::([A-Za-z_][A-Za-z0-9_]*)$/.exec(name);
  return m !== null ? symbols.classConstant(m[1]!, m[2]!) : symbols.constantValue(name);
}

/** The function calls with a static value: `dirname()` and `constant()`. */
function evalCall(node: PhpNode, cx: EvalContext): PhpValue | Unresolved {
  const what = node.what as PhpNode;
  if (!isNode(what) || what.kind !== 'name') return UNRESOLVED;
  const fn = String(what.name).replace(/^\\/, '').toLowerCase();
  const args = (node.arguments as PhpNode[] | undefined) ?? [];
  if (fn === 'dirname') return evalDirnameCall(args, cx);
  if (fn === 'constant' && cx.symbols !== undefined) return evalConstantCall(args, cx, cx.symbols);
  return UNRESOLVED;
}

/** `self::X`, `parent::X`, `static::X` (only when no class extends this one), `Name::X`, `Name::class`. */
function evalStaticLookup(node: PhpNode, { scope, symbols }: EvalContext): PhpValue | Unresolved {
  const what = node.what as PhpNode;
  const member = nodeName(node.offset);
  if (!isNode(what) || member === null) return UNRESOLVED;
  let cls: string | null = null;
  if (what.kind === 'selfreference') cls = scope.className;
  else if (what.kind === 'parentreference')
    cls = scope.className !== null && symbols !== undefined ? symbols.parentOf(scope.className) : null;
  else if (what.kind === 'staticreference')
    cls = scope.className !== null && symbols !== undefined && !symbols.isExtended(scope.className) ? scope.className : null;
  else if (what.kind === 'name') cls = resolveClassName(String(what.name), what.resolution as string | undefined, scope);
  if (cls === null) return UNRESOLVED;
  if (member.toLowerCase() === 'class') return cls;
  return symbols !== undefined ? symbols.classConstant(cls, member) : UNRESOLVED;
}

/** One evaluator per php-parser node kind; a kind not listed is not static. */
const EVALUATORS: Readonly<Record<string, KindEvaluator>> = {
  string: (node) => (typeof node.value === 'string' ? node.value : UNRESOLVED),
  nowdoc: (node) => (typeof node.value === 'string' ? node.value : UNRESOLVED),
  encapsed: evalEncapsed,
  number: (node) => {
    const n = numberLiteral(String(node.value));
    return n === null ? UNRESOLVED : n;
  },
  boolean: (node) => node.value === true,
  nullkeyword: () => null,
  magic: evalMagic,
  name: evalConstant,
  constref: evalConstant,
  bin: evalBinary,
  unary: evalUnary,
  cast: evalCast,
  retif: evalTernary,
  array: evalArray,
  call: evalCall,
  staticlookup: evalStaticLookup,
};

/**
 * The static value of expression `node` in `scope`, or UNRESOLVED when it depends on run time.
 * Without `symbols`, a symbol-less evaluator: literals, magic constants, dirname(), concatenation,
 * built-in constants. With `symbols`, constants and class constants defined in the scanned files resolve too; without,
 * only the built-in constants do. Nesting deeper than 200 levels is UNRESOLVED.
 */
export function evaluateStatic(node: PhpNode, scope: PhpScope, symbols?: PhpSymbols, depth = 0): PhpValue | Unresolved {
  if (depth > 200) return UNRESOLVED;
  const evaluator = Object.hasOwn(EVALUATORS, node.kind) ? EVALUATORS[node.kind] : undefined;
  if (evaluator === undefined) return UNRESOLVED;
  const ev = (n: unknown): PhpValue | Unresolved => (isNode(n) ? evaluateStatic(n, scope, symbols, depth + 1) : UNRESOLVED);
  return evaluator(node, { scope, symbols, ev });
}

/**
 * Walks an AST keeping the PHP scope (namespace, `use` imports, enclosing class) of every node.
 * `visit` sees each node with the scope it is in; a class node sees the scope with its own name as
 * className.
 */
export function walkScoped(ast: PhpNode, start: PhpScope, visit: (node: PhpNode, scope: PhpScope, parent: PhpNode | null) => void): void {
  const walk = (node: PhpNode, scope: PhpScope, parent: PhpNode | null): void => {
    let inner = scope;
    if (node.kind === 'namespace') {
      inner = { ...scope, namespace: String(node.name ?? '').replace(/^\\/, ''), uses: new Map(), constUses: new Map(), className: null };
    } else if (['class', 'interface', 'trait', 'enum'].includes(node.kind)) {
      const n = nodeName(node.name);
      if (n !== null) inner = { ...scope, className: scope.namespace === '' ? n : `${scope.namespace}\\${n}` };
    }
    visit(node, inner, parent);
    if (node.kind === 'usegroup') {
      const prefix = typeof node.name === 'string' && node.name !== '' ? `${node.name.replace(/^\\/, '')}\\` : '';
      for (const item of (node.items as PhpNode[] | undefined) ?? []) {
        const type = (item.type ?? node.type) as string | null;
        const full = `${prefix}${String(item.name).replace(/^\\/, '')}`;
        const alias = nodeName(item.alias) ?? full.slice(full.lastIndexOf('\\') + 1);
        if (type === 'const') scope.constUses.set(alias, full);
        else if (type === null || type === undefined) scope.uses.set(alias.toLowerCase(), full);
      }
    }
    const childScope = inner;
    for (const key of Object.keys(node)) {
      if (key === 'loc' || key === 'leadingComments' || key === 'trailingComments') continue;
      const value = node[key];
      if (Array.isArray(value)) {
        for (const child of value) if (isNode(child)) walk(child, childScope, node);
      } else if (isNode(value)) walk(value, childScope, node);
    }
    // A `namespace X;` statement (not braced) in php-parser holds the rest of the file as children,
    // so its scope ends with it.
  };
  walk(ast, start, null);
}
