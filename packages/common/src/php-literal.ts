/**
 * PHP literals for code session-migrate writes (the generated bootstrap, codemod php's edits), in
 * one place.
 */

/**
 * A PHP single-quoted string literal of `value`: only `\` and `'` need escaping there (PHP manual,
 * "Strings", single quoted: https://www.php.net/manual/en/language.types.string.php#language.types.string.syntax.single).
 * The result is exact for any value: `\\` and `\'` are the only escapes PHP reads in such a literal.
 */
export function phpString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
