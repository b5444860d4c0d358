/**
 * Where the tests' fixtures live: test/fixtures/ in this repository (see test/fixtures/README.md for
 * where they came from and how to regenerate them from real PHP). Tests read nothing outside the clone.
 */
import { fileURLToPath } from 'node:url';

/** Absolute path of test/fixtures/ (with a trailing separator). */
export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));
/** Known faults: `CASES_DIR/BUG-XX/...` (inputs, expected.json, confirm scripts); `tools/` holds the PHP oracle scripts. */
export const CASES_DIR = fileURLToPath(new URL('../fixtures/cases/', import.meta.url));
/** PHP ini semantics cases with the values real PHP reports, and their oracle (oracle.sh, dump.php). */
export const INI_CASES_DIR = fileURLToPath(new URL('../fixtures/ini-cases/', import.meta.url));
/** A real php-fpm run of pool php_value/php_flag/php_admin_value semantics (expected.txt). */
export const FPM_CHECK_DIR = fileURLToPath(new URL('../fixtures/reference/fpm-check/', import.meta.url));

/** A file or directory of one known fault, e.g. `caseFile('BUG-15', 'expected.json')`. */
export function caseFile(bug: string, ...path: string[]): string {
  return fileURLToPath(new URL(`../fixtures/cases/${[bug, ...path].join('/')}`, import.meta.url));
}
