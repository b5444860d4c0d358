/**
 * The PHP parser of the audit's run-time settings (`--app`, document roots), loaded on demand: it is
 * codemod php's parser (php-parser), too heavy to load on every start of the CLI, so an audit that
 * reads application code first awaits loadPhpParser(). One parser for both readers (issue 13).
 */
import type { PhpNode } from '@session-migrate/codemod-php/source';

/** Parses PHP text (a binary string, one char per byte) into an AST with positions. @throws PhpSyntaxError */
export type PhpAstParser = (text: string, fileName: string) => PhpNode;

let loaded: PhpAstParser | undefined;

/**
 * Loads the parser once (later calls return the same function). Call it before auditHost() or
 * auditIniFile() when they read application code (`apps`, or `docroots` unless `appsFromDocroots` is false).
 */
export async function loadPhpParser(): Promise<PhpAstParser> {
  if (loaded === undefined) {
    const { parsePhpAst } = await import('@session-migrate/codemod-php/source');
    loaded = (text, fileName) => parsePhpAst(text, fileName);
  }
  return loaded;
}

/**
 * The parser loaded by loadPhpParser().
 * @throws Error when it was not loaded: a programming error of the caller, not bad input.
 */
export function phpParser(): PhpAstParser {
  if (loaded === undefined)
    throw new Error('the PHP parser is not loaded: await loadPhpParser() before an audit that reads application code');
  return loaded;
}
