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

/** One `key = value` (or `key[offset] = value`) statement as PHP's parser delivered it. */
export interface IniEntry {
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

const S_INITIAL = 0;
const S_VALUE = 1;
const S_SECTION = 2;
const S_OFFSET = 3;
const S_DQ = 4;
const S_VARNAME = 5;
const S_FALLBACK = 6;

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
function isNl(c: number): boolean {
  return c === 0x0a || c === 0x0d;
}
/** LABEL_CHAR (8.2): [^=\n\r\t;&|^$~(){}!"\[\x00] (a ']' is part of a key; checked against php 8.2.36). */
function isLabelChar(c: number): boolean {
  switch (c) {
    case 0x3d: case 0x0a: case 0x0d: case 0x09: case 0x3b: case 0x26: case 0x7c: case 0x5e: case 0x24:
    case 0x7e: case 0x28: case 0x29: case 0x7b: case 0x7d: case 0x21: case 0x22: case 0x5b: case 0x00:
      return false;
    default:
      return !Number.isNaN(c);
  }
}
/** VALUE_CHARS without the `$` alternative: [^$= \t\n\r;&|^~()!"'\000] */
function isValueChar(c: number): boolean {
  switch (c) {
    case 0x24: case 0x3d: case 0x20: case 0x09: case 0x0a: case 0x0d: case 0x3b: case 0x26: case 0x7c:
    case 0x5e: case 0x7e: case 0x28: case 0x29: case 0x21: case 0x22: case 0x27: case 0x00:
      return false;
    default:
      return !Number.isNaN(c);
  }
}
/** SECTION_VALUE_CHARS first alternative: [^$\n\r;"'\]\\] */
function isSectionChar(c: number): boolean {
  switch (c) {
    case 0x24: case 0x0a: case 0x0d: case 0x3b: case 0x22: case 0x27: case 0x5d: case 0x5c:
      return false;
    default:
      return !Number.isNaN(c);
  }
}
/** FALLBACK_CHARS first alternative (8.3+): [^$\n\r;"'}\\] */
function isFallbackChar(c: number): boolean {
  switch (c) {
    case 0x24: case 0x0a: case 0x0d: case 0x3b: case 0x22: case 0x27: case 0x7d: case 0x5c:
      return false;
    default:
      return !Number.isNaN(c);
  }
}
const TOKENS_INITIAL = new Set(':,.[]"\'()&|^+-/*=%$!~<>?@{}'.split('').map((c) => c.charCodeAt(0)));
const OPERATORS = new Set('&|^~()!'.split('').map((c) => c.charCodeAt(0)));
const BOOL_WORDS: Array<[string, string]> = [
  ['true', 'BOOL_TRUE'], ['on', 'BOOL_TRUE'], ['yes', 'BOOL_TRUE'],
  ['false', 'BOOL_FALSE'], ['off', 'BOOL_FALSE'], ['none', 'BOOL_FALSE'], ['no', 'BOOL_FALSE'],
  ['null', 'NULL_NULL'],
];

class SyntaxStop extends Error {
  constructor(readonly tok: Tok, readonly expecting?: string) {
    super('syntax');
  }
}

/** Bison's name for a token in "syntax error, unexpected X". */
function tokenName(tok: Tok): string {
  if (tok.t === 'END') return 'end of file';
  if (tok.t.length === 1) return `'${tok.t}'`;
  const named: Record<string, string> = {
    LABEL: 'TC_LABEL', OFFSET: 'TC_OFFSET', SECTION: 'TC_SECTION', STRING: 'TC_STRING', RAW: 'TC_RAW',
    CONSTANT: 'TC_CONSTANT', NUMBER: 'TC_NUMBER', WS: 'TC_WHITESPACE', QSTRING: 'TC_QUOTED_STRING',
    DOLLAR_CURLY: 'TC_DOLLAR_CURLY', VARNAME: 'TC_VARNAME', EOL: 'END_OF_LINE', FALLBACK: 'TC_FALLBACK',
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

  constructor(private readonly s: string, private readonly fallback: boolean) {
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
        if (d === 0x5c && j + 2 < n) { j += 3; continue; }
        if (j + 1 < n && d !== 0x7b && d !== 0x00) { j += 2; continue; }
        break;
      }
      if (backslashPairs && c === 0x5c) {
        if (j + 1 < n) { j += 2; continue; }
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

  next(): Tok {
    const line = this.line;
    const i = this.pos;
    const s = this.s;
    if (i >= s.length) {
      if (this.state === S_VALUE) {
        this.state = S_INITIAL;
        return { t: 'EOL', v: '', line };
      }
      return { t: 'END', v: '', line };
    }
    const c = this.c(i);
    switch (this.state) {
      case S_INITIAL: {
        if (c === 0x5b) {
          this.state = S_SECTION;
          return this.tok('SECTION', '', 1);
        }
        let L = 0;
        while (isLabelChar(this.c(i + L))) L++;
        const cands: Array<[number, number]> = []; // [len, rule]
        if (L > 0 && this.c(i + L) === 0x5b) cands.push([L + 1 + this.blanks(i + L + 1), 2]);
        const [bl, bt] = this.boolAt(i);
        // a keyword line that ends the file is read as a bare key (php 8.2.36: no syntax error)
        if (bl > 0 && i + bl < s.length) cands.push([bl, 3]);
        if (L > 0) cands.push([L, 4]);
        const b = this.blanks(i);
        if (this.c(i + b) === 0x3d) cands.push([b + 1 + this.blanks(i + b + 1), 5]);
        if (TOKENS_INITIAL.has(c)) cands.push([1, 6]);
        if (b > 0) cands.push([b, 7]);
        const nl = this.nl(i + b);
        if (nl > 0) cands.push([b + nl, 8]);
        const cm = this.comment(i + b);
        if (cm > 0) cands.push([b + cm, 9]);
        let best: [number, number] = [0, 99];
        for (const cand of cands) if (cand[0] > best[0] || (cand[0] === best[0] && cand[1] < best[1])) best = cand;
        const [len, rule] = best;
        switch (rule) {
          case 2: {
            const label = s.slice(i, i + L).replace(/^[ \t]+|[ \t]+$/g, '');
            this.state = S_OFFSET;
            return this.tok('OFFSET', label, len);
          }
          case 3:
            return this.tok(bt, bt === 'BOOL_TRUE' ? '1' : '', len);
          case 4:
            return this.tok('LABEL', s.slice(i, i + L).replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, ''), len);
          case 5:
            this.state = S_VALUE;
            return this.tok('=', '', len);
          case 6:
            return this.tok(String.fromCharCode(c), '', 1);
          case 7:
            this.pos += len;
            return this.next();
          case 8:
          case 9:
            this.line++;
            return this.tok('EOL', '', len, line);
          default:
            this.stopReason = c === 0 ? 'NUL byte' : null;
            this.pos = s.length;
            return { t: 'END', v: '', line };
        }
      }
      case S_VALUE: {
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
        if (isBlank(c)) {
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
          return this.tok('WS', s.slice(i, i + b), b);
        }
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
        const V = this.valueRun(i, isValueChar, false);
        const [bl, bt] = this.boolAt(i);
        const C = this.constantLen(i);
        if (bl > 0 && bl >= V && bl >= C) return this.tok(bt, bt === 'BOOL_TRUE' ? '1' : '', bl);
        if (C > 0 && C >= V) return this.tok('CONSTANT', s.slice(i, i + C), C);
        if (V > 0) return this.tok('STRING', s.slice(i, i + V), V);
        this.state = S_INITIAL; // NUL, or a '$' before NUL / the end: end of value (php 8.2.36)
        return this.tok('EOL', '', c === 0x24 && this.c(i + 1) === 0x00 ? 2 : 1);
      }
      case S_SECTION:
      case S_OFFSET:
      case S_FALLBACK: {
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
        const b = this.blanks(i);
        if (this.c(i + b) === 0x22) {
          const run = this.valueRun(i, st === S_FALLBACK ? isFallbackChar : isSectionChar, true);
          if (b + 1 > run) {
            this.push(S_DQ);
            return this.tok('"', '', b + 1);
          }
        }
        const V = this.valueRun(i, st === S_FALLBACK ? isFallbackChar : isSectionChar, true);
        const C = this.constantLen(i);
        const N = this.numberLen(i);
        if (C > 0 && C >= V && C >= N) return this.tok('CONSTANT', s.slice(i, i + C), C);
        if (N > 0 && N >= V) return this.tok('NUMBER', s.slice(i, i + N), N);
        if (V > 0) return this.tok('STRING', s.slice(i, i + V), V);
        if (b > 0) return this.tok('WS', s.slice(i, i + b), b);
        this.stopReason = c === 0 ? 'NUL byte' : null;
        this.pos = s.length;
        return { t: 'END', v: '', line };
      }
      case S_DQ: {
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
          if (d === 0x22) { j--; break; }
          if (d === 0x24) {
            if (j < n && this.c(j) === 0x7b) { j--; break; }
            continue;
          }
          if (d === 0x5c && j < n) {
            const e = this.c(j++);
            if (e === 0x22 && (j >= n || isNl(this.c(j)))) { j--; break; }
          }
        }
        const raw = s.slice(i, j);
        for (let k = 0; k < raw.length; k++) {
          const ch = raw.charCodeAt(k);
          if (ch === 0x0a || (ch === 0x0d && raw.charCodeAt(k + 1) !== 0x0a)) this.line++;
        }
        return this.tok('QSTRING', unescapeDq(raw), j - i, line);
      }
      case S_VARNAME: {
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
        if (L > 0) return this.tok('VARNAME', s.slice(i, i + L).replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, ''), L);
        this.stopReason = c === 0 ? 'NUL byte' : null;
        this.pos = s.length;
        return { t: 'END', v: '', line };
      }
      default:
        return { t: 'END', v: '', line };
    }
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

function parseText(src: string, opts: ParseIniOptions, mode: IniMode, st: SectionState, lineBase: number): ParseIniResult {
  const entries: IniEntry[] = [];
  const errors: IniError[] = [];
  const sections: ParseIniResult['sections'] = [];
  const file = opts.file;
  const env = opts.env ?? {};
  const constants = opts.constants ?? startupConstants();
  const fallback = versionAtLeast(opts.phpVersion ?? '8.2', 8, 3);
  const local = new Map<string, string>();
  const localArrays = new Set<string>();
  const sc = new Scanner(src, fallback);
  sc.line = lineBase;
  let la: Tok | null = null;
  const next = (): Tok => {
    if (la) {
      const t = la;
      la = null;
      return t;
    }
    return sc.next();
  };
  const peek = (): Tok => (la ??= sc.next());
  const fail = (t: Tok, expecting?: string): never => {
    throw new SyntaxStop(t, expecting);
  };

  const getVar = (name: string, fb: string | null): string => {
    if (mode === 'php.ini' && localArrays.has(name)) {
      errors.push({ file, line: sc.line, kind: 'notice', message: `\${${name}} names an array (${name}[]): PHP 8.2 aborts at startup ("Out of memory")` });
      return '';
    }
    if (mode === 'php.ini' && local.has(name)) return local.get(name)!;
    const v = opts.lookup?.(name);
    if (v !== undefined) return v;
    const e = env[name];
    if (e !== undefined) return e;
    return fb ?? '';
  };
  const constant = (name: string): string => {
    if (name.includes(':')) return name;
    return Object.prototype.hasOwnProperty.call(constants, name) ? constants[name]! : name;
  };

  const varRef = (): string => {
    // after TC_DOLLAR_CURLY
    const n = next();
    if (n.t !== 'VARNAME') fail(n, 'TC_VARNAME');
    let t = next();
    let fb: string | null = null;
    if (t.t === 'FALLBACK') {
      fb = '';
      for (;;) {
        const p = peek();
        if (p.t === '}') break;
        if (['DOLLAR_CURLY', 'CONSTANT', 'RAW', 'NUMBER', 'STRING', 'WS', '"'].includes(p.t)) fb += varStringList(false, true);
        else fail(p);
      }
      t = next();
    }
    if (t.t !== '}') fail(t, fallback ? undefined : "'}'");
    return getVar(n.v, fb);
  };

  const encapsed = (): string => {
    // after '"'
    let out = '';
    for (;;) {
      const t = next();
      if (t.t === '"') return out;
      if (t.t === 'QSTRING') out += t.v;
      else if (t.t === 'DOLLAR_CURLY') out += varRef();
      else fail(t);
    }
  };

  const varStringList = (resolve: boolean, inFallback = false): string => {
    let out = '';
    let any = false;
    for (;;) {
      const t = peek();
      if (t.t === 'DOLLAR_CURLY') {
        next();
        out += varRef();
      } else if (t.t === 'CONSTANT') {
        next();
        out += resolve ? constant(t.v) : t.v;
      } else if (t.t === 'RAW' || t.t === 'NUMBER' || t.t === 'STRING' || t.t === 'WS') {
        next();
        out += t.v;
      } else if (t.t === '"') {
        next();
        out += encapsed();
      } else {
        if (!any) fail(t);
        return out;
      }
      any = true;
      if (inFallback) return out;
    }
  };

  const unary = (): string => {
    const t = next();
    if (t.t === '~') return String(~cAtoi(unary()));
    if (t.t === '!') return String(cAtoi(unary()) ? 0 : 1);
    if (t.t === '(') {
      const v = expr();
      const c = next();
      if (c.t !== ')') fail(c);
      return v;
    }
    la = t;
    return varStringList(true);
  };
  const expr = (): string => {
    let left = unary();
    for (;;) {
      const t = peek();
      if (t.t !== '|' && t.t !== '&' && t.t !== '^') return left;
      next();
      const right = unary();
      const a = cAtoi(left);
      const b = cAtoi(right);
      left = String(t.t === '|' ? a | b : t.t === '&' ? a & b : a ^ b);
    }
  };
  const stringOrValue = (): string => {
    const t = next();
    if (t.t === 'BOOL_TRUE') return '1';
    if (t.t === 'BOOL_FALSE' || t.t === 'NULL_NULL' || t.t === 'EOL') return '';
    la = t;
    return expr();
  };

  const onEntry = (key: string, value: string, line: number, offset?: string): void => {
    const e: IniEntry = { section: st.section, scope: st.scope, key, value, file, line };
    if (offset !== undefined) e.offset = offset;
    if (offset === undefined && !st.special && mode !== 'fpm') {
      const lk = key.toLowerCase();
      if (lk === 'extension' || lk === 'zend_extension') e.extension = lk;
    }
    entries.push(e);
    if (offset === undefined && st.scope.kind === 'global' && !e.extension) {
      local.set(key, value);
      localArrays.delete(key);
    } else if (offset !== undefined && st.scope.kind === 'global') {
      localArrays.add(key);
      local.delete(key);
    }
  };
  const onSection = (name: string, line: number): void => {
    st.section = name;
    if (mode === 'fpm') return;
    // php_ini_parser_cb, ZEND_INI_PARSER_SECTION
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
    sections.push({ name, scope: st.scope, file, line });
  };

  try {
    for (;;) {
      const t = next();
      if (t.t === 'END') break;
      if (t.t === 'EOL') continue;
      if (t.t === 'SECTION') {
        let name = '';
        if (peek().t !== ']') name = varStringList(false);
        const c = next();
        if (c.t !== ']') fail(c);
        onSection(name, t.line);
      } else if (t.t === 'LABEL') {
        const p = peek();
        if (p.t === '=') {
          next();
          onEntry(t.v, stringOrValue(), t.line);
        }
        // bare key without '=': ignored by every callback
      } else if (t.t === 'OFFSET') {
        let off = '';
        if (peek().t !== ']') off = varStringList(true); // option_offset resolves constants (sections do not)
        const c = next();
        if (c.t !== ']') fail(c);
        const eq = next();
        if (eq.t !== '=') fail(eq, "'='");
        onEntry(t.v, stringOrValue(), t.line, off);
      } else {
        fail(t);
      }
    }
    if (sc.stopReason) {
      errors.push({ file, line: sc.line, kind: 'notice', message: `${sc.stopReason}: PHP silently ignores the rest of this file` });
    }
  } catch (e) {
    if (!(e instanceof SyntaxStop)) throw e;
    errors.push({ file, line: sc.line, kind: 'syntax', message: `syntax error, unexpected ${tokenName(e.tok)}${e.expecting ? `, expecting ${e.expecting}` : ''}` });
  }
  return { entries, errors, sections };
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
