/**
 * PHP-FPM configuration (php-fpm.conf + included pool files) as php-fpm reads it
 * (sapi/fpm/fpm/fpm_conf.c): line by line through the Zend ini parser (NORMAL mode, so quoting,
 * booleans, constants and `${VAR}` work, but a quoted value cannot span lines); `[global]` vs
 * `[poolname]` sections (a pool name seen again continues that pool); `include=GLOB` (glob(3),
 * sorted, at most 5 levels; a relative pattern is relative to php-fpm's install prefix, not to the
 * including file: fpm_conf_load_ini_file passes it through fpm_evaluate_full_path, which prepends
 * fpm_globals.prefix (`php-fpm --prefix`) or else the compiled PHP_PREFIX); `php_value[K]`,
 * `php_flag[K]`, `php_admin_value[K]`, `php_admin_flag[K]`; flags must be one of 1/yes/true/on or
 * 0/no/none/false/off/'' after ini parsing (else FPM refuses to start) and become '1'/'0'.
 * `$pool` in php values is replaced by the pool name (fpm_conf_expand_pool_name).
 */
import { posix } from 'node:path';
import { envOriginOf, parseIni, type IniEntry, type IniError, type IniValueOrigin } from './parser.ts';
import { isFsError, type IniFileSystem } from './fs.ts';
import type { FpmPool, PoolValue } from './layers.ts';

export interface FpmConfig {
  /** [global] settings (pid, error_log, include, ...). */
  global: Map<string, { value: string; file: string; line: number }>;
  pools: FpmPool[];
  /** Files read, in order. */
  files: string[];
  errors: IniError[];
  /** True when a file could not be read or php-fpm would refuse this configuration. */
  partial: boolean;
  /** True when php-fpm would refuse to start (syntax error, invalid flag, include depth or loop). */
  fatal: boolean;
  /**
   * php_flag / php_admin_flag lines whose value is not a boolean (also reported in `errors`, kind
   * 'syntax'): not in any pool's values; `value` is the raw value, `pool` the pool name.
   */
  invalidFlags: Array<PoolValue & { pool: string }>;
}

export interface FpmConfigOptions {
  /**
   * php-fpm.conf path as PHP sees it (e.g. /etc/php/8.2/fpm/php-fpm.conf); or a list of pool files
   * read in order as if a php-fpm.conf included them (an audit of a host whose php-fpm.conf is missing).
   */
  file: string | string[];
  /** PHP version whose ini scanner rules apply (parseIni phpVersion; default: parseIni's). */
  phpVersion?: string;
  fs: IniFileSystem;
  env?: Record<string, string | undefined>;
  /** `${NAME}` resolution from php.ini keys first (pass config.settings lookup). */
  lookup?: (name: string) => string | undefined;
  /** Where those php.ini keys were set and their environment variables (parseIni lookupOrigin; pass config.settings.get). */
  lookupOrigin?: (name: string) => IniValueOrigin | undefined;
  /**
   * php-fpm's install prefix, which a relative `include=` is joined to (fpm_evaluate_full_path in
   * fpm_conf.c: `php-fpm --prefix`, else the compiled PHP_PREFIX). Default: defaultFpmPrefix(file),
   * i.e. /usr/local for a configuration under /usr/local (the official Docker image, built with
   * --prefix=/usr/local), else /usr (Debian/Ubuntu, RHEL and Alpine packages are built with --prefix=/usr).
   */
  prefix?: string;
}

/**
 * The install prefix php-fpm most likely has, judged from where its php-fpm.conf lives: '/usr/local'
 * for a configuration below /usr/local/ (Docker `php:*-fpm`: /usr/local/etc/php-fpm.conf), else '/usr'
 * (distribution packages). Pass FpmConfigOptions.prefix when the real value is known (`php-fpm -p`).
 */
export function defaultFpmPrefix(confFile: string): string {
  return confFile.startsWith('/usr/local/') ? '/usr/local' : '/usr';
}

/** One glob(3) path component as a RegExp: `*`, `?`, `[...]` / `[!...]`; an unclosed `[` is literal. */
function globToRegExp(part: string): RegExp {
  let re = '^';
  for (let i = 0; i < part.length; i++) {
    const c = part[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = part.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = part.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * Expands `pattern` as glob(3) does for php-fpm's include= (fpm_conf_ini_parser_include): `*`, `?` and
 * `[...]` in any path component, a name starting with '.' only when the pattern component does, a
 * literal component kept when it exists (lstat: a dangling link is still a match), results sorted
 * byte-wise (the C locale). Never throws; an unreadable directory contributes nothing.
 */
export function expandGlob(fs: IniFileSystem, pattern: string): string[] {
  const parts = posix
    .normalize(pattern)
    .split('/')
    .filter((p) => p !== '');
  let current = ['/'];
  for (const part of parts) {
    const next: string[] = [];
    if (!/[*?[]/.test(part)) {
      for (const dir of current) {
        const p = posix.join(dir, part);
        if (!isFsError(fs.lstat(p))) next.push(p);
      }
    } else {
      const re = globToRegExp(part);
      for (const dir of current) {
        const names = fs.readDir(dir);
        if (isFsError(names)) continue;
        for (const n of [...names].sort(byteOrder)) {
          if (n.startsWith('.') && !part.startsWith('.')) continue;
          if (re.test(n)) next.push(posix.join(dir, n));
        }
      }
    }
    current = next;
  }
  return current.sort(byteOrder);
}

/** key -> [admin, flag] */
const POOL_VALUE_KINDS: Record<string, [boolean, boolean]> = {
  php_value: [false, false],
  php_flag: [false, true],
  php_admin_value: [true, false],
  php_admin_flag: [true, true],
};
const FLAG_TRUE = new Set(['1', 'yes', 'true', 'on']);
const FLAG_FALSE = new Set(['0', 'no', 'none', 'false', 'off', '']);

/**
 * php-fpm reads at most 5 files nested in each other, php-fpm.conf included (fpm_conf_load_ini_file:
 * `if (ini_recursion++ > 4)` fails "failed to include more than 5 files recursively").
 */
const MAX_INCLUDE_DEPTH = 5;

/**
 * Reads php-fpm.conf and everything it includes. Never throws. Beyond php-fpm: an include loop (a
 * file including itself, directly or not) is read once and reported (php-fpm would fail on the
 * nesting limit), and a file with NUL bytes is refused as not an FPM configuration; both are
 * `kind: 'io'` errors and make the result partial.
 */
export function parseFpmConfig(opts: FpmConfigOptions): FpmConfig {
  const first = typeof opts.file === 'string' ? opts.file : (opts.file[0] ?? '/');
  const reader = new FpmReader(opts, opts.prefix ?? defaultFpmPrefix(first));
  // depth 0 is php-fpm.conf itself; files given as a list are read as if included by it.
  if (typeof opts.file === 'string') reader.readOne(opts.file, 0);
  else for (const f of opts.file) reader.readOne(f, 1);
  if (reader.cfg.fatal) reader.cfg.partial = true;
  return reader.cfg;
}

/** The state of one parseFpmConfig run: the result so far, the pools by name, the files open now. */
class FpmReader {
  readonly cfg: FpmConfig = { global: new Map(), pools: [], files: [], errors: [], partial: false, fatal: false, invalidFlags: [] };
  private readonly pools = new Map<string, FpmPool>();
  /** Files being read (an include of one of them is a loop). */
  private readonly active = new Set<string>();
  /** The section the last entry was in ([global] or a pool); it carries over into an included file, as in php-fpm. */
  private current: string | null = null;
  /** Order of php_value / php_admin_value entries across files (the later one wins). */
  private seq = 0;

  constructor(
    private readonly opts: FpmConfigOptions,
    private readonly prefix: string,
  ) {}

  /** Reads one file and, where it says `include`, the files it names (depth: files open at once, minus one). */
  readOne(file: string, depth: number): void {
    const data = this.readable(file, depth);
    if (data === undefined) return;
    this.active.add(file);
    this.cfg.files.push(file);
    const r = parseIni(data, {
      file,
      mode: 'fpm',
      env: this.opts.env,
      lookup: this.opts.lookup,
      ...(this.opts.lookupOrigin !== undefined ? { lookupOrigin: this.opts.lookupOrigin } : {}),
      ...(this.opts.phpVersion !== undefined ? { phpVersion: this.opts.phpVersion } : {}),
    });
    if (r.errors.some((x) => x.kind === 'syntax')) this.cfg.fatal = true;
    this.cfg.errors.push(...r.errors);
    let lastSection: string | null = null;
    for (const e of r.entries) {
      if (e.section !== lastSection) {
        lastSection = e.section;
        if (e.section !== null) this.current = e.section;
      }
      if (e.key === 'include' && e.offset === undefined) {
        const pattern = posix.isAbsolute(e.value) ? e.value : posix.join(this.prefix, e.value);
        for (const f of expandGlob(this.opts.fs, pattern)) this.readOne(f, depth + 1);
        continue;
      }
      this.addEntry(e, this.current);
    }
    this.active.delete(file);
  }

  /** The file's bytes, or undefined (an error recorded) when it is nested too deep, a loop, unreadable or binary. */
  private readable(file: string, depth: number): Uint8Array | undefined {
    // depth 0 is php-fpm.conf itself: depth 5 would be the sixth file open at once.
    if (depth >= MAX_INCLUDE_DEPTH) {
      this.cfg.errors.push({
        file,
        line: 0,
        kind: 'io',
        message: `${file}: include nested more than ${MAX_INCLUDE_DEPTH} levels (php-fpm refuses it); not read`,
      });
      this.cfg.partial = this.cfg.fatal = true;
      return undefined;
    }
    if (this.active.has(file)) {
      this.cfg.errors.push({ file, line: 0, kind: 'io', message: `${file}: include loop; not read again` });
      this.cfg.partial = this.cfg.fatal = true;
      return undefined;
    }
    const data = this.opts.fs.readFile(file);
    if (isFsError(data)) {
      this.cfg.errors.push({ file, line: 0, kind: 'io', message: data.error });
      this.cfg.partial = true;
      return undefined;
    }
    if (data.includes(0)) {
      this.cfg.errors.push({ file, line: 0, kind: 'io', message: `${file}: binary data (NUL bytes); not an FPM configuration, not read` });
      this.cfg.partial = true;
      return undefined;
    }
    return data;
  }

  /** One entry of the [global] section or of a pool: a php_value / php_admin_value (flag) or a pool setting. */
  private addEntry(e: IniEntry, section: string | null): void {
    if (section === null || section.toLowerCase() === 'global') {
      this.cfg.global.set(e.offset !== undefined ? `${e.key}[${e.offset}]` : e.key, { value: e.value, file: e.file, line: e.line });
      return;
    }
    let pool = this.pools.get(section);
    if (!pool) {
      pool = { name: section, file: e.file, line: e.line, phpValues: [], phpAdminValues: [], settings: new Map() };
      this.pools.set(section, pool);
      this.cfg.pools.push(pool);
    }
    const kind = e.offset !== undefined ? POOL_VALUE_KINDS[e.key] : undefined;
    if (kind === undefined || e.offset === undefined) {
      pool.settings.set(e.offset !== undefined ? `${e.key}[${e.offset}]` : e.key, { value: e.value, file: e.file, line: e.line });
      return;
    }
    const [admin, flag] = kind;
    let value = e.value;
    if (flag) {
      const lv = value.toLowerCase();
      if (FLAG_TRUE.has(lv)) value = '1';
      else if (FLAG_FALSE.has(lv)) value = '0';
      else {
        this.cfg.errors.push({
          file: e.file,
          line: e.line,
          kind: 'syntax',
          message: `${e.key}[${e.offset}]: invalid boolean value (php-fpm refuses to start)`,
        });
        this.cfg.invalidFlags.push({ key: e.offset, value, admin, flag, file: e.file, line: e.line, seq: this.seq++, pool: section });
        this.cfg.fatal = true;
        return;
      }
    }
    value = value.split('$pool').join(section);
    const pv: PoolValue = { key: e.offset, value, admin, flag, file: e.file, line: e.line, seq: this.seq++, ...envOriginOf(e) };
    (admin ? pool.phpAdminValues : pool.phpValues).push(pv);
  }
}
