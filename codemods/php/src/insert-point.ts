/**
 * Where in a file the `require_once` of the handler bootstrap goes (after the open tag, after
 * `declare(...)` and `namespace ...;`, never before a `#!` line), and whether a file is only
 * declarations (then it is not an entry point). Used by analyze.ts for every file; index.ts writes
 * the require at the point of the files plan.ts picks.
 */
import { tokenAt, type PhpNode, type Token } from './source.ts';
import type { InsertPoint } from './model.ts';

const DECLARATION_KINDS = new Set([
  'class',
  'interface',
  'trait',
  'enum',
  'function',
  'usegroup',
  'useitem',
  'constantstatement',
  'noop',
  'declare',
]);

/** True when the file has only declarations at the top level (classes, functions, use, const): it is not an entry point. */
export function declarationsOnly(ast: PhpNode): boolean {
  const check = (nodes: PhpNode[]): boolean =>
    nodes.every((n) => {
      if (n.kind === 'namespace') return check(n.children as PhpNode[]);
      if (n.kind === 'inline') return /^\s*$/.test(String(n.raw ?? n.value ?? ''));
      if (n.kind === 'declare') return ((n.children as PhpNode[] | undefined) ?? []).length === 0 || check(n.children as PhpNode[]);
      return DECLARATION_KINDS.has(n.kind);
    });
  return check(ast.children as PhpNode[]);
}

/** Where the handler require goes; a string explains why it cannot go anywhere. */
export function insertPoint(ast: PhpNode, tokens: readonly Token[]): InsertPoint | string {
  const first = tokens[0];
  if (first === undefined) return 'the file is empty';
  let openIndex = 0;
  if (first.type === 'T_INLINE_HTML') {
    // The CLI skips a `#!` line at byte 0 (php_execute_script / CG(skip_shebang)): nothing may go
    // before it, or the script prints it and `./script.php` stops working.
    const shebang = /^#![^\n]*\n/.exec(first.text)?.[0];
    if (first.text === '\xef\xbb\xbf' && tokens[1]?.type === 'T_OPEN_TAG') openIndex = 1;
    else if (shebang !== undefined && shebang.length === first.text.length && tokens[1]?.type === 'T_OPEN_TAG') openIndex = 1;
    else if (shebang !== undefined) return { offset: shebang.length, style: 'php-block' };
    else return { offset: first.text.startsWith('\xef\xbb\xbf') ? 3 : 0, style: 'php-block' };
  }
  const open = tokens[openIndex]!;
  if (open.type === 'T_OPEN_TAG_WITH_ECHO') return { offset: open.start, style: 'php-block' };
  if (open.type !== 'T_OPEN_TAG') return 'the file does not start with PHP code';
  let point: InsertPoint = {
    offset: open.end,
    style: /\n$/.test(open.text) ? 'line' : /\s$/.test(open.text) ? 'inline' : 'inline-nospace',
  };
  for (const stmt of ast.children as PhpNode[]) {
    // The `#!` line before the open tag is an inline node of its own: not a statement to stop at.
    if (stmt.kind === 'inline' && (stmt.loc?.end.offset ?? Infinity) <= open.start) continue;
    if (stmt.kind === 'declare' && ((stmt.children as PhpNode[] | undefined) ?? []).length === 0) {
      const end = terminator(tokens, stmt.loc!.start.offset, [';']);
      if (end === null) return 'a declare() statement without `;`';
      point = { offset: end, style: 'after-statement' };
      continue;
    }
    if (stmt.kind === 'namespace') {
      const end = terminator(tokens, stmt.loc!.start.offset, [';', '{']);
      if (end === null) return 'a namespace statement without `;` or `{`';
      point = { offset: end, style: 'after-statement' };
      const next = tokens[tokenAt(tokens, end)];
      const indent = next?.type === 'T_WHITESPACE' ? /\n([ \t]*)$/.exec(next.text)?.[1] : undefined;
      if (indent !== undefined && indent !== '') point.indent = indent;
    }
    break;
  }
  return point;
}

/** Offset just past the first of `types` at or after `from`, skipping nested parentheses. */
function terminator(tokens: readonly Token[], from: number, types: string[]): number | null {
  let depth = 0;
  for (let i = Math.max(0, tokenAt(tokens, from)); i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === '(') depth++;
    else if (t.type === ')') depth--;
    else if (depth === 0 && types.includes(t.type)) return t.end;
  }
  return null;
}
