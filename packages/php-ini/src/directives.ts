/**
 * The directive table and `ini_get()` semantics.
 *
 * At startup every module registers its directives (`zend_register_ini_entries_ex`, Zend/zend_ini.c):
 * when the configuration hash has a value and the directive's `on_modify` handler accepts it at
 * ZEND_INI_STAGE_STARTUP, that string is the value; otherwise the COMPILED DEFAULT stays (not an
 * earlier file's value; test/fixtures/ini-cases 41). `ini_get()` returns the stored string as the parser
 * produced it ('On' quoted stays 'On', `24m` stays `24m`), or false for a name no loaded module
 * registered (removed directives such as session.entropy_file, typos, wrong case; cases 27, 48).
 *
 * Validators reproduced (php-src 8.2 ext/session/session.c): session.name (not empty, not numeric),
 * cookie_lifetime (>= 0), sid_length (strtol whole string, 22..256), sid_bits_per_character (4..6),
 * upload_progress.freq (0..100 with %), save_handler 'user' (rejected); 8.4+ gc_probability >= 0 and
 * gc_divisor > 0 (php-src ff69f33). Unknown save/serialize handlers are accepted at startup (case 43).
 */
import { PHP82_DIRECTIVES } from './data/php82-directives.ts';
import { versionAtLeast } from './parser.ts';

/** Access bits as in Zend/zend_ini.h. */
export const PHP_INI_USER = 1;
export const PHP_INI_PERDIR = 2;
export const PHP_INI_SYSTEM = 4;
export const PHP_INI_ALL = 7;

export interface DirectiveInfo {
  name: string;
  /** True when PHP `phpVersion` (with the module loaded) registers this name. */
  exists: boolean;
  /** Module that registers it ('Core', 'session', 'standard', 'redis', 'opcache', 'cgi-fcgi', ...). */
  extension: string | null;
  /** Compiled default as ini_get() shows it ('' for a null default); null when it does not exist. */
  default: string | null;
  /** Changeable mode mask: 1 USER, 2 PERDIR, 4 SYSTEM (7 = PHP_INI_ALL). */
  access: number | null;
  /** Version that removed it (e.g. '7.1' for session.entropy_file), when known. */
  removedIn?: string;
  /** Version that added it, when known and after 7.0. */
  addedIn?: string;
  /** Version from which setting it (or the described value) emits E_DEPRECATED. */
  deprecatedIn?: string;
  /** What exactly is deprecated / what replaces a removed directive. */
  note?: string;
}

interface VersionFact {
  addedIn?: string;
  removedIn?: string;
  deprecatedIn?: string;
  note?: string;
  /** Default on other versions, where it differs: [fromVersion, default][] (latest first). */
  defaults?: Array<[string, string]>;
  ext?: string;
  access?: number;
}

/** Version history of session directives (test/fixtures/reference/php-ini-semantics.md section 8). */
const VERSION_FACTS: Record<string, VersionFact> = {
  'session.entropy_file': {
    removedIn: '7.1',
    note: 'removed by the "Session ID without hashing" RFC; use session.sid_length / session.sid_bits_per_character',
    ext: 'session',
    access: 7,
  },
  'session.entropy_length': {
    removedIn: '7.1',
    note: 'removed by the "Session ID without hashing" RFC; use session.sid_length',
    ext: 'session',
    access: 7,
  },
  'session.hash_function': {
    removedIn: '7.1',
    note: 'removed by the "Session ID without hashing" RFC; session IDs come from the CSPRNG',
    ext: 'session',
    access: 7,
  },
  'session.hash_bits_per_character': {
    removedIn: '7.1',
    note: 'removed in 7.1; replaced by session.sid_bits_per_character',
    ext: 'session',
    access: 7,
  },
  'session.bug_compat_42': { removedIn: '5.4', note: 'removed in PHP 5.4', ext: 'session', access: 7 },
  'session.bug_compat_warn': { removedIn: '5.4', note: 'removed in PHP 5.4', ext: 'session', access: 7 },
  'session.sid_length': { addedIn: '7.1', deprecatedIn: '8.4', note: 'values other than 32 are deprecated (PHP 8.4)' },
  'session.sid_bits_per_character': { addedIn: '7.1', deprecatedIn: '8.4', note: 'values other than 4 are deprecated (PHP 8.4)' },
  'session.use_only_cookies': { deprecatedIn: '8.4', note: 'disabling it is deprecated (PHP 8.4)' },
  'session.use_trans_sid': { deprecatedIn: '8.4', note: 'enabling it is deprecated (PHP 8.4)' },
  'session.referer_check': { deprecatedIn: '8.4', note: 'a non-empty value is deprecated (PHP 8.4)' },
  'session.trans_sid_tags': { addedIn: '7.1', deprecatedIn: '8.4', note: 'setting it is deprecated (PHP 8.4)' },
  'session.trans_sid_hosts': { addedIn: '7.1', deprecatedIn: '8.4', note: 'setting it is deprecated (PHP 8.4)' },
  'session.lazy_write': { addedIn: '7.0' },
  'session.cookie_samesite': { addedIn: '7.3' },
  'session.cookie_partitioned': { addedIn: '8.5', ext: 'session', access: 7, defaults: [['8.5', '0']] },
  'session.cookie_secure': {
    defaults: [
      ['7.2', '0'],
      ['0', ''],
    ],
  },
  'session.cookie_httponly': {
    defaults: [
      ['7.2', '0'],
      ['0', ''],
    ],
  },
};

/** Values the CLI SAPI forces (sapi/cli/php_cli.c: `sapi_cli_ini_defaults`, before the files). */
export const CLI_INI_DEFAULTS: Record<string, string> = { display_errors: '1' };
/** php_cli.c HARDCODED_INI: parsed after php.ini and conf.d, before `-d`. */
export const CLI_HARDCODED_INI =
  'html_errors=0\nregister_argc_argv=1\nimplicit_flush=1\noutput_buffering=0\nmax_execution_time=0\nmax_input_time=-1\n';

/** Extensions compiled into the Debian php8.2 binaries (`php -n -m`): their directives always exist. */
export const BUILTIN_EXTENSIONS = [
  'Core',
  'date',
  'filter',
  'hash',
  'json',
  'libxml',
  'openssl',
  'pcntl',
  'pcre',
  'random',
  'Reflection',
  'session',
  'sodium',
  'SPL',
  'standard',
  'zlib',
];

function cmpVersion(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
function majorMinor(v: string): string {
  const m = /^(\d+)(?:\.(\d+))?/.exec(v);
  return m ? `${m[1]}.${m[2] ?? 0}` : '8.2';
}

export interface DirectiveContext {
  /** '8.2' by default. */
  phpVersion?: string;
  /** Modules loaded (built-in + extension= lines); default BUILTIN_EXTENSIONS. */
  extensions?: Iterable<string>;
  /** 'cli' | 'cgi' | 'fpm' ...: cgi.* / fastcgi.* exist only for cgi and fpm. */
  sapi?: string;
  /** Build-specific compiled defaults (e.g. {'session.save_path': ''} for an upstream build). */
  defaults?: Record<string, string>;
}

/**
 * What PHP `phpVersion` knows about directive `name`.
 * The table is PHP 8.2's (generated from the real binary); version facts for session.* come from
 * php-src history. For other versions, directives not listed in VERSION_FACTS are assumed unchanged.
 */
export function directiveInfo(name: string, ctx: DirectiveContext | string = {}): DirectiveInfo {
  const c: DirectiveContext = typeof ctx === 'string' ? { phpVersion: ctx } : ctx;
  const version = majorMinor(c.phpVersion ?? '8.2');
  const row = PHP82_DIRECTIVES[name];
  const fact = VERSION_FACTS[name];
  let exists = row !== undefined;
  const ext = row?.[0] ?? fact?.ext ?? null;
  let def: string | null = row ? (row[1] ?? '') : null;
  const access = row?.[2] ?? fact?.access ?? null;
  if (fact?.removedIn && cmpVersion(version, fact.removedIn) >= 0) exists = false;
  else if (fact?.removedIn) exists = true;
  if (fact?.addedIn && cmpVersion(version, fact.addedIn) < 0) exists = false;
  else if (fact?.addedIn && !row) exists = true;
  if (fact?.defaults) {
    const d = fact.defaults.find(([from]) => cmpVersion(version, from) >= 0);
    if (d) def = d[1];
  }
  if (exists && ext) {
    const loaded = new Set(c.extensions ?? BUILTIN_EXTENSIONS);
    if (!loaded.has(ext) && ext !== 'Core' && ext !== 'cgi-fcgi') exists = false;
    if (ext === 'cgi-fcgi' && c.sapi !== undefined && c.sapi !== 'cgi' && c.sapi !== 'fpm') exists = false;
  }
  if (c.defaults && Object.prototype.hasOwnProperty.call(c.defaults, name)) def = c.defaults[name]!;
  const info: DirectiveInfo = { name, exists, extension: ext, default: exists ? (def ?? '') : null, access: exists ? access : null };
  if (fact?.removedIn) info.removedIn = fact.removedIn;
  if (fact?.addedIn) info.addedIn = fact.addedIn;
  if (fact?.deprecatedIn) info.deprecatedIn = fact.deprecatedIn;
  if (fact?.note) info.note = fact.note;
  return info;
}

/** All directive names PHP 8.2 (this build, every module in the table) registers. */
export function knownDirectiveNames(): string[] {
  return Object.keys(PHP82_DIRECTIVES);
}

/** C strtol(base 10 or 0) over the whole string: [value, endptr reached the end]. */
function strtolWhole(s: string, base: 0 | 10): [number, boolean] {
  const re = base === 10 ? /^[ \t\n\v\f\r]*([+-]?)(\d+)/ : /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)/;
  const m = re.exec(s);
  if (!m) return [0, s.length === 0];
  const body = m[2]!;
  let v: number;
  if (base === 10) v = Number(body);
  else if (/^0[xX]/.test(body)) v = Number.parseInt(body.slice(2), 16);
  else if (body.startsWith('0')) v = body.length > 1 ? Number.parseInt(body.slice(1), 8) : 0;
  else v = Number(body);
  return [m[1] === '-' ? -v : v, m[0].length === s.length];
}

/** C strtol(base 0) prefix of `s`, clamped to the 64-bit range, as a BigInt. */
function strtolBig(s: string): bigint {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)/.exec(s);
  if (!m) return 0n;
  const body = m[2]!;
  let v = /^0[xX]/.test(body)
    ? BigInt('0x' + body.slice(2))
    : body.length > 1 && body.startsWith('0')
      ? BigInt('0o' + body.slice(1))
      : BigInt(body);
  if (m[1] === '-') v = -v;
  const max = 9223372036854775807n;
  return v > max ? max : v < -max - 1n ? -max - 1n : v;
}

/**
 * zend_ini_parse_quantity() (Zend/zend_ini.c, 8.2): blanks trimmed, optional sign, 0x/0o/0b/0
 * prefixes, an optional k/m/g suffix (x1024^n). Invalid trailing text is ignored (PHP warns).
 */
export function parseQuantity(value: string): bigint {
  const t = value.trim();
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9]\d*)?/.exec(t)!;
  const body = m[2];
  if (body === undefined) return 0n;
  let v: bigint;
  if (/^0[xX]/.test(body)) v = BigInt('0x' + body.slice(2));
  else if (/^0[oO]/.test(body)) v = BigInt('0o' + body.slice(2));
  else if (/^0[bB]/.test(body)) v = BigInt('0b' + body.slice(2));
  else if (body.length > 1 && body.startsWith('0')) v = BigInt('0o' + body.slice(1));
  else v = BigInt(body);
  const suffix = t.slice(-1).toLowerCase();
  if (t.length > m[0].length && (suffix === 'k' || suffix === 'm' || suffix === 'g'))
    v *= suffix === 'k' ? 1024n : suffix === 'm' ? 1048576n : 1073741824n;
  return m[1] === '-' ? -v : v;
}

/** PHP's is_numeric_string() without errors allowed (PHP 8: leading and trailing whitespace ok). */
export function isNumericString(s: string): boolean {
  return /^[ \t\n\r\v\f]*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[ \t\n\r\v\f]*$/.test(s);
}

/** C atol(): leading blanks, sign, decimal digits. */
export function cAtol(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)/.exec(s);
  if (!m) return 0;
  const v = Number(m[2]);
  return m[1] === '-' ? -v : v;
}

/**
 * Would `name`'s on_modify handler accept `value`? Returns the warning PHP prints when it rejects
 * it (at startup the compiled default then stays), or null when accepted. Module availability
 * (unknown save/serialize handlers) is not checked here: see effectiveForRequest().
 */
export function rejectReason(name: string, value: string, phpVersion = '8.2', stage: 'startup' | 'runtime' = 'startup'): string | null {
  void stage; // kept for callers: these validators reject the same values at every stage in 8.2
  switch (name) {
    case 'session.name':
      if (value === '' || isNumericString(value)) return `session.name "${value}" cannot be numeric or empty`;
      return null;
    case 'session.cookie_lifetime':
      return cAtol(value) < 0 ? 'CookieLifetime cannot be negative' : null;
    case 'session.sid_length': {
      const [v, whole] = strtolWhole(value, 10);
      return whole && v >= 22 && v <= 256 ? null : 'session.configuration "session.sid_length" must be between 22 and 256';
    }
    case 'session.sid_bits_per_character': {
      const [v, whole] = strtolWhole(value, 10);
      return whole && v >= 4 && v <= 6 ? null : 'session.configuration "session.sid_bits_per_character" must be between 4 and 6';
    }
    case 'session.upload_progress.freq': {
      // zend_atoi(): (int) strtol(base 0) -- clamped to LONG_MAX, then truncated to 32 bits
      const v = Number(BigInt.asIntN(32, strtolBig(value)));
      if (v < 0) return 'session.upload_progress.freq must be greater than or equal to 0';
      if (value.endsWith('%') && v > 100) return 'session.upload_progress.freq must be less than or equal to 100%';
      return null;
    }
    case 'memory_limit': {
      // main/main.c OnChangeMemoryLimit: zend_set_memory_limit() fails below the memory already in
      // use at startup (one 2 MiB chunk); -1 means no limit
      const q = parseQuantity(value);
      return q === -1n || q >= 2097152n ? null : `Failed to set memory limit to ${q} bytes`;
    }
    case 'session.save_handler':
      if (value === 'user') return 'Session save handler "user" cannot be set by ini_set()';
      return null;
    case 'session.gc_probability':
      if (versionAtLeast(phpVersion, 8, 4) && cAtol(value) < 0) return 'session.gc_probability must be greater than or equal to 0';
      return null;
    case 'session.gc_divisor':
      if (versionAtLeast(phpVersion, 8, 4) && cAtol(value) <= 0) return 'session.gc_divisor must be greater than 0';
      return null;
    default:
      return null;
  }
}

/** The value `ini_get(name)` returns given the raw configuration-hash string (undefined = not set). */
export function iniGetFor(name: string, raw: string | undefined, ctx: DirectiveContext = {}): string | false {
  const info = directiveInfo(name, ctx);
  if (!info.exists) return false;
  if (raw !== undefined && rejectReason(name, raw, ctx.phpVersion ?? '8.2') === null) return raw;
  return info.default ?? '';
}
