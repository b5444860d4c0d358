/**
 * Parsing PHP for the codemod: php-parser 3.7.0 with positions, plus a token table with byte offsets.
 *
 * Text is handled as a "binary" string: each byte of the file is one UTF-16 code unit (latin1
 * decoding), so offsets are byte offsets, splicing never re-encodes anything, and a BOM, invalid UTF-8
 * or CRLF line endings come back out byte for byte.
 */
// php-parser ships CommonJS with its own types.d.ts; Node and the package bundler both see `Engine` as a named export.
import { Engine as PhpParserEngine } from 'php-parser';

import { PhpSyntaxError } from './php-files.ts';

export { DEFAULT_EXCLUDED_DIRS, PHP_EXTENSIONS, PhpSyntaxError } from './php-files.ts';

/** A php-parser AST node as this codemod reads it (only the fields it uses are typed). */
export interface PhpNode {
  kind: string;
  loc?: { start: { line: number; column: number; offset: number }; end: { line: number; column: number; offset: number } } | null;
  [key: string]: unknown;
}

/** One lexer token with its byte range in the file. `type` is the token name (T_STRING) or the character itself. */
export interface Token {
  type: string;
  text: string;
  /** Byte offset of the first byte. */
  start: number;
  /** Byte offset just past the last byte. */
  end: number;
}

/** A parsed file: the AST (program node) and the tokens, which cover the text without gaps. */
export interface ParsedSource {
  ast: PhpNode;
  tokens: Token[];
}

/** Parser options of the codemod. */
export interface ParseOptions {
  /** Whether `<?` opens PHP code (php.ini short_open_tag). Default false, as in php.ini-production. */
  shortOpenTag?: boolean;
}

function engine(options: ParseOptions) {
  return new PhpParserEngine({
    // php8 mode, newest grammar the package knows (8.3 covers enums, readonly, match, attributes,
    // first-class callables, named arguments, typed class constants); errors are errors, not recovered.
    parser: { php8: true, version: '8.3', suppressErrors: false, extractDoc: true },
    ast: { withPositions: true, withSource: false },
    lexer: { short_tags: options.shortOpenTag === true, asp_tags: false },
  });
}

/** The parser's error as a PhpSyntaxError (message's first line, and the line when known). */
function syntaxError(err: unknown): PhpSyntaxError {
  const message = (err as Error).message ?? String(err);
  const line = (err as { lineNumber?: number }).lineNumber ?? Number(/ line (\d+)/.exec(message)?.[1] ?? NaN);
  return new PhpSyntaxError(message.split('\n')[0] ?? 'syntax error', Number.isInteger(line) ? line : undefined);
}

/**
 * Parses `text` (a binary string) into an AST only, with positions: for readers that splice nothing
 * (the audit's run-time settings). Same engine and options as parsePhp.
 * @throws PhpSyntaxError when php-parser rejects the file.
 */
export function parsePhpAst(text: string, fileName: string, options: ParseOptions = {}): PhpNode {
  try {
    return engine(options).parseCode(text, fileName) as unknown as PhpNode;
  } catch (err) {
    throw syntaxError(err);
  }
}

/**
 * Parses `text` (a binary string, see the module comment) into an AST and a token table.
 * @throws PhpSyntaxError when php-parser rejects the file, or when its tokens do not cover the text
 *   exactly (the offsets would then be wrong, so nothing may be spliced).
 */
export function parsePhp(text: string, fileName: string, options: ParseOptions = {}): ParsedSource {
  const e = engine(options);
  let ast: PhpNode;
  let raw: ReturnType<typeof e.tokenGetAll>;
  try {
    ast = e.parseCode(text, fileName) as unknown as PhpNode;
    raw = e.tokenGetAll(text);
  } catch (err) {
    throw syntaxError(err);
  }
  const tokens: Token[] = [];
  let offset = 0;
  for (const t of raw as unknown as (string | [string, string, number])[]) {
    const [type, tokenText] = typeof t === 'string' ? [t, t] : [t[0], t[1]];
    tokens.push({ type, text: tokenText, start: offset, end: offset + tokenText.length });
    offset += tokenText.length;
  }
  if (offset !== text.length || tokens.map((t) => t.text).join('') !== text) {
    throw new PhpSyntaxError('the lexer tokens do not cover the file exactly', undefined);
  }
  return { ast, tokens };
}

/** Index of the token that contains byte `offset` (binary search); -1 when past the end. */
export function tokenAt(tokens: readonly Token[], offset: number): number {
  let lo = 0;
  let hi = tokens.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const t = tokens[mid]!;
    if (offset < t.start) hi = mid - 1;
    else if (offset >= t.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** Whitespace and comments: tokens that never end a statement. */
export function isTrivia(t: Token): boolean {
  return t.type === 'T_WHITESPACE' || t.type === 'T_COMMENT' || t.type === 'T_DOC_COMMENT';
}

/**
 * Byte offset just past the `)` that closes the argument list of the call whose callee ends at
 * `calleeEnd`. php-parser's own `loc.end` of a call is not used: when the call is a whole statement
 * it takes in the `;` and any spaces before it (php-parser 3.7.0; glayzzle/php-parser#264, #239;
 * shared case BUG-27).
 * @throws Error when no balanced argument list follows (cannot happen for a parsed call).
 */
export function callEnd(tokens: readonly Token[], calleeEnd: number): number {
  let i = tokenAt(tokens, calleeEnd);
  while (i >= 0 && i < tokens.length && isTrivia(tokens[i]!)) i++;
  if (i < 0 || tokens[i]?.type !== '(') throw new Error(`no argument list at byte ${calleeEnd}`);
  let depth = 0;
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === '(') depth++;
    else if (t.type === ')') {
      depth--;
      if (depth === 0) return t.end;
    }
  }
  throw new Error(`unbalanced argument list at byte ${calleeEnd}`);
}

/**
 * The end of the statement whose expression ends at `exprEnd`: just past its `;`, or at the `?>`
 * that closes it (PHP lets a closing tag end a statement; the tag is kept).
 * @returns the byte offset, and whether a `;` was consumed.
 */
export function statementEnd(tokens: readonly Token[], exprEnd: number): { end: number; semicolon: boolean } {
  let i = tokenAt(tokens, exprEnd);
  while (i >= 0 && i < tokens.length && isTrivia(tokens[i]!)) i++;
  const t = i >= 0 ? tokens[i] : undefined;
  if (t?.type === ';') return { end: t.end, semicolon: true };
  if (t?.type === 'T_CLOSE_TAG') return { end: exprEnd, semicolon: false };
  if (t === undefined) return { end: exprEnd, semicolon: false };
  throw new Error(`no end of statement at byte ${exprEnd}`);
}

/** 1-based line of byte `offset`. */
export function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
