/**
 * The key provider options every command that needs a key shares (docs/keys.md): exactly one of
 * `--key-file`, `--key-ring`, `--key-env`, `--key-command` (with `--key-command-timeout`). The key
 * itself is never an option value. Register with keyProviderOptions(), read with keyProviderFromArgs().
 */
import { existsSync } from 'node:fs';
import type { Argv } from 'yargs';
import { UserFacingError } from '@session-migrate/common';
import { DEFAULT_KEY_COMMAND_TIMEOUT_SECONDS, type KeyProvider } from '@session-migrate/envelope';
import { checkOptionNeeds } from './option-needs.ts';

/** The parsed option values (yargs names). */
export interface KeyProviderArgs {
  'key-file'?: string | undefined;
  'key-ring'?: string | undefined;
  'key-env'?: string | undefined;
  'key-command'?: string | undefined;
  'key-command-timeout'?: number | undefined;
}

/**
 * A word that may be a 32-byte key in one of the spellings people paste: 44 characters of standard
 * padded base64, 43 unpadded, or URL-safe base64 (RFC 4648 sections 4 and 5), bounded by anything
 * that is not a base64 character (so `sha256-<44>` or a longer token is not one). Unpadded and URL-safe
 * words count only when they mix upper and lower case letters and digits (or, without a digit, hold
 * at least five letters of each case), as random base64 does and a path or a word seldom does.
 */
const KEY_WORD = /(?<![A-Za-z0-9+/=_-])(?:[A-Za-z0-9+/]{43}=|[A-Za-z0-9+/_-]{43}=?)(?![A-Za-z0-9+/=_-])/g;
/**
 * 64 hex digits (a 32-byte key as `openssl rand -hex 32` prints it) standing alone: as a word, an
 * option's `=value`, a quoted word or a path component; not inside braces (`prefix{<64 hex>}` is a
 * Redis key name's digest), nor after ':' or '@' (a digest such as `sha256:<hex>`).
 */
const HEX_KEY_WORD = /(?<=^|[\s"'=(,/])[0-9a-fA-F]{64}(?=$|[\s"'),.;/])/g;

function isKeyWord(word: string): boolean {
  if (word.endsWith('=') && /^[A-Za-z0-9+/]{43}=$/.test(word)) return true;
  const upper = word.replace(/[^A-Z]/g, '').length;
  const lower = word.replace(/[^a-z]/g, '').length;
  // A 32-byte key in URL-safe base64 has no digit once in about 1,500 keys ((54/64)^43): then many
  // letters of both cases still tell it from a path or a word (the key-leak test met one).
  return upper > 0 && lower > 0 && (/[0-9]/.test(word) || (upper >= 5 && lower >= 5));
}

/** The options whose value is a path or a variable name instead of the key (keyProviderOptions). */
export const PATH_OR_NAME_KEY_OPTIONS: ReadonlySet<string> = new Set(['--key-file', '--key-ring', '--key-env']);

/** A whole word of exactly a key's length in base64 (standard, unpadded or URL-safe). */
const KEY_SHAPED_WORD = /^(?:[A-Za-z0-9+/]{43}=?|[A-Za-z0-9_-]{43})$/;

/** A padded standard-base64 key anywhere in a word, also after path characters (`/tmp/<key>`); not a `sha256-` digest. */
const EMBEDDED_PADDED_KEY = /(?<!sha(?:256|384|512)-)[A-Za-z0-9+/]{43}=(?!=)/;

/**
 * The one rule for key text on the command line (docs/keys.md, "Where keys come from"): whether
 * `text` (a word of the command line, an option's value, a `--key-command`) holds key material
 * anywhere in it, in every spelling of a 32-byte key people paste, not only the one key files accept
 * (standard padded base64, packages/envelope/src/keyring.ts):
 * - a key ring's header line (`session-migrate-keyring`);
 * - standard padded base64 anywhere, also inside a longer word such as a path made of a pasted key
 *   (`--out "$KEY"`: a standard base64 key holds '/', so its first part reads as a directory and an
 *   error naming that directory printed 22 characters of the key; `--out "/tmp/$KEY"` printed all of
 *   it and `generate iac` made directories named after it);
 * - unpadded or URL-safe base64 (KEY_WORD, isKeyWord), as a word or as a path component of 43 characters;
 * - 64 hex digits standing alone (HEX_KEY_WORD);
 * - with `keyOptionValue` (the value of --key-file, --key-ring or --key-env: a path or a name, where a
 *   pasted key goes), also a whole word of a key's length in base64 that is not an existing file
 *   (KEY_SHAPED_WORD).
 * An unpadded standard-base64 key holds '/' and reads as a path when it is a component of one: that
 * one spelling is found as a word or an option's value only.
 * The CLI refuses every word of the command line this finds before any command runs (main.ts), and
 * keyProviderFromArgs refuses key option values with it for callers that skip main().
 */
export function containsKeyText(text: string, keyOptionValue = false): boolean {
  if (text.includes('session-migrate-keyring')) return true;
  // `--option=VALUE`: the value on its own (an unpadded key holding '/' follows a '=' there).
  const option = /^(--?[A-Za-z][A-Za-z0-9-]*)=/.exec(text);
  if (option !== null && containsKeyText(text.slice(option[0].length), PATH_OR_NAME_KEY_OPTIONS.has(option[1]!))) return true;
  if ([...text.matchAll(KEY_WORD)].some((m) => isKeyWord(m[0]))) return true;
  if (EMBEDDED_PADDED_KEY.test(text)) return true;
  if (text.split(/[^A-Za-z0-9_-]/).some((part) => part.length === 43 && isKeyWord(part))) return true;
  if (text.search(HEX_KEY_WORD) >= 0) return true;
  // Where a key file's path or a variable's name belongs: a whole word shaped like a key, whatever its
  // letters (a key made by hand, such as 32 equal bytes), unless it names an existing file. Not for
  // every word: a 43-character directory name for --out is no key.
  return keyOptionValue && KEY_SHAPED_WORD.test(text.trim()) && !existsSync(text);
}

/**
 * Replaces every word of `message` that may be key material (KEY_WORD, or 64 hex digits standing
 * alone) with `<redacted>`: the CLI prints every error through this, so a key typed where a word of
 * the command line belongs (`Unknown argument: <key>`, `--json=<key>`) is not repeated on stderr
 * (docs/keys.md, "Where keys come from").
 */
export function redactKeyText(message: string): string {
  return message.replace(KEY_WORD, (w) => (isKeyWord(w) ? '<redacted>' : w)).replace(HEX_KEY_WORD, '<redacted>');
}

/** Adds the key provider options to a yargs command (none is demanded here: see keyProviderFromArgs). */
export function keyProviderOptions<T>(y: Argv<T>) {
  return y
    .option('key-file', { type: 'string', describe: 'key file or key ring file (mode 0600)' })
    .option('key-ring', { type: 'string', describe: 'key ring file (mode 0600), see keys ring init' })
    .option('key-env', { type: 'string', describe: 'NAME of an environment variable holding the base64 key or the key ring text' })
    .option('key-command', {
      type: 'string',
      describe: 'command (run with /bin/sh -c, no stdin) that prints the key or key ring, e.g. a secrets manager CLI',
    })
    .option('key-command-timeout', {
      type: 'number',
      describe: `seconds before --key-command is killed (default ${DEFAULT_KEY_COMMAND_TIMEOUT_SECONDS}); only with --key-command`,
    });
}

/**
 * The one key provider the options name.
 * @param required when false, no provider at all gives undefined (the caller falls back to a plan).
 * @throws UserFacingError when several are given, none and `required`, or `--key-command-timeout`
 *   without `--key-command`.
 */
export function keyProviderFromArgs(a: KeyProviderArgs, required: boolean): KeyProvider | undefined {
  const given: KeyProvider[] = [];
  const nonEmpty = (name: string, v: string | undefined): string | undefined => {
    if (v === undefined) return undefined;
    if (v === '') throw new UserFacingError(`--${name} cannot be empty`);
    // The CLI has refused these already (main.ts: every word of the command line); this guards the
    // command modules' other callers. A key written into the command itself (`--key-command 'echo
    // KEY'`) is a key on the command line: visible in ps, /proc/PID/cmdline and shell history. A key
    // pasted where a path or a name belongs must not be echoed back in an error message.
    if (containsKeyText(v, name !== 'key-command')) {
      throw new UserFacingError(
        name === 'key-command'
          ? '--key-command contains what looks like key material (not shown); keys never come from the command line: give a command that fetches the key (a secrets manager CLI), or use --key-file or --key-env'
          : `--${name} takes a ${name === 'key-env' ? 'variable name' : 'file path'}, and this value looks like key material (not shown); keys never come from the command line`,
      );
    }
    return v;
  };
  const file = nonEmpty('key-file', a['key-file']);
  const ring = nonEmpty('key-ring', a['key-ring']);
  const env = nonEmpty('key-env', a['key-env']);
  const command = nonEmpty('key-command', a['key-command']);
  if (file !== undefined) given.push({ kind: 'file', path: file });
  if (ring !== undefined) given.push({ kind: 'ring', path: ring });
  if (env !== undefined) given.push({ kind: 'env', name: env });
  if (command !== undefined)
    given.push({ kind: 'command', command, timeoutSeconds: a['key-command-timeout'] ?? DEFAULT_KEY_COMMAND_TIMEOUT_SECONDS });
  if (given.length > 1) throw new UserFacingError('give only one of --key-file, --key-ring, --key-env and --key-command');
  // A timeout only means something for a command: silently ignoring it would hide a mistyped option.
  checkOptionNeeds(a, ['key-command-timeout'], 'key-command');
  if (given.length === 0 && required)
    throw new UserFacingError('give the key with one of --key-file, --key-ring, --key-env or --key-command (see --help)');
  return given[0];
}
