/**
 * Per-file analysis of the PHP codemod (pure: text in, findings, edits and include events out).
 *
 * The file is parsed (source.ts), its AST walked once in source order, and every node handed to the
 * rules that read it (rules/, one module per rule, listed in rules/index.ts): calls of global
 * functions (names are case-insensitive, as PHP function names are; a leading `\` is allowed) go to
 * the rules in order until one handles the call, other nodes to every rule of their kind. Static
 * include/require expressions become the events the registration plan (plan.ts) follows. Every
 * node also goes to the file's RedisSecretFinder (redis-secrets.ts: the Redis passwords the printed
 * diff hides), so the file is walked once for both. Then the
 * edits are checked for overlaps and the place of the handler's `require_once` is worked out
 * (insert-point.ts). docs/codemods.md ("codemod php") describes the rules.
 */
import { posix } from 'node:path';
import type { FileAnalysis, AnalyzeInput, IncludeEvent } from './model.ts';
import {
  declaringFile,
  enclosingScope,
  fallbackFunction,
  evalPath,
  exprEndOf,
  globalFunctionName,
  walk,
  type WalkContext,
} from './php-ast.ts';
import { declarationsOnly, insertPoint } from './insert-point.ts';
import { RULES } from './rules/index.ts';
import { FileContext, type Rule } from './rules/rule.ts';
import { callEnd, parsePhp, type PhpNode } from './source.ts';
import { RedisSecretFinder } from './redis-secrets.ts';

export * from './model.ts';
export { applyEdits } from '@session-migrate/common';
export { phpString, isFirstClassCallable } from './php-ast.ts';
export { analyzeSymfonyYaml } from './rules/index.ts';

/** The rules of each function, and of each node kind, in RULES order. */
const BY_FUNCTION = groupBy(RULES, (r) => r.functions ?? []);
const BY_NODE_KIND = groupBy(RULES, (r) => r.nodeKinds ?? []);

/**
 * Analyses one PHP file.
 * @throws PhpSyntaxError (from parsePhp) when the file does not parse; the caller reports it as skipped.
 */
export function analyzeFile(input: AnalyzeInput): FileAnalysis {
  const { ast, tokens } = input.parsed ?? parsePhp(input.text, input.rel, input.parse);
  const file = new FileContext(input, tokens);
  const secrets = new RedisSecretFinder();
  walk(ast, null, (node, parent) => {
    secrets.visit(node);
    if (node.kind === 'include') file.event(includeEvent(node, file));
    else if (node.kind === 'call') visitCall(node, parent, file);
    else for (const rule of BY_NODE_KIND.get(node.kind) ?? []) rule.visitNode!(node, parent, file);
  });
  dropOverlappingEdits(file);
  file.events.sort((a, b) => a.offset - b.offset);
  const ip = insertPoint(ast, tokens);
  return {
    file: input.rel,
    findings: file.findings,
    edits: file.edits,
    events: file.events,
    declarationsOnly: declarationsOnly(ast),
    insertPoint: typeof ip === 'string' ? null : ip,
    ...(typeof ip === 'string' ? { insertProblem: ip } : {}),
    eol: input.text.includes('\r\n') ? '\r\n' : '\n',
    secrets: secrets.ranges(input.text),
  };
}

/** A call of a global function: to the rules of that function, in order, until one handles it. */
function visitCall(node: PhpNode, parent: WalkContext | null, file: FileContext): void {
  const what = node.what as PhpNode;
  const name = globalFunctionName(what, parent);
  if (name === null || !BY_FUNCTION.has(name)) return;
  if (mayCallNamespaceFunction(name, what, parent, file)) return;
  const call = {
    name,
    node,
    what,
    args: node.arguments as PhpNode[],
    start: what.loc!.start.offset,
    end: callEnd(file.tokens, what.loc!.end.offset),
    parent,
  };
  for (const rule of BY_FUNCTION.get(name) ?? []) if (rule.visitCall!(call, file)) return;
}

/**
 * Whether the unqualified call of `name` at `what` may call a function of its namespace that another
 * file of the app declares (input.namespacedFunctions): PHP calls `NS\name` when it is defined at run
 * time, else the global function ("Using namespaces: fallback to global function",
 * https://www.php.net/manual/en/language.namespaces.fallback.php), which the codemod cannot know.
 * Such a call is reported (high: what it does is not known, and it may switch sessions back to
 * files) and no rule sees it.
 */
function mayCallNamespaceFunction(name: string, what: PhpNode, parent: WalkContext | null, file: FileContext): boolean {
  const fallback = fallbackFunction(what, enclosingScope(parent));
  const declaredIn = declaringFile(fallback, file.input.namespacedFunctions);
  if (fallback === null || declaredIn === undefined) return false;
  const { namespace, fqn } = fallback;
  file.find(
    what.loc!.start.offset,
    'namespace-function-elsewhere',
    'high',
    `${name}() in namespace ${namespace} may call ${fqn}(), which ${declaredIn} declares (PHP calls it instead of the global ${name}() once that file is loaded): not changed`,
    `write \\${name}() if PHP's function is meant (the codemod then handles it), or namespace\\${name}() if the app's`,
  );
  return true;
}

/**
 * An include/require: its static path (static-value.ts: literals, `__DIR__`, `__FILE__`, `dirname()`,
 * `DIRECTORY_SEPARATOR`, `.`) as the absolute paths PHP tries, in order (a relative path next to the
 * including file, then in the app directory), or null when it is computed.
 */
function includeEvent(node: PhpNode, file: FileContext): IncludeEvent {
  const { input } = file;
  const target = node.target as PhpNode;
  const start = node.loc?.start.offset ?? 0;
  const value = evalPath(target, input.absPath);
  const raw = file.text.slice(target.loc?.start.offset ?? start, exprEndOf(target, file.tokens));
  let candidates: string[] | null = null;
  if (value !== null) {
    const dir = posix.dirname(input.absPath);
    candidates = value.startsWith('/')
      ? [posix.normalize(value)]
      : [...new Set([posix.join(dir, value), posix.join(input.rootDir, value)])];
  }
  return { kind: 'include', offset: start, line: file.line(start), once: node.once === true, candidates, raw };
}

/** Sorts the edits and drops each one that overlaps an earlier one, with a finding. */
function dropOverlappingEdits(file: FileContext): void {
  const { edits } = file;
  edits.sort((a, b) => a.start - b.start);
  for (let i = 1; i < edits.length; i++) {
    if (edits[i]!.start < edits[i - 1]!.end) {
      file.find(edits[i]!.start, 'overlapping-edit', 'medium', 'two changes overlap here: the second was not made');
      edits.splice(i, 1);
      i--;
    }
  }
}

function groupBy(rules: readonly Rule[], keys: (r: Rule) => readonly string[]): Map<string, Rule[]> {
  const map = new Map<string, Rule[]>();
  for (const r of rules) for (const k of keys(r)) map.set(k, [...(map.get(k) ?? []), r]);
  return map;
}
