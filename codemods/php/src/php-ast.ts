/**
 * Helpers over php-parser's AST and tokens for the PHP codemod's rules: walking with parent
 * context, names and arguments of calls, literal and static values, and printing a PHP string.
 */
import { evaluateStatic, globalScope } from './static-value.ts';
import { isTrivia, tokenAt, type PhpNode, type Token } from './source.ts';

/** A PHP single-quoted string literal (its one home is @session-migrate/common). */
export { phpString } from '@session-migrate/common';
export {
  enclosingNamespace,
  functionName,
  globalCallName,
  namespacedFunctionDeclarations,
  resolvesByFallback,
  enclosingScope,
  fallbackFunction,
  declaringFile,
  addNamespacedFunctions,
  globalFunctionName,
  globalFunctionNameIn,
  identifierName,
} from './function-names.ts';

/** Where a node sits: its parent chain, and whether it is an element of a list (a statement list). */
export interface WalkContext {
  node: PhpNode;
  parent: WalkContext | null;
  /** The node was an element of an array (a statement list), not a single child. */
  inList: boolean;
}

/** Visits `node` and everything below it, depth first in source order; `visit` gets the parent's context. */
export function walk(
  node: PhpNode,
  parent: WalkContext | null,
  visit: (node: PhpNode, ctx: WalkContext | null) => void,
  inList = false,
): void {
  const ctx: WalkContext = { node, parent, inList };
  visit(node, parent);
  for (const key of Object.keys(node)) {
    if (key === 'loc' || key === 'leadingComments' || key === 'trailingComments') continue;
    const value = node[key];
    if (Array.isArray(value)) {
      for (const child of value) if (isNode(child)) walk(child, ctx, visit, true);
    } else if (isNode(value)) {
      walk(value, ctx, visit, false);
    }
  }
}

/** A php-parser AST node (an object with a string `kind`). */
export function isNode(value: unknown): value is PhpNode {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string';
}

/** `f(...)`: PHP 8.1 first-class callable syntax (php-parser: a single `variadicplaceholder` argument). */
export function isFirstClassCallable(args: readonly PhpNode[]): boolean {
  return args.length === 1 && args[0]!.kind === 'variadicplaceholder';
}

/** Positional argument `index`, or the named argument with one of `names`; undefined when absent. */
export function argument(args: readonly PhpNode[], index: number, ...names: string[]): PhpNode | undefined {
  const named = args.find((a) => a.kind === 'namedargument' && names.includes(String(a.name)));
  if (named !== undefined) return named.value as PhpNode;
  if (args.some((a, i) => i <= index && a.kind === 'variadic')) return { kind: 'variadic' };
  const positional = args[index];
  return positional !== undefined && positional.kind !== 'namedargument' ? positional : undefined;
}

/** The value of a literal string or number node; null when the node is computed or absent. */
export function literal(node: PhpNode | undefined): string | null {
  if (node === undefined) return null;
  if ((node.kind === 'string' || node.kind === 'nowdoc') && typeof node.value === 'string') return node.value;
  if (node.kind === 'number' && (typeof node.value === 'string' || typeof node.value === 'number')) return String(node.value);
  return null;
}

/**
 * Evaluates a static include path (static-value.ts without symbols: string literals, `__DIR__`,
 * `__FILE__`, `dirname(X[, levels])`, `DIRECTORY_SEPARATOR`, `.` concatenation). Constants and
 * variables give null. The result, a binary string, is decoded as UTF-8 for the path.
 */
export function evalPath(node: PhpNode, absPath: string): string | null {
  const v = evaluateStatic(node, globalScope(Buffer.from(absPath, 'utf8').toString('latin1')));
  return typeof v === 'string' ? Buffer.from(v, 'latin1').toString('utf8') : null;
}

/** End offset of an expression; calls end at their `)` (php-parser may include a `;` in loc.end). */
export function exprEndOf(node: PhpNode, tokens: readonly Token[]): number {
  let end = node.loc?.end.offset ?? 0;
  while (end > 0) {
    const i = tokenAt(tokens, end - 1);
    const t = i >= 0 ? tokens[i]! : undefined;
    if (t !== undefined && (isTrivia(t) || t.type === ';')) end = t.start;
    else break;
  }
  return end;
}
