/**
 * What the PHP readers (codemod php, the audit's run-time settings) share without loading the parser:
 * which files are PHP, which directories are never entered, and the syntax error type. Kept apart from
 * source.ts so that importing these does not load php-parser (the built package loads it only when a
 * command reads PHP code).
 */

/** Default names of directories never entered (at any depth): dependencies and VCS data. */
export const DEFAULT_EXCLUDED_DIRS: readonly string[] = ['vendor', 'node_modules', '.git'];
/** Extensions of the files read as PHP. */
export const PHP_EXTENSIONS: readonly string[] = ['.php', '.phtml', '.inc'];

/** A file php-parser cannot parse; `message` has the parser's reason and line. */
export class PhpSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number | undefined,
  ) {
    super(message);
    this.name = 'PhpSyntaxError';
  }
}
