/**
 * Option spellings. yargs (yargs-parser 22) is the only parser of the command line: every value a
 * command reads comes from its parsed result. yargs reads each option in several spellings, all the
 * same option: kebab-case and camelCase (`--dry-run`, `--dryRun`: camel-case-expansion), a value
 * after `=` or as the next word (`--key-file=F`, `--key-file F`), `--no-<option>` (boolean-negation),
 * and `true`/`false` after a boolean (`--dry-run false`). Unknown names are refused by `.strict()`.
 *
 * Some spellings yargs accepts but resolves silently, in a way that would turn a mistake into another
 * meaning; its parsed result no longer shows them, so they are refused here, from the words as typed,
 * against the option table yargs built for the command being run (names, aliases, types: nothing is
 * listed by hand):
 * - a boolean given a value other than true/false after `=`: yargs reads `--dry-run=yes` as false;
 * - an option given twice (`--dry-run --no-dry-run`, `--key-file a --keyFile b`): yargs keeps the
 *   last boolean and makes an array of the rest; only array options (`--docroot`) may repeat;
 * - `--no-<option>` of an option that is not a boolean (`--no-key-file` would be `false`);
 * - a string or number option given without a value (`--plan --dry-run`, `--out` last): yargs gives
 *   '' or undefined, and the command silently used its default or ignored the option; a value that
 *   is empty on purpose is still one (`--scan-dir=`, `--scan-dir ""`: the command judges it);
 * - a number option whose value is not a number (yargs gives NaN), an array option with no value;
 * - a number option written other than in plain decimal (`0x10`, `1e3`, `0b10`, ` 16`, `+16`): yargs
 *   gives it to Number() (`--retries 0x10` is 16); it is made NaN, so the command's own range check
 *   refuses it with the option's one-line error ("--retries must be a whole number from 0 to 100, digits
 *   only": checkWholeNumber of @session-migrate/common);
 * - words after `--`, which yargs' strict mode lets through and no command reads;
 * - another case (`--DRY-RUN`): yargs sets the camelCase key but not the kebab-case one;
 * - a positional argument spelled as an option (`codemod php --dir x`): yargs ignores it when the
 *   word is there too.
 * (yargs-parser lib/yargs-parser.js: the `--foo=bar` branch, processValue() for booleans, setKey()
 * for duplicates.)
 */
import { Parser } from 'yargs/helpers';
import { UserFacingError, printable } from '@session-migrate/common';

/** The part of yargs' `getOptions()` the checks read. */
export interface OptionTable {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
  array: string[];
  number: string[];
  string: string[];
  count?: string[];
}

/**
 * The option table of the command being parsed: yargs passes its instance to a middleware as the
 * second argument (yargs lib/middleware.js applyMiddleware), whose getOptions() has the options the
 * command's builder declared (@types/yargs does not type that argument).
 */
export function optionTableOf(y: unknown): OptionTable {
  const get = (y as { getOptions?: () => OptionTable } | undefined)?.getOptions;
  if (typeof get !== 'function') throw new Error('yargs did not pass its instance to the middleware');
  return get.call(y);
}

/**
 * The positional argument names of the command being parsed (`dir` of `codemod php <dir>`, `action` of
 * `audit [action]`), from the command strings yargs keeps in its context (yargs lib/command.js
 * fullCommands). yargs also accepts them as options (`--dir x`), and then ignores the option when the
 * word is given too.
 */
export function positionalsOf(y: unknown): string[] {
  const internal = (
    y as { getInternalMethods?: () => { getContext?: () => { fullCommands?: unknown } } } | undefined
  )?.getInternalMethods?.();
  const full = internal?.getContext?.().fullCommands;
  if (!Array.isArray(full)) return [];
  return full.flatMap((c) => (typeof c === 'string' ? [...c.matchAll(/[<[]([A-Za-z][\w-]*)(?:\.\.)?[>\]]/g)].map((m) => m[1]!) : []));
}

/**
 * yargs' message for a missing positional argument ("Not enough non-option arguments: got 0, need at
 * least 1", yargs lib/validation.js positionalCount) names no argument; this names the ones missing,
 * from the usage line yargs set for the command being parsed (`$0 codemod php <dir>`, yargs
 * lib/command.js), in the words of yargs' message for a missing option ("Missing required argument:
 * out"). yargs' "Unknown argument(s): a, b" (strict mode) gets the dashes of each name typed as an
 * option (namedAsTyped). Any other message is returned as it is.
 * @param usage the third argument of yargs' fail handler (its usage instance; getUsage() lists
 *   [usage line, description] pairs, untyped in @types/yargs)
 * @param argv the words of the command line, as typed
 */
export function describeUsageFailure(message: string, usage: unknown, argv: readonly string[] = []): string {
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown !== null) {
    // yargs lists a kebab-case name and its camelCase expansion both (`from-collectd, fromCollectd`).
    const names = unknown[1]!.split(', ');
    const shown = names.filter((n) => !names.some((o) => o !== n && Parser.camelCase(o) === n));
    return `Unknown argument${shown.length > 1 ? 's' : ''}: ${namedAsTyped(shown, argv)}`;
  }
  const m = /^Not enough non-option arguments: got (\d+), need at least \d+$/.exec(message);
  if (m === null) return message;
  const lines = (usage as { getUsage?: () => unknown } | undefined)?.getUsage?.();
  const line = Array.isArray(lines) && Array.isArray(lines[0]) ? lines[0][0] : undefined;
  if (typeof line !== 'string') return message;
  const words = line.replace(/^\$0\s+/, '');
  const missing = [...words.matchAll(/<([A-Za-z][\w-]*)(?:\.\.)?>/g)].map((r) => `<${r[1]!}>`).slice(Number(m[1]));
  if (missing.length === 0) return message;
  return `Missing required argument${missing.length > 1 ? 's' : ''}: ${missing.join(', ')} (session-migrate ${words})`;
}

/**
 * yargs names an unknown option without its dashes (`Unknown argument: plan` for a mistyped
 * `--plan`), which reads as if a command word were refused: each name given as an option in `argv`
 * (`--name`, `--name=...`, `-n`) is written with its dashes; a stray word stays as it is.
 */
function namedAsTyped(names: readonly string[], argv: readonly string[]): string {
  return names
    .map((name) => {
      const dashed = argv.find((w) => w === `--${name}` || w.startsWith(`--${name}=`) || w === `-${name}` || w.startsWith(`-${name}=`));
      return dashed === undefined ? name : dashed.replace(/=.*$/s, '');
    })
    .join(', ');
}

/**
 * A word yargs does not take as the value of the option before it: what starts with '-', unless it is
 * a negative number (yargs-parser lib/yargs-parser.js, the `--foo` branch and its `negative` pattern).
 */
const NEGATIVE_NUMBER = /^-([0-9]+(\.[0-9]+)?|\.[0-9]+)$/;
function takenAsValue(word: string | undefined): boolean {
  return word !== undefined && (!word.startsWith('-') || NEGATIVE_NUMBER.test(word));
}

/** A table of names to the canonical (declared) option key: the key, its camelCase form and its declared aliases. */
function namesOf(table: OptionTable): Map<string, string> {
  const names = new Map<string, string>();
  for (const key of Object.keys(table.key)) {
    names.set(key, key);
    names.set(Parser.camelCase(key), key);
    for (const a of table.alias[key] ?? []) {
      names.set(a, key);
      names.set(Parser.camelCase(a), key);
    }
  }
  return names;
}

/**
 * How a number option must be written: plain decimal digits, an optional '-' and fraction (yargs
 * passes the text to Number(), which also reads hex, binary, octal, exponents and blanks).
 */
const PLAIN_DECIMAL = /^-?(?:\d+(?:\.\d+)?|\.\d+)$/;

/**
 * Checks the option words of `tokens` (the command line as typed, up to `--`) against `table`.
 * @returns the number options (declared keys) whose value is not written in plain decimal
 *   (PLAIN_DECIMAL); the caller makes them NaN (notDecimal) so the command's range check refuses them.
 * @throws UserFacingError naming the option in its kebab-case (declared) spelling.
 */
export function checkSpellings(tokens: readonly string[], table: OptionTable, positionals: readonly string[] = []): Set<string> {
  const notDecimal = new Set<string>();
  const names = namesOf(table);
  const has = (list: string[] | undefined, key: string) => (list ?? []).includes(key);
  const seen = new Set<string>();
  for (const [i, token] of tokens.entries()) {
    if (token === '--') {
      // yargs passes what follows `--` on as positional words that no command reads, unchecked.
      if (i + 1 < tokens.length) throw new UserFacingError(`no command takes arguments after "--" (got "${printable(tokens[i + 1]!)}")`);
      break;
    }
    const m = /^--(?!-)([^=]+?)(?:=([\s\S]*))?$/.exec(token);
    if (m === null) continue;
    let name = m[1]!;
    const value = m[2];
    let negated = false;
    if (!names.has(name) && name.startsWith('no-') && (names.has(name.slice(3)) || names.has(Parser.camelCase(name.slice(3))))) {
      name = name.slice(3);
      negated = true;
    }
    const key = names.get(name);
    if (key === undefined) {
      // yargs-parser lower-cases an all-upper-case name before camelCase (`--DRY-RUN` sets dryRun but
      // not dry-run, and not as a boolean): another meaning, so refused. Anything else unknown is
      // refused by .strict().
      const near = names.get(Parser.camelCase(name));
      if (near !== undefined) throw new UserFacingError(`--${printable(name)} is not an option: write --${near}`);
      continue;
    }
    if (positionals.includes(key)) throw new UserFacingError(`<${key}> is a word of the command, not an option: give it without --${key}`);
    const isBoolean = has(table.boolean, key);
    if (negated && !isBoolean) throw new UserFacingError(`--${key} takes a value; --no-${key} is not an option`);
    if (negated && value !== undefined) throw new UserFacingError(`--no-${key} takes no value (got "${printable(value)}")`);
    if (isBoolean && value !== undefined && value !== 'true' && value !== 'false') {
      throw new UserFacingError(`--${key} takes no value, or =true / =false (got "${printable(value)}")`);
    }
    if (!isBoolean && !negated && value === undefined && !has(table.array, key) && !has(table.count, key) && !takenAsValue(tokens[i + 1])) {
      // A lone "-" (stdin/stdout by convention) is taken by yargs as a positional word, not as the value.
      if (tokens[i + 1] === '-')
        throw new UserFacingError(`--${key} needs a value: "-" (standard input or output) is not supported, give a file path or value`);
      throw new UserFacingError(`--${key} needs a value`);
    }
    // yargs reads an empty number (`--workers=`, `--workers ""`) as 0.
    if (has(table.number, key) && !negated && (value ?? tokens[i + 1]) === '') throw new UserFacingError(`--${key} must be a number`);
    const text = value ?? tokens[i + 1];
    if (has(table.number, key) && !negated && text !== undefined && !PLAIN_DECIMAL.test(text) && !Number.isNaN(Number(text)))
      notDecimal.add(key);
    if (seen.has(key) && !has(table.array, key)) throw new UserFacingError(`--${key} given more than once`);
    seen.add(key);
  }
  return notDecimal;
}

/**
 * Makes the number options `keys` NaN in yargs' result, in every spelling it set (the key, its
 * camelCase form and aliases): a value written in hex, binary or with an exponent is not taken as the
 * number Number() reads, and the command's own check (checkWholeNumber: "--retries must be a whole
 * number from 0 to 100, digits only") refuses it. checkValues lets these NaN through to that check.
 */
export function notDecimal(args: Record<string, unknown>, table: OptionTable, keys: ReadonlySet<string>): void {
  for (const key of keys) {
    for (const name of [key, Parser.camelCase(key), ...(table.alias[key] ?? [])]) if (name in args) args[name] = Number.NaN;
  }
}

/**
 * Checks parsed values yargs accepted without complaint: a number option that is not a number, an
 * array option given with no value. @throws UserFacingError.
 */
export function checkValues(args: Record<string, unknown>, table: OptionTable, notDecimal: ReadonlySet<string> = new Set()): void {
  for (const key of table.number) {
    const v = args[key];
    if (v === undefined || notDecimal.has(key)) continue;
    if (typeof v !== 'number' || Number.isNaN(v)) throw new UserFacingError(`--${key} must be a number`);
  }
  for (const key of table.array) {
    const v = args[key];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.length === 0) throw new UserFacingError(`--${key} needs a value`);
    if (v.some((x) => typeof x !== 'string' && typeof x !== 'number'))
      throw new UserFacingError(`--${key} takes values; --no-${key} is not an option`);
  }
}
