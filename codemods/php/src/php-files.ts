/**
 * What the PHP readers (codemod php, the audit's run-time settings) share without loading the parser:
 * which files are PHP, which directories are never entered, and the syntax error type. Kept apart from
 * source.ts so that importing these does not load php-parser (the built package loads it only when a
 * command reads PHP code).
 */
import { spawnSync } from 'node:child_process';

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

/** `php -l` could not be run (no such binary, a timeout): `message` says why, without the text linted. */
export class PhpLintUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PhpLintUnavailable';
  }
}

/**
 * `php -l` on a text (binary string, one char per byte) through stdin, with `-n` so no ini file or
 * extension changes the result: PHP's own verdict on a file php-parser refuses (php-parser 3.7.0
 * rejects some valid PHP, e.g. `declare(ticks=1) statement;`). Shared by codemod php and audit --app.
 * @returns null when the syntax is valid, else PHP's first error line
 * @throws PhpLintUnavailable when `php` cannot be run
 */
export function lintPhpText(php: string, text: string, shortOpenTag: boolean): string | null {
  const r = spawnSync(php, ['-n', '-d', `short_open_tag=${shortOpenTag ? 1 : 0}`, '-d', 'display_errors=stderr', '-l'], {
    input: Buffer.from(text, 'latin1'),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.error !== undefined)
    throw new PhpLintUnavailable(`cannot run ${php} -l: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
  if (r.status === 0) return null;
  const out = `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /error/i.test(l));
  return (out ?? `exit status ${r.status}`).replace(/^PHP\s+/, '').replace(/ in Standard input code/, '');
}
