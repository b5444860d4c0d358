/**
 * Which function a call names, as PHP resolves it: global or not, through namespaces, `use function`
 * and the file's own declarations. Without php-parser itself (types only), so the audit can load it
 * at start-up.
 */
import type { PhpNode } from './source.ts';

/** Where a node sits: its parent chain (php-ast.ts WalkContext). */
interface ParentChain {
  node: PhpNode;
  parent: ParentChain | null;
}

function isNode(value: unknown): value is PhpNode {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string';
}

/** Calls `fn` with each child node of `node`, in source order (not its comments). */
function forEachChild(node: PhpNode, fn: (child: PhpNode) => void): void {
  for (const key of Object.keys(node)) {
    if (key === 'loc' || key === 'leadingComments' || key === 'trailingComments') continue;
    const value = node[key];
    if (Array.isArray(value)) {
      for (const child of value) if (isNode(child)) fn(child);
    } else if (isNode(value)) fn(value);
  }
}

/** Lower-cased global function name of a callee, or null when it is not a plain (global) name. */
export function functionName(what: PhpNode): string | null {
  if (what.kind !== 'name' || typeof what.name !== 'string') return null;
  let name = what.name;
  if (name.startsWith('\\')) name = name.slice(1);
  if (name.includes('\\')) return null;
  return name.toLowerCase();
}

/**
 * Lower-cased name of the global function a call's callee names, or null when it names another
 * function: a qualified name (`Foo\ini_set`), `namespace\ini_set` inside a namespace, or an
 * unqualified name that the enclosing namespace (or file) maps elsewhere, through `use function
 * Foo\ini_set;` / `use function Foo\bar as ini_set;`, or by declaring `function ini_set()` itself
 * in this file (PHP tries `NS\ini_set` before the global function: "Name resolution rules",
 * https://www.php.net/manual/en/language.namespaces.rules.php). A function of that name declared in
 * the namespace by another file is not seen. An alias of a global function
 * (`use function session_save_path as save_path;`) gives that function's name.
 */
export function globalFunctionName(what: PhpNode, parent: ParentChain | null): string | null {
  let scope: PhpNode | null = null;
  for (let c = parent; c !== null; c = c.parent) {
    if (c.node.kind === 'namespace' || c.node.kind === 'program') {
      scope = c.node;
      break;
    }
  }
  return globalFunctionNameIn(what, scope);
}

/**
 * globalFunctionName with the enclosing `namespace` node (or the `program` node of a file without
 * one) given directly; null `scope`: the name is taken as written.
 */
export function globalFunctionNameIn(what: PhpNode, scope: PhpNode | null): string | null {
  const name = functionName(what);
  if (name === null) return null;
  const resolution = what.resolution;
  if (resolution === 'fqn') return name;
  if (scope === null) return name;
  const namespace = scope.kind === 'namespace' ? namespaceName(scope) : '';
  if (resolution === 'rn') return namespace === '' ? name : null;
  const target = scopeFunctions(scope, namespace).get(name);
  if (target === undefined) return name;
  return target.includes('\\') ? null : target;
}

function namespaceName(node: PhpNode): string {
  const n = node.name;
  if (typeof n === 'string') return n;
  return Array.isArray(n) ? n.join('\\') : '';
}

const SCOPE_FUNCTIONS = new WeakMap<PhpNode, Map<string, string>>();

/**
 * What unqualified function names mean in a namespace (or a file without one): lower-cased name →
 * lower-cased fully qualified name, from `use function` and this file's function declarations.
 */
function scopeFunctions(scope: PhpNode, namespace: string): Map<string, string> {
  const cached = SCOPE_FUNCTIONS.get(scope);
  if (cached !== undefined) return cached;
  const map = new Map<string, string>();
  const declared = new Map<string, string>();
  const visit = (node: PhpNode, top: boolean): void => {
    if (node.kind === 'namespace' && !top) return;
    if (node.kind === 'usegroup' && node.type === 'function') {
      const prefix = typeof node.name === 'string' && node.name !== '' ? `${node.name.replace(/^\\/, '')}\\` : '';
      for (const item of (node.items as PhpNode[] | undefined) ?? []) {
        const full = `${prefix}${String(item.name).replace(/^\\/, '')}`.toLowerCase();
        const alias = identifierName(item.alias) ?? full.slice(full.lastIndexOf('\\') + 1);
        map.set(alias.toLowerCase(), full);
      }
    } else if (node.kind === 'function' && namespace !== '') {
      const n = identifierName(node.name);
      if (n !== null) declared.set(n.toLowerCase(), `${namespace}\\${n}`.toLowerCase());
    }
    if (node.kind === 'class' || node.kind === 'interface' || node.kind === 'trait' || node.kind === 'enum') return;
    forEachChild(node, (child) => visit(child, false));
  };
  visit(scope, true);
  for (const [n, full] of declared) if (!map.has(n)) map.set(n, full);
  SCOPE_FUNCTIONS.set(scope, map);
  return map;
}

/** The name of an identifier (a string, or a node with a string `name`); null otherwise. */
export function identifierName(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isNode(value) && typeof value.name === 'string') return value.name;
  return null;
}

/**
 * How code at `parent` must write a call of the global function `name` (lower case) so that PHP calls
 * the global one: fully qualified (`\\ini_get`) inside a namespace, where an unqualified name is
 * tried as `NS\\name` first and that function may be declared by any file of the app ("Using
 * namespaces: fallback to global function", https://www.php.net/manual/en/language.namespaces.fallback.php),
 * or when a `use function` of the file maps the name elsewhere; plain (`ini_get`) in global code,
 * where it can name nothing else.
 */
export function globalCallName(name: string, parent: ParentChain | null): string {
  let scope: PhpNode | null = null;
  for (let c = parent; c !== null; c = c.parent) {
    if (c.node.kind === 'namespace' || c.node.kind === 'program') {
      scope = c.node;
      break;
    }
  }
  if (scope === null || scope.kind === 'namespace') return `\\${name}`;
  return globalFunctionNameIn({ kind: 'name', name, resolution: 'uqn' }, scope) === name ? name : `\\${name}`;
}

/** The functions that call a callable given as their first argument, with the others as its arguments. */
export const CALLABLE_CALLERS: ReadonlySet<string> = new Set(['call_user_func', 'call_user_func_array']);

/**
 * The global function a `call_user_func('f', ...)` / `call_user_func_array('f', [...])` calls
 * through a callable string, and the arguments it gets: the one home of that reading, for codemod
 * php's rule `string-callable` and audit `--app`. A callable string is always a fully qualified name
 * (namespaces and `use function` do not apply; a leading `\` is allowed: "Callables",
 * https://www.php.net/manual/en/language.types.callable.php). call_user_func passes its other
 * arguments on as they are (named ones too); call_user_func_array passes a literal array's
 * elements, a string key as a named argument (PHP 8) and `...$x` as an unpacked argument.
 *
 * @param name the lower-case global function called (functionName / globalFunctionNameIn)
 * @param args its argument nodes
 * @returns null when `name` is neither of CALLABLE_CALLERS, or the callable is not a literal
 *   function name (a method `'A::f'`, an array, a variable); else `name` (lower case, no leading `\`)
 *   and `args`, null when they are not known (the array is computed).
 */
export function stringCallableCall(name: string, args: readonly PhpNode[]): { name: string; args: PhpNode[] | null } | null {
  if (!CALLABLE_CALLERS.has(name)) return null;
  const first = args[0];
  if (first === undefined || (first.kind !== 'string' && first.kind !== 'nowdoc') || typeof first.value !== 'string') return null;
  const fn = first.value.replace(/^\\/, '');
  if (!/^[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*$/.test(fn)) return null;
  const rest = args.slice(1);
  if (name === 'call_user_func') return { name: fn.toLowerCase(), args: rest };
  const array = rest[0];
  if (rest.length !== 1 || array?.kind !== 'array') return { name: fn.toLowerCase(), args: null };
  const out: PhpNode[] = [];
  for (const item of (array.items as PhpNode[] | undefined) ?? []) {
    if (item === null || item === undefined) return { name: fn.toLowerCase(), args: null };
    const entry = item.kind === 'entry' ? item : { kind: 'entry', key: null, value: item, unpack: false };
    const value = entry.value as PhpNode;
    if (entry.unpack === true) out.push({ kind: 'variadic', what: value, loc: value.loc });
    else if (entry.key === null || entry.key === undefined) out.push(value);
    else {
      const key = entry.key as PhpNode;
      if (key.kind !== 'string' || typeof key.value !== 'string') return { name: fn.toLowerCase(), args: null };
      out.push({ kind: 'namedargument', name: key.value, value, loc: value.loc });
    }
  }
  return { name: fn.toLowerCase(), args: out };
}

/** The name of the namespace enclosing `parent` (as written, e.g. `App\Web`); '' in global code. */
export function enclosingNamespace(parent: ParentChain | null): string {
  for (let c = parent; c !== null; c = c.parent) if (c.node.kind === 'namespace') return namespaceName(c.node);
  return '';
}

/**
 * The functions a file declares inside a namespace, as lower-cased fully qualified names
 * (`app\ini_set`): every `function` declaration (not methods or closures), at the top of the
 * namespace or in a block (`if (!function_exists(...)) { function ... }`, a function's body).
 * Another file's unqualified call of `ini_set()` in namespace `App` calls `App\ini_set` once this
 * file has been included ("Using namespaces: fallback to global function",
 * https://www.php.net/manual/en/language.namespaces.fallback.php).
 */
export function namespacedFunctionDeclarations(ast: PhpNode): string[] {
  const out: string[] = [];
  const visit = (node: PhpNode, namespace: string): void => {
    if (node.kind === 'namespace') namespace = namespaceName(node);
    else if (node.kind === 'function' && namespace !== '') {
      const n = identifierName(node.name);
      if (n !== null) out.push(`${namespace}\\${n}`.toLowerCase());
    }
    forEachChild(node, (child) => visit(child, namespace));
  };
  visit(ast, '');
  return out;
}

/**
 * Whether PHP resolves the callee `what` by the global fallback: an unqualified name inside a
 * namespace that neither a `use function` nor this file's declarations map elsewhere. PHP then calls
 * `NS\name` if a function of that name is defined at run time (by any file), else the global one
 * (https://www.php.net/manual/en/language.namespaces.fallback.php).
 */
export function resolvesByFallback(what: PhpNode, parent: ParentChain | null): boolean {
  return fallbackFunction(what, enclosingScope(parent)) !== null;
}

/** The enclosing `namespace` node of `parent`, or the `program` node of a file without one; null when neither is in the chain. */
export function enclosingScope(parent: ParentChain | null): PhpNode | null {
  for (let c = parent; c !== null; c = c.parent) if (c.node.kind === 'namespace' || c.node.kind === 'program') return c.node;
  return null;
}

/** The namespace function PHP tries before the global one for a call resolved by fallback (fallbackFunction). */
export interface FallbackFunction {
  /** The namespace as written (`App\Web`). */
  namespace: string;
  /** The function name, lower case (`ini_set`). */
  name: string;
  /** `namespace\name`: the function PHP calls instead of the global `name` when it is defined. */
  fqn: string;
}

/**
 * The function of its namespace that an unqualified call resolved by the global fallback (see
 * resolvesByFallback) calls instead of the global one once some file has defined it ("Using
 * namespaces: fallback to global function",
 * https://www.php.net/manual/en/language.namespaces.fallback.php); null when the call is resolved
 * otherwise (qualified, global code, `use function`, declared in this file).
 * @param scope the enclosing `namespace` node, or the `program` node of a file without one
 */
export function fallbackFunction(what: PhpNode, scope: PhpNode | null): FallbackFunction | null {
  const name = functionName(what);
  if (name === null || what.resolution !== 'uqn' || scope === null || scope.kind !== 'namespace') return null;
  const namespace = namespaceName(scope);
  if (namespace === '' || scopeFunctions(scope, namespace).has(name)) return null;
  return { namespace, name, fqn: `${namespace}\\${name}` };
}

/**
 * Records the functions `file` declares inside a namespace (namespacedFunctionDeclarations) in
 * `declared` (lower-cased fully qualified name → the first file declaring it), for declaringFile.
 */
export function addNamespacedFunctions(declared: Map<string, string>, ast: PhpNode, file: string): void {
  for (const fqn of namespacedFunctionDeclarations(ast)) if (!declared.has(fqn)) declared.set(fqn, file);
}

/**
 * The one cross-file rule of the fallback (codemod php's namespace-function-elsewhere, audit --app):
 * the file of the app that declares the function a fallback call may call instead of the global
 * one, or undefined when no file does (then PHP calls the global function).
 * @param declared every file's namespaced functions (addNamespacedFunctions)
 */
export function declaringFile(fallback: FallbackFunction | null, declared: ReadonlyMap<string, string> | undefined): string | undefined {
  return fallback === null ? undefined : declared?.get(fallback.fqn.toLowerCase());
}
