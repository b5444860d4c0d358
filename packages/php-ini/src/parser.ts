/**
 * PHP's ini scanner and parser (NORMAL mode), re-implemented token for token.
 *
 * Sources (php-src 8.2): Zend/zend_ini_scanner.l (re2c, built with --case-inverted, so the keyword
 * rules "true"/"on"/... are case-insensitive), Zend/zend_ini_parser.y (grammar, `zend_ini_do_op`,
 * `zend_ini_get_var`, `zend_ini_get_constant`) and main/php_ini.c (`php_ini_parser_cb`: PATH/HOST
 * sections, `extension=` lines). The re2c rules are applied exactly: longest match, ties broken by
 * rule order. Bison's default reductions are reproduced too: when an unexpected token follows a
 * complete value, the `key = value` statement is still stored before the syntax error stops the
 * file (e.g. `a = tcp://h:1?database=2` stores `tcp://h:1?database`, php-src case 45 / BUG-11).
 *
 * Linear time: every token is found by scanning forward once; "is there a newline further on" is a
 * precomputed index, so a 50 MB file costs a few passes over its text.
 */
import { startupConstants } from './constants.ts';

/** Which parser callback PHP uses for the file. */
export type IniMode = 'php.ini' | 'fpm' | 'user.ini';

/** Where an entry goes in PHP's configuration hash (php.ini and .user.ini modes). */
export type IniScope = { kind: 'global' } | { kind: 'path'; name: string } | { kind: 'host'; name: string };

/**
 * One `key = value` (or `key[offset] = value`) statement as PHP's parser delivered it, with the
 * environment variables its `${NAME}` references read (EnvOrigin).
 */
export interface IniEntry extends EnvOrigin {
  /**
   * The raw text of the last `[section]` header above the entry (null before the first one). In
   * php.ini/.user.ini mode ordinary sections are NOT scopes (see `scope`); in `fpm` mode this is
   * the pool name (or `global`).
   */
  section: string | null;
  /** php.ini/.user.ini mode: global, or the `[PATH=]`/`[HOST=]` table it is stored in. */
  scope: IniScope;
  /** The key, trimmed; case-sensitive as in PHP. */
  key: string;
  /** Present for `key[offset] = value`; `''` for `key[] = value`. */
  offset?: string;
  /** The value after PHP's parsing (booleans -> '1'/'', constants, expressions, `${}` resolved). */
  value: string;
  /** `extension=`/`zend_extension=` outside PATH/HOST sections: queued for loading, not a directive. */
  extension?: 'extension' | 'zend_extension';
  file: string;
  /** PHP's own line counter at the key (what PHP would print in a message). */
  line: number;
}

/**
 * Which environment variables a value was built from, and through which earlier ini keys: the one
 * record of it that IniEntry, Setting, EffectiveSetting, PoolValue, SessionIniValue, IniValueOrigin
 * and the plan's GcMaxlifetimeFrom (packages/migrate) carry, as two optional fields beside their own.
 *
 * The rule (php-src Zend/zend_ini_scanner.l: `${` is TC_DOLLAR_CURLY in values, and from PHP 8.3 on
 * `${NAME:-fallback}`, ST_VAR_FALLBACK; Zend/zend_ini_parser.y cfg_var_ref -> zend_ini_get_var): a
 * `${NAME}` in a value takes the key NAME of the configuration hash when an earlier line set it, else
 * the environment variable NAME of the process that parses the file (php-fpm's when it starts, the web
 * server's for php-cgi), which may differ from the environment this package was given
 * (ParseIniOptions.env).
 *
 * - `envVars`: the `${NAME}` references that were read from the environment given (not set earlier
 *   in the configuration), set or not, each once, in order; also the variables a `${KEY}` of an
 *   earlier key brought in (that key's own envVars: `a = ${ENV}` then `b = ${a}` gives b `['ENV']`).
 * - `envVarsVia`: the earlier keys whose values, themselves expanded from environment variables,
 *   the value took through `${KEY}`, the nearest first and then the keys they took theirs from.
 *
 * Each is absent when empty (never `[]`), so records without environment variables, and plans made
 * before these were recorded, have neither. `Via` is the shape of one envVarsVia entry: EnvVarVia,
 * or (in a plan) EnvVarSite, without its variables. envOriginOf copies both fields.
 */
export interface EnvOrigin<Via extends EnvVarSite = EnvVarVia> {
  envVars?: string[];
  envVarsVia?: Via[];
}

/** Where an ini key named in `${KEY}` was set (the part of EnvVarVia a plan records). */
export interface EnvVarSite {
  /** The key named in `${KEY}`. */
  key: string;
  /** Where that key was set. */
  file: string;
  line: number;
}

/** An earlier ini key through which environment variables reached a value (EnvOrigin.envVarsVia). */
export interface EnvVarVia extends EnvVarSite {
  /** The environment variables its value was built from. */
  envVars: string[];
}

/** The EnvOrigin fields of `x` that are present (envVars, then envVarsVia), to spread into another record. */
export function envOriginOf<Via extends EnvVarSite>(x: EnvOrigin<Via>): EnvOrigin<Via> {
  return {
    ...(x.envVars !== undefined ? { envVars: x.envVars } : {}),
    ...(x.envVarsVia !== undefined ? { envVarsVia: x.envVarsVia } : {}),
  };
}

/** What `${NAME}` of an earlier key carries besides its value: where it was set and its variables. */
export interface IniValueOrigin extends EnvOrigin {
  file: string;
  line: number;
}

/** A problem found while reading or parsing a file. */
export interface IniError {
  file: string;
  /** 0 when not tied to a line (I/O errors). */
  line: number;
  /**
   * `syntax`: PHP prints "PHP:  syntax error, ..." and ignores the rest of the file.
   * `io`: the file could not be read (unreadable, symlink loop, outside root, ...).
   * `notice`: PHP silently stops (a NUL byte ends the file for PHP's scanner) or another oddity.
   */
  kind: 'syntax' | 'io' | 'notice';
  message: string;
}

export interface ParseIniOptions {
  /** File name used in entries and errors (as PHP would print it). */
  file: string;
  /** 'php.ini' (also conf.d, `-d`), 'fpm' (php-fpm.conf / pool files, parsed line by line), 'user.ini'. */
  mode?: IniMode;
  /** Environment for `${NAME}` (after ini keys). */
  env?: Record<string, string | undefined>;
  /**
   * Values already in PHP's configuration hash (earlier files): `${NAME}` looks here first
   * (`zend_ini_get_var`). In php.ini mode keys parsed earlier in this text are consulted first.
   */
  lookup?: (name: string) => string | undefined;
  /**
   * Where a key `lookup` answers for was set and the environment variables its value came from, so
   * a `${NAME}` naming it passes them on (EnvOrigin.envVarsVia). Default: none.
   */
  lookupOrigin?: (name: string) => IniValueOrigin | undefined;
  /**
   * Constants defined when PHP parses ini files (E_ALL, PHP_OS, ...). Default: `startupConstants()`
   * for PHP 8.2 CLI on Linux.
   */
  constants?: Record<string, string>;
  /** PHP >= 8.3 understands `${NAME:-fallback}`; default '8.2' (the whole `NAME:-x` is the name). */
  phpVersion?: string;
}

export interface ParseIniResult {
  entries: IniEntry[];
  errors: IniError[];
  /** Every `[section]` header in order (PHP creates an empty [PATH=]/[HOST=] table for each). */
  sections: Array<{ name: string; scope: IniScope; file: string; line: number }>;
}

type Tok = { t: string; v: string; line: number };

/** The scanner's states: the start conditions of zend_ini_scanner.l. */
const S_INITIAL = 0; // INITIAL: keys, sections, `=`
const S_VALUE = 1; // ST_VALUE: after `=`, to the end of the line
const S_SECTION = 2; // ST_SECTION_VALUE: inside `[...]`
const S_OFFSET = 3; // ST_OFFSET: inside `key[...]`
const S_DQ = 4; // ST_DOUBLE_QUOTES: inside `"..."`
const S_VARNAME = 5; // ST_VARNAME: inside `${...}`
const S_FALLBACK = 6; // ST_VAR_FALLBACK (8.3+): after `${NAME:-`

/**
 * The INITIAL rules that can match at one position, numbered in the order zend_ini_scanner.l writes
 * them: re2c takes the longest match and, on a tie, the rule written first (the lower number). The
 * `[` of a section (rule 1) is decided before them: no other rule can be longer there.
 */
const RULE_OFFSET_KEY = 2; // {LABEL}"["{TABS_AND_SPACES}* -> TC_OFFSET, to ST_OFFSET
const RULE_BOOL_KEYWORD = 3; // ("true"|"on"|"yes"|"false"|"off"|"no"|"none"|"null"){TABS_AND_SPACES}* -> BOOL_TRUE/BOOL_FALSE/NULL_NULL
const RULE_LABEL = 4; // {LABEL} -> TC_LABEL (a key)
const RULE_EQUALS = 5; // {TABS_AND_SPACES}*[=]{TABS_AND_SPACES}* -> '=', to ST_VALUE
const RULE_TOKEN = 6; // {TOKENS}: a one-character token
const RULE_BLANKS = 7; // {TABS_AND_SPACES}+: eaten
const RULE_NEWLINE = 8; // {TABS_AND_SPACES}*{NEWLINE} -> END_OF_LINE
const RULE_COMMENT = 9; // {TABS_AND_SPACES}*[;][^\r\n]*{NEWLINE} -> END_OF_LINE
const NO_RULE = 99; // no rule matches (a NUL byte): the scanner returns 0

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
function isNl(c: number): boolean {
  return c === 0x0a || c === 0x0d;
}
/** LABEL_CHAR (8.2): [^=\n\r\t;&|^$~(){}!"\[\x00] (a ']' is part of a key; checked against php 8.2.36). */
function isLabelChar(c: number): boolean {
  switch (c) {
    case 0x3d:
    case 0x0a:
    case 0x0d:
    case 0x09:
    case 0x3b:
    case 0x26:
    case 0x7c:
    case 0x5e:
    case 0x24:
    case 0x7e:
    case 0x28:
    case 0x29:
    case 0x7b:
    case 0x7d:
    case 0x21:
    case 0x22:
    case 0x5b:
    case 0x00:
      return false;
    default:
      return !Number.isNaN(c);
  }
}
/** VALUE_CHARS without the `$` alternative: [^$= \t\n\r;&|^~()!"'\000] */
function isValueChar(c: number): boolean {
  switch (c) {
    case 0x24:
    case 0x3d:
    case 0x20:
    case 0x09:
    case 0x0a:
    case 0x0d:
    case 0x3b:
    case 0x26:
    case 0x7c:
    case 0x5e:
    case 0x7e:
    case 0x28:
    case 0x29:
    case 0x21:
    case 0x22:
    case 0x27:
    case 0x00:
      return false;
    default:
      return !Number.isNaN(c);
  }
}
/** SECTION_VALUE_CHARS first alternative: [^$\n\r;"'\]\\] */
function isSectionChar(c: number): boolean {
  switch (c) {
    case 0x24:
    case 0x0a:
    case 0x0d:
    case 0x3b:
    case 0x22:
    case 0x27:
    case 0x5d:
    case 0x5c:
      return false;
    default:
      return !Number.isNaN(c);
  }
}
/** FALLBACK_CHARS first alternative (8.3+): [^$\n\r;"'}\\] */
function isFallbackChar(c: number): boolean {
  switch (c) {
    case 0x24:
    case 0x0a:
    case 0x0d:
    case 0x3b:
    case 0x22:
    case 0x27:
    case 0x7d:
    case 0x5c:
      return false;
    default:
      return !Number.isNaN(c);
  }
}
const TOKENS_INITIAL = new Set(':,.[]"\'()&|^+-/*=%$!~<>?@{}'.split('').map((c) => c.charCodeAt(0)));
const OPERATORS = new Set('&|^~()!'.split('').map((c) => c.charCodeAt(0)));
const BOOL_WORDS: Array<[string, string]> = [
  ['true', 'BOOL_TRUE'],
  ['on', 'BOOL_TRUE'],
  ['yes', 'BOOL_TRUE'],
  ['false', 'BOOL_FALSE'],
  ['off', 'BOOL_FALSE'],
  ['none', 'BOOL_FALSE'],
  ['no', 'BOOL_FALSE'],
  ['null', 'NULL_NULL'],
];

class SyntaxStop extends Error {
  constructor(
    readonly tok: Tok,
    readonly expecting?: string,
  ) {
    super('syntax');
  }
}

/** Bison's name for a token in "syntax error, unexpected X". */
function tokenName(tok: Tok): string {
  if (tok.t === 'END') return 'end of file';
  if (tok.t.length === 1) return `'${tok.t}'`;
  const named: Record<string, string> = {
    LABEL: 'TC_LABEL',
    OFFSET: 'TC_OFFSET',
    SECTION: 'TC_SECTION',
    STRING: 'TC_STRING',
    RAW: 'TC_RAW',
    CONSTANT: 'TC_CONSTANT',
    NUMBER: 'TC_NUMBER',
    WS: 'TC_WHITESPACE',
    QSTRING: 'TC_QUOTED_STRING',
    DOLLAR_CURLY: 'TC_DOLLAR_CURLY',
    VARNAME: 'TC_VARNAME',
    EOL: 'END_OF_LINE',
    FALLBACK: 'TC_FALLBACK',
  };
  return named[tok.t] ?? tok.t;
}

/** `zend_ini_escape_string` for double-quoted pieces: only \" \\ \$ lose the backslash. */
function unescapeDq(raw: string): string {
  if (raw.indexOf('\\') < 0) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    i++;
    if (i >= raw.length) {
      out += '\\';
      continue;
    }
    const e = raw[i]!;
    if (e === '"' || e === '\\' || e === '$') out += e;
    else out += '\\' + e;
  }
  return out;
}

/** C `atoi()` into a 32-bit int as `zend_ini_do_op` does (glibc: strtol then truncation). */
export function cAtoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)/.exec(s);
  if (!m) return 0;
  let v = BigInt(m[2]!);
  if (m[1] === '-') v = -v;
  const max = 9223372036854775807n;
  if (v > max) v = max;
  if (v < -max - 1n) v = -max - 1n;
  return Number(BigInt.asIntN(32, v));
}

class Scanner {
  private pos = 0;
  private state = S_INITIAL;
  private readonly stack: number[] = [];
  /** PHP's SCNG(lineno). */
  line = 1;
  /** Index of the last \n or \r in the text (-1 if none): "a NEWLINE follows" in O(1). */
  private readonly lastNl: number;
  /** Set when the scanner returned 0 because of a byte no rule accepts (e.g. NUL). */
  stopReason: string | null = null;

  constructor(
    private readonly s: string,
    private readonly fallback: boolean,
  ) {
    this.lastNl = Math.max(s.lastIndexOf('\n'), s.lastIndexOf('\r'));
    // Eat a UTF-8 BOM in the first bytes (decoded text: U+FEFF), only when more text follows.
    if (s.charCodeAt(0) === 0xfeff && s.length > 1) this.pos = 1;
  }

  private c(i: number): number {
    return this.s.charCodeAt(i); // NaN past the end
  }

  private push(st: number): void {
    this.stack.push(this.state);
    this.state = st;
  }
  private pop(): void {
    this.state = this.stack.pop() ?? S_INITIAL;
  }

  /** Length of `[ \t]*` at i. */
  private blanks(i: number): number {
    let j = i;
    while (isBlank(this.c(j))) j++;
    return j - i;
  }
  /** Length of a NEWLINE ("\r\n" | "\r" | "\n") at i, 0 if none. */
  private nl(i: number): number {
    const c = this.c(i);
    if (c === 0x0d) return this.c(i + 1) === 0x0a ? 2 : 1;
    if (c === 0x0a) return 1;
    return 0;
  }
  /** `[;][^\r\n]*{NEWLINE}` at i (requires a newline to follow). */
  private comment(i: number): number {
    if (this.c(i) !== 0x3b || i > this.lastNl) return 0;
    let j = i + 1;
    while (j < this.s.length && !isNl(this.c(j))) j++;
    return j - i + this.nl(j);
  }
  private constantLen(i: number): number {
    const c = this.c(i);
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f)) return 0;
    let j = i + 1;
    for (;;) {
      const d = this.c(j);
      if ((d >= 0x41 && d <= 0x5a) || (d >= 0x61 && d <= 0x7a) || d === 0x5f || (d >= 0x30 && d <= 0x39)) j++;
      else break;
    }
    return j - i;
  }
  private numberLen(i: number): number {
    // NUMBER: [-]?[0-9]+ | [0-9]*[.][0-9]+ | [0-9]+[.][0-9]*
    const digits = (k: number): number => {
      let j = k;
      while (this.c(j) >= 0x30 && this.c(j) <= 0x39) j++;
      return j - k;
    };
    let best = 0;
    const neg = this.c(i) === 0x2d ? 1 : 0;
    const d1 = digits(i + neg);
    if (d1 > 0) best = neg + d1;
    const a = digits(i);
    if (this.c(i + a) === 0x2e) {
      const b = digits(i + a + 1);
      if (b > 0 || a > 0) best = Math.max(best, a + 1 + b);
    }
    return best;
  }
  /** `("true"|"on"|...){TABS_AND_SPACES}*` case-insensitively at i; returns [len, token]. */
  private boolAt(i: number): [number, string] {
    const c = this.c(i) | 0x20;
    if (c !== 0x74 && c !== 0x6f && c !== 0x79 && c !== 0x66 && c !== 0x6e) return [0, ''];
    let best: [number, string] = [0, ''];
    for (const [w, t] of BOOL_WORDS) {
      if (this.s.substr(i, w.length).toLowerCase() === w && w.length > best[0]) best = [w.length, t];
    }
    if (best[0] === 0) return best;
    return [best[0] + this.blanks(i + best[0]), best[1]];
  }
  /** VALUE_CHARS+ length at i (LITERAL_DOLLAR: `$` + a char that is not `{`/NUL, or `$\` + any char). */
  private valueRun(i: number, charOk: (c: number) => boolean, backslashPairs: boolean): number {
    let j = i;
    const n = this.s.length;
    while (j < n) {
      const c = this.c(j);
      if (c === 0x24) {
        const d = this.c(j + 1);
        if (d === 0x5c && j + 2 < n) {
          j += 3;
          continue;
        }
        if (j + 1 < n && d !== 0x7b && d !== 0x00) {
          j += 2;
          continue;
        }
        break;
      }
      if (backslashPairs && c === 0x5c) {
        if (j + 1 < n) {
          j += 2;
          continue;
        }
        break;
      }
      if (!charOk(c)) break;
      j++;
    }
    return j - i;
  }

  private tok(t: string, v: string, len: number, line = this.line): Tok {
    this.pos += len;
    return { t, v, line };
  }

  /** The next token (re2c's `ini_lex`): the rules of the current state, applied at the current position. */
  next(): Tok {
    const line = this.line;
    if (this.pos >= this.s.length) {
      if (this.state === S_VALUE) {
        this.state = S_INITIAL;
        return { t: 'EOL', v: '', line };
      }
      return { t: 'END', v: '', line };
    }
    switch (this.state) {
      case S_INITIAL:
        return this.scanInitial(line);
      case S_VALUE:
        return this.scanValue(line);
      case S_SECTION:
      case S_OFFSET:
      case S_FALLBACK:
        return this.scanBracketed(line);
      case S_DQ:
        return this.scanDoubleQuoted(line);
      case S_VARNAME:
        return this.scanVarname(line);
      default:
        return { t: 'END', v: '', line };
    }
  }

  /** Stops at a byte no rule accepts: PHP's scanner returns 0, the parser sees the end. */
  private stop(c: number, line: number): Tok {
    this.stopReason = c === 0 ? 'NUL byte' : null;
    this.pos = this.s.length;
    return { t: 'END', v: '', line };
  }

  /** INITIAL: keys, `[section]`, `=`, single-character tokens, blanks, newlines, comments. */
  private scanInitial(line: number): Tok {
    const i = this.pos;
    const c = this.c(i);
    if (c === 0x5b) {
      this.state = S_SECTION;
      return this.tok('SECTION', '', 1);
    }
    let labelLen = 0;
    while (isLabelChar(this.c(i + labelLen))) labelLen++;
    const [bl, boolToken] = this.boolAt(i);
    const [len, rule] = this.longestInitialMatch(i, c, labelLen, bl);
    switch (rule) {
      case RULE_OFFSET_KEY: {
        const label = this.s.slice(i, i + labelLen).replace(/^[ \t]+|[ \t]+$/g, '');
        this.state = S_OFFSET;
        return this.tok('OFFSET', label, len);
      }
      case RULE_BOOL_KEYWORD:
        return this.tok(boolToken, boolToken === 'BOOL_TRUE' ? '1' : '', len);
      case RULE_LABEL:
        return this.tok('LABEL', this.s.slice(i, i + labelLen).replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, ''), len);
      case RULE_EQUALS:
        this.state = S_VALUE;
        return this.tok('=', '', len);
      case RULE_TOKEN:
        return this.tok(String.fromCharCode(c), '', 1);
      case RULE_BLANKS:
        this.pos += len;
        return this.next();
      case RULE_NEWLINE:
      case RULE_COMMENT:
        this.line++;
        return this.tok('EOL', '', len, line);
      default:
        return this.stop(c, line);
    }
  }

  /**
   * The INITIAL rule that wins at `i`, as re2c decides: the longest match, a tie going to the rule
   * written first (the lower RULE_* number). @returns [length, RULE_*], or [0, NO_RULE].
   */
  private longestInitialMatch(i: number, c: number, labelLen: number, boolLen: number): [number, number] {
    const cands: Array<[number, number]> = [];
    if (labelLen > 0 && this.c(i + labelLen) === 0x5b) cands.push([labelLen + 1 + this.blanks(i + labelLen + 1), RULE_OFFSET_KEY]);
    // a keyword line that ends the file is read as a bare key (php 8.2.36: no syntax error)
    if (boolLen > 0 && i + boolLen < this.s.length) cands.push([boolLen, RULE_BOOL_KEYWORD]);
    if (labelLen > 0) cands.push([labelLen, RULE_LABEL]);
    const b = this.blanks(i);
    if (this.c(i + b) === 0x3d) cands.push([b + 1 + this.blanks(i + b + 1), RULE_EQUALS]);
    if (TOKENS_INITIAL.has(c)) cands.push([1, RULE_TOKEN]);
    if (b > 0) cands.push([b, RULE_BLANKS]);
    const nl = this.nl(i + b);
    if (nl > 0) cands.push([b + nl, RULE_NEWLINE]);
    const cm = this.comment(i + b);
    if (cm > 0) cands.push([b + cm, RULE_COMMENT]);
    let best: [number, number] = [0, NO_RULE];
    for (const cand of cands) if (cand[0] > best[0] || (cand[0] === best[0] && cand[1] < best[1])) best = cand;
    return best;
  }

  /** ST_VALUE: the value after `=`, up to the end of the line. */
  private scanValue(line: number): Tok {
    const i = this.pos;
    const s = this.s;
    const c = this.c(i);
    if (c === 0x27) {
      const close = s.indexOf("'", i + 1);
      if (close > i + 1) return this.tok('RAW', s.slice(i + 1, close), close + 1 - i);
      if (close < 0) {
        // no closing quote anywhere: PHP 8.2 stops reading the file here (value so far kept)
        this.pos = s.length;
        return { t: 'END', v: '', line };
      }
      this.state = S_INITIAL; // '' : the value ends, the second quote is read as a key char
      return this.tok('EOL', '', 1);
    }
    if (c === 0x24 && this.c(i + 1) === 0x7b) {
      this.push(S_VARNAME);
      return this.tok('DOLLAR_CURLY', '', 2);
    }
    if (isBlank(c)) return this.valueBlanks(i, line);
    if (isNl(c)) {
      this.state = S_INITIAL;
      this.line++;
      return this.tok('EOL', '', this.nl(i), line);
    }
    if (c === 0x22) {
      this.push(S_DQ);
      return this.tok('"', '', 1);
    }
    if (c === 0x3b) {
      const cm = this.comment(i);
      if (cm > 0) {
        this.state = S_INITIAL;
        this.line++;
        return this.tok('EOL', '', cm, line);
      }
      this.pos = s.length; // ';' with no newline after it: no rule matches, the scanner returns 0
      return { t: 'END', v: '', line };
    }
    if (OPERATORS.has(c)) return this.tok(String.fromCharCode(c), '', 1 + this.blanks(i + 1));
    if (c === 0x3d) {
      this.state = S_INITIAL; // yyless(0): the '=' is scanned again in INITIAL -> syntax error
      return { t: 'EOL', v: '', line };
    }
    return this.valueWord(i, c);
  }

  /** ST_VALUE at blanks: the end of the line (or a comment), a `"` after them, or whitespace inside the value. */
  private valueBlanks(i: number, line: number): Tok {
    const b = this.blanks(i);
    const nl = this.nl(i + b);
    if (nl > 0) {
      this.state = S_INITIAL;
      this.line++;
      return this.tok('EOL', '', b + nl, line);
    }
    if (this.c(i + b) === 0x22) {
      this.push(S_DQ);
      return this.tok('"', '', b + 1);
    }
    const cm = this.comment(i + b);
    if (cm > 0) {
      this.state = S_INITIAL;
      this.line++;
      return this.tok('EOL', '', b + cm, line);
    }
    if (this.c(i + b) === 0x3b) {
      // ';' with no newline after it (the last line of the file): the value ends before the blanks,
      // which are not part of it (php 8.2.36: `k = abc ;c` at the end of the file is "abc", while
      // `k = abc ` is "abc "); the scanner then returns 0, as at a bare ';' in scanValue.
      this.pos = this.s.length;
      return { t: 'END', v: '', line };
    }
    return this.tok('WS', this.s.slice(i, i + b), b);
  }

  /**
   * ST_VALUE at a word: a boolean keyword, a constant, a number or a raw string, whichever is longest
   * (in that order on a tie: the order of the rules in Zend/zend_ini_scanner.l). A number and a string
   * make the same value; the token's name shows in a syntax error (`k = on 12`: unexpected TC_NUMBER).
   */
  private valueWord(i: number, c: number): Tok {
    const V = this.valueRun(i, isValueChar, false);
    const [bl, bt] = this.boolAt(i);
    const C = this.constantLen(i);
    const N = this.numberLen(i);
    if (bl > 0 && bl >= V && bl >= C) return this.tok(bt, bt === 'BOOL_TRUE' ? '1' : '', bl);
    if (C > 0 && C >= V) return this.tok('CONSTANT', this.s.slice(i, i + C), C);
    if (N > 0 && N >= V) return this.tok('NUMBER', this.s.slice(i, i + N), N);
    if (V > 0) return this.tok('STRING', this.s.slice(i, i + V), V);
    this.state = S_INITIAL; // NUL, or a '$' before NUL / the end: end of value (php 8.2.36)
    return this.tok('EOL', '', c === 0x24 && this.c(i + 1) === 0x00 ? 2 : 1);
  }

  /** ST_SECTION_VALUE, ST_OFFSET and (8.3+) ST_VAR_FALLBACK: the text inside `[...]`, `key[...]` and `${NAME:-...}`. */
  private scanBracketed(line: number): Tok {
    const i = this.pos;
    const s = this.s;
    const c = this.c(i);
    const st = this.state;
    if (c === 0x27 && st !== S_FALLBACK) {
      const close = s.indexOf("'", i + 1);
      if (close > i + 1) return this.tok('RAW', s.slice(i + 1, close), close + 1 - i);
    }
    if (st === S_SECTION && c === 0x5d) {
      const b = this.blanks(i + 1);
      const nl = this.nl(i + 1 + b);
      this.state = S_INITIAL;
      this.line++; // php-src increments even without a newline
      return this.tok(']', '', 1 + b + nl, line);
    }
    if (st === S_OFFSET) {
      const b = this.blanks(i);
      if (this.c(i + b) === 0x5d) {
        // `{TABS_AND_SPACES}*"]"` competes with SECTION_VALUE_CHARS+ (which also takes blanks)
        const run = this.valueRun(i, isSectionChar, true);
        if (run <= b + 1) {
          this.state = S_INITIAL;
          return this.tok(']', '', b + 1);
        }
      }
    }
    if (st === S_FALLBACK && c === 0x7d) {
      this.pop();
      return this.tok('}', '', 1);
    }
    if (c === 0x24 && this.c(i + 1) === 0x7b) {
      this.push(S_VARNAME);
      return this.tok('DOLLAR_CURLY', '', 2);
    }
    const charOk = st === S_FALLBACK ? isFallbackChar : isSectionChar;
    const b = this.blanks(i);
    if (this.c(i + b) === 0x22) {
      const run = this.valueRun(i, charOk, true);
      if (b + 1 > run) {
        this.push(S_DQ);
        return this.tok('"', '', b + 1);
      }
    }
    const V = this.valueRun(i, charOk, true);
    const C = this.constantLen(i);
    const N = this.numberLen(i);
    if (C > 0 && C >= V && C >= N) return this.tok('CONSTANT', s.slice(i, i + C), C);
    if (N > 0 && N >= V) return this.tok('NUMBER', s.slice(i, i + N), N);
    if (V > 0) return this.tok('STRING', s.slice(i, i + V), V);
    if (b > 0) return this.tok('WS', s.slice(i, i + b), b);
    return this.stop(c, line);
  }

  /** ST_DOUBLE_QUOTES: the text of a `"..."` up to the closing quote or a `${`. */
  private scanDoubleQuoted(line: number): Tok {
    const i = this.pos;
    const s = this.s;
    const c = this.c(i);
    if (c === 0x22) {
      this.pop();
      return this.tok('"', '', 1 + this.blanks(i + 1));
    }
    if (c === 0x24 && this.c(i + 1) === 0x7b) {
      this.push(S_VARNAME);
      return this.tok('DOLLAR_CURLY', '', 2);
    }
    let j = i;
    const n = s.length;
    for (;;) {
      if (j >= n) break;
      const d = this.c(j++);
      if (d === 0x22) {
        j--;
        break;
      }
      if (d === 0x24) {
        if (j < n && this.c(j) === 0x7b) {
          j--;
          break;
        }
        continue;
      }
      if (d === 0x5c && j < n) {
        const e = this.c(j++);
        if (e === 0x22 && (j >= n || isNl(this.c(j)))) {
          j--;
          break;
        }
      }
    }
    const raw = s.slice(i, j);
    for (let k = 0; k < raw.length; k++) {
      const ch = raw.charCodeAt(k);
      if (ch === 0x0a || (ch === 0x0d && raw.charCodeAt(k + 1) !== 0x0a)) this.line++;
    }
    return this.tok('QSTRING', unescapeDq(raw), j - i, line);
  }

  /** ST_VARNAME: the NAME of `${NAME}` (8.3+: up to `:-`, the start of a fallback). */
  private scanVarname(line: number): Tok {
    const i = this.pos;
    const c = this.c(i);
    if (c === 0x7d) {
      this.pop();
      return this.tok('}', '', 1);
    }
    if (this.fallback && c === 0x3a && this.c(i + 1) === 0x2d) {
      this.pop();
      this.push(S_FALLBACK);
      return this.tok('FALLBACK', '', 2);
    }
    let L = 0;
    if (this.fallback) {
      // 8.3+: a name stops before ":-"
      while (isLabelChar(this.c(i + L)) && !(this.c(i + L) === 0x3a && this.c(i + L + 1) === 0x2d)) L++;
    } else {
      while (isLabelChar(this.c(i + L))) L++;
    }
    if (L > 0) return this.tok('VARNAME', this.s.slice(i, i + L).replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, ''), L);
    return this.stop(c, line);
  }
}

/**
 * Parses one ini text with PHP's rules. Never throws for bad input: syntax errors stop the file
 * (entries before the error are kept, as in PHP) and are reported in `errors`.
 * @param text file contents; bytes are decoded as UTF-8 (invalid sequences become U+FFFD).
 */
export function parseIni(text: string | Uint8Array, opts: ParseIniOptions): ParseIniResult {
  const src = typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(text);
  const mode = opts.mode ?? 'php.ini';
  if (mode === 'fpm') return parseFpmLines(src, opts);
  return parseText(src, opts, mode, { section: null, scope: { kind: 'global' }, special: false }, 1);
}

interface SectionState {
  section: string | null;
  scope: IniScope;
  special: boolean;
}

/**
 * Parses one text in php.ini, .user.ini or one-line FPM mode (parseIni, parseFpmLines): the grammar
 * of zend_ini_parser.y over the Scanner's tokens, with the callbacks of main/php_ini.c.
 */
function parseText(src: string, opts: ParseIniOptions, mode: IniMode, st: SectionState, lineBase: number): ParseIniResult {
  return new IniTextParser(src, opts, mode, st, lineBase).parse();
}

/**
 * zend_ini_parser.y as a recursive-descent parser (one method per nonterminal it needs), reproducing
 * Bison's behaviour where it matters: a statement whose value is complete is stored before a syntax
 * error stops the file. `${NAME}` and constants are resolved as zend_ini_get_var /
 * zend_ini_get_constant do; entries and sections go through onEntry / onSection (php_ini_parser_cb).
 */
class IniTextParser {
  private readonly entries: IniEntry[] = [];
  private readonly errors: IniError[] = [];
  private readonly sections: ParseIniResult['sections'] = [];
  private readonly file: string;
  private readonly env: Record<string, string | undefined>;
  private readonly constants: Record<string, string>;
  /** PHP >= 8.3: `${NAME:-fallback}`. */
  private readonly fallback: boolean;
  /** php.ini mode: keys set earlier in this text (global scope), which `${NAME}` sees first. */
  private readonly local = new Map<string, string>();
  /** ...and, for those whose values came from environment variables, where they were set (EnvOrigin.envVarsVia). */
  private readonly localOrigin = new Map<string, IniValueOrigin>();
  /** ...and the keys that became arrays (`NAME[] = ...`). */
  private readonly localArrays = new Set<string>();
  private readonly sc: Scanner;
  /** One token of look-ahead. */
  private la: Tok | null = null;

  constructor(
    src: string,
    private readonly opts: ParseIniOptions,
    private readonly mode: IniMode,
    private readonly st: SectionState,
    lineBase: number,
  ) {
    this.file = opts.file;
    this.env = opts.env ?? {};
    this.constants = opts.constants ?? startupConstants();
    this.fallback = versionAtLeast(opts.phpVersion ?? '8.2', 8, 3);
    this.sc = new Scanner(src, this.fallback);
    this.sc.line = lineBase;
  }

  /** statement_list: statements until the end, or until a syntax error stops the file (as PHP's does). */
  parse(): ParseIniResult {
    const { file, errors, sc } = this;
    try {
      for (;;) {
        const t = this.next();
        if (t.t === 'END') break;
        if (t.t !== 'EOL') this.statement(t);
      }
      if (sc.stopReason) {
        errors.push({ file, line: sc.line, kind: 'notice', message: `${sc.stopReason}: PHP silently ignores the rest of this file` });
      }
    } catch (e) {
      if (!(e instanceof SyntaxStop)) throw e;
      errors.push({
        file,
        line: sc.line,
        kind: 'syntax',
        message: `syntax error, unexpected ${tokenName(e.tok)}${e.expecting ? `, expecting ${e.expecting}` : ''}`,
      });
    }
    return { entries: this.entries, errors, sections: this.sections };
  }

  /** statement: `[section]`, `key = value`, `key[offset] = value` (a bare key without `=` is ignored by every callback). */
  private statement(t: Tok): void {
    this.entryEnvVars = [];
    this.entryVia = [];
    if (t.t === 'SECTION') {
      let name = '';
      if (this.peek().t !== ']') name = this.varStringList(false);
      const c = this.next();
      if (c.t !== ']') this.fail(c);
      this.onSection(name, t.line);
    } else if (t.t === 'LABEL') {
      if (this.peek().t === '=') {
        this.next();
        this.onEntry(t.v, this.stringOrValue(), t.line);
      }
    } else if (t.t === 'OFFSET') {
      let off = '';
      if (this.peek().t !== ']') off = this.varStringList(true); // option_offset resolves constants (sections do not)
      const c = this.next();
      if (c.t !== ']') this.fail(c);
      const eq = this.next();
      if (eq.t !== '=') this.fail(eq, "'='");
      this.onEntry(t.v, this.stringOrValue(), t.line, off);
    } else {
      this.fail(t);
    }
  }

  private next(): Tok {
    if (this.la) {
      const t = this.la;
      this.la = null;
      return t;
    }
    return this.sc.next();
  }

  private peek(): Tok {
    return (this.la ??= this.sc.next());
  }

  private fail(t: Tok, expecting?: string): never {
    throw new SyntaxStop(t, expecting);
  }

  /** zend_ini_get_var: this text's earlier keys (php.ini mode), the configuration so far, the environment, the fallback. */
  private getVar(name: string, fb: string | null): string {
    const { mode, local, localArrays } = this;
    if (mode === 'php.ini' && localArrays.has(name)) {
      this.errors.push({
        file: this.file,
        line: this.sc.line,
        kind: 'notice',
        message: `\${${name}} names an array (${name}[]): PHP 8.2 aborts at startup ("Out of memory")`,
      });
      return '';
    }
    if (mode === 'php.ini' && local.has(name)) {
      this.takeOrigin(name, this.localOrigin.get(name));
      return local.get(name)!;
    }
    const v = this.opts.lookup?.(name);
    if (v !== undefined) {
      this.takeOrigin(name, this.opts.lookupOrigin?.(name));
      return v;
    }
    if (!this.entryEnvVars.includes(name)) this.entryEnvVars.push(name);
    const e = this.env[name];
    if (e !== undefined) return e;
    if (fb === null && !this.unsetVars.has(name)) {
      // PHP takes it from the environment of the process that reads the file (php-fpm's, the web
      // server's), which need not be the one given here: the value below holds '' for it
      this.unsetVars.add(name);
      this.errors.push({
        file: this.file,
        line: this.sc.line,
        kind: 'notice',
        message: `\${${name}} is set neither earlier in the configuration nor in the environment given: it is read as '', as PHP reads it only if its own process's environment lacks ${name} too`,
      });
    }
    return fb ?? '';
  }

  /** The environment variables the statement being parsed read (EnvOrigin.envVars). */
  private entryEnvVars: string[] = [];

  /** The earlier keys that brought environment variables into the statement being parsed (EnvOrigin.envVarsVia). */
  private entryVia: EnvVarVia[] = [];

  /** `${key}` took an earlier key's value: its environment variables (if any) become the statement's too, through it. */
  private takeOrigin(key: string, o: IniValueOrigin | undefined): void {
    if (o?.envVars === undefined || o.envVars.length === 0) return;
    for (const n of o.envVars) if (!this.entryEnvVars.includes(n)) this.entryEnvVars.push(n);
    for (const via of [{ key, file: o.file, line: o.line, envVars: o.envVars }, ...(o.envVarsVia ?? [])])
      if (!this.entryVia.some((x) => x.key === via.key && x.file === via.file && x.line === via.line)) this.entryVia.push(via);
  }

  /** The names of `${NAME}` references already reported as unset (one notice per name and file). */
  private readonly unsetVars = new Set<string>();

  /** zend_ini_get_constant: a known constant's value, else the name itself (a class constant `A::B` stays as written). */
  private constant(name: string): string {
    if (name.includes(':')) return name;
    return Object.prototype.hasOwnProperty.call(this.constants, name) ? this.constants[name]! : name;
  }

  /** cfg_var_ref, after TC_DOLLAR_CURLY: `NAME}` or (8.3+) `NAME:-fallback}`. */
  private varRef(): string {
    const n = this.next();
    if (n.t !== 'VARNAME') this.fail(n, 'TC_VARNAME');
    let t = this.next();
    let fb: string | null = null;
    if (t.t === 'FALLBACK') {
      fb = '';
      for (;;) {
        const p = this.peek();
        if (p.t === '}') break;
        // `fallback: var_string_list` (zend_ini_parser.y, PHP 8.3+): its TC_CONSTANT goes through
        // constant_string, so a constant resolves as in a value (`${X:-E_ALL}` is 32767), unlike a section name
        if (['DOLLAR_CURLY', 'CONSTANT', 'RAW', 'NUMBER', 'STRING', 'WS', '"'].includes(p.t)) fb += this.varStringList(true, true);
        else this.fail(p);
      }
      t = this.next();
    }
    if (t.t !== '}') this.fail(t, this.fallback ? undefined : "'}'");
    return this.getVar(n.v, fb);
  }

  /** encapsed_list, after '"': quoted text and `${...}` up to the closing '"'. */
  private encapsed(): string {
    let out = '';
    for (;;) {
      const t = this.next();
      if (t.t === '"') return out;
      if (t.t === 'QSTRING') out += t.v;
      else if (t.t === 'DOLLAR_CURLY') out += this.varRef();
      else this.fail(t);
    }
  }

  /**
   * var_string_list (constants resolved when `resolve`) / section_string_or_value (not): a run of
   * `${...}`, constants, raw and quoted strings; inside a fallback one piece at a time.
   */
  private varStringList(resolve: boolean, inFallback = false): string {
    let out = '';
    let any = false;
    for (;;) {
      const t = this.peek();
      if (t.t === 'DOLLAR_CURLY') {
        this.next();
        out += this.varRef();
      } else if (t.t === 'CONSTANT') {
        this.next();
        out += resolve ? this.constant(t.v) : t.v;
      } else if (t.t === 'RAW' || t.t === 'NUMBER' || t.t === 'STRING' || t.t === 'WS') {
        this.next();
        out += t.v;
      } else if (t.t === '"') {
        this.next();
        out += this.encapsed();
      } else {
        if (!any) this.fail(t);
        return out;
      }
      any = true;
      if (inFallback) return out;
    }
  }

  /** `~x`, `!x`, `(expr)` or a var_string_list (zend_ini_do_op on C ints). */
  private unary(): string {
    const t = this.next();
    if (t.t === '~') return String(~cAtoi(this.unary()));
    if (t.t === '!') return String(cAtoi(this.unary()) ? 0 : 1);
    if (t.t === '(') {
      const v = this.expr();
      const c = this.next();
      if (c.t !== ')') this.fail(c);
      return v;
    }
    this.la = t;
    return this.varStringList(true);
  }

  /** expr: unary terms joined by `|`, `&`, `^`, left to right (zend_ini_do_op). */
  private expr(): string {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.t !== '|' && t.t !== '&' && t.t !== '^') return left;
      this.next();
      const right = this.unary();
      const a = cAtoi(left);
      const b = cAtoi(right);
      left = String(t.t === '|' ? a | b : t.t === '&' ? a & b : a ^ b);
    }
  }

  /** string_or_value: a boolean keyword, null, an empty value, or an expr. */
  private stringOrValue(): string {
    const t = this.next();
    if (t.t === 'BOOL_TRUE') return '1';
    if (t.t === 'BOOL_FALSE' || t.t === 'NULL_NULL' || t.t === 'EOL') return '';
    this.la = t;
    return this.expr();
  }

  /** ZEND_INI_PARSER_ENTRY / ZEND_INI_PARSER_POP_ENTRY of php_ini_parser_cb. */
  private onEntry(key: string, value: string, line: number, offset?: string): void {
    const { st, mode } = this;
    const e: IniEntry = { section: st.section, scope: st.scope, key, value, file: this.file, line };
    if (offset !== undefined) e.offset = offset;
    if (this.entryEnvVars.length > 0) e.envVars = this.entryEnvVars;
    if (this.entryVia.length > 0) e.envVarsVia = this.entryVia;
    if (offset === undefined && !st.special && mode !== 'fpm') {
      const lk = key.toLowerCase();
      if (lk === 'extension' || lk === 'zend_extension') e.extension = lk;
    }
    this.entries.push(e);
    if (offset === undefined && st.scope.kind === 'global' && !e.extension) {
      this.local.set(key, value);
      if (e.envVars !== undefined) this.localOrigin.set(key, { file: e.file, line, ...envOriginOf(e) });
      else this.localOrigin.delete(key);
      this.localArrays.delete(key);
    } else if (offset !== undefined && st.scope.kind === 'global') {
      this.localArrays.add(key);
      this.local.delete(key);
      this.localOrigin.delete(key);
    }
  }

  /** ZEND_INI_PARSER_SECTION of php_ini_parser_cb: `[PATH=...]` / `[HOST=...]` open a table, other sections do not. */
  private onSection(name: string, line: number): void {
    const { st } = this;
    st.section = name;
    if (this.mode === 'fpm') return;
    const up = name.slice(0, 4).toUpperCase();
    if (up === 'PATH' || up === 'HOST') {
      st.special = true;
      let key = name.slice(4);
      if (up === 'HOST') key = key.toLowerCase();
      if (key.length > 0) {
        key = key.replace(/[/\\]+$/, '').replace(/^[= \t]+/, '');
        st.scope = up === 'PATH' ? { kind: 'path', name: key } : { kind: 'host', name: key };
      }
    } else {
      st.special = false; // the PATH/HOST table stays active (case 23)
    }
    this.sections.push({ name, scope: st.scope, file: this.file, line });
  }
}

/**
 * php-fpm reads its config line by line (sapi/fpm/fpm/fpm_conf.c `fpm_conf_load_ini_file`) and
 * passes each line to `zend_parse_ini_string`; the section (pool) carries over between lines. A
 * syntax error anywhere makes php-fpm refuse to start; we stop at it like PHP does.
 */
function parseFpmLines(src: string, opts: ParseIniOptions): ParseIniResult {
  const entries: IniEntry[] = [];
  const errors: IniError[] = [];
  const sections: ParseIniResult['sections'] = [];
  const st: SectionState = { section: null, scope: { kind: 'global' }, special: false };
  const lines = src.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (i === 0 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    const r = parseText(line + '\n', opts, 'fpm', st, i + 1);
    for (const e of r.entries) entries.push({ ...e, line: i + 1 });
    for (const x of r.sections) sections.push({ ...x, line: i + 1 });
    if (r.errors.length > 0) {
      for (const e of r.errors) errors.push({ ...e, line: i + 1 });
      if (r.errors.some((e) => e.kind === 'syntax')) break;
    }
  }
  return { entries, errors, sections };
}

/** True when `version` ("8.2", "8.2.36", "7.4") is at least major.minor. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const m = /^(\d+)(?:\.(\d+))?/.exec(version);
  if (!m) return false;
  const a = Number(m[1]);
  const b = Number(m[2] ?? 0);
  return a > major || (a === major && b >= minor);
}
