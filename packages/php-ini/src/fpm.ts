/**
 * PHP-FPM configuration (php-fpm.conf + included pool files) as php-fpm reads it
 * (sapi/fpm/fpm/fpm_conf.c): line by line through the Zend ini parser (NORMAL mode, so quoting,
 * booleans, constants and `${VAR}` work, but a quoted value cannot span lines); `[global]` vs
 * `[poolname]` sections (a pool name seen again continues that pool); `include=GLOB` (glob(3),
 * sorted, relative to the including file's directory here, at most 5 levels); `php_value[K]`,
 * `php_flag[K]`, `php_admin_value[K]`, `php_admin_flag[K]`; flags must be one of 1/yes/true/on or
 * 0/no/none/false/off/'' after ini parsing (else FPM refuses to start) and become '1'/'0'.
 * `$pool` in php values is replaced by the pool name (fpm_conf_expand_pool_name).
 */
import { posix } from 'node:path';
import { parseIni, type IniError } from './parser.ts';
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
  /** True when php-fpm would refuse to start (syntax error, invalid flag, include depth). */
  fatal: boolean;
}

export interface FpmConfigOptions {
  /** php-fpm.conf path as PHP sees it (e.g. /etc/php/8.2/fpm/php-fpm.conf). */
  file: string;
  fs: IniFileSystem;
  env?: Record<string, string | undefined>;
  /** `${NAME}` resolution from php.ini keys first (pass config.settings lookup). */
  lookup?: (name: string) => string | undefined;
}

function globToRegExp(pat: string): RegExp {
  let re = '';
  for (const ch of pat) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Expands a glob whose wildcards are in the last path component (the form FPM configs use). */
export function expandGlob(fs: IniFileSystem, pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) return isFsError(fs.stat(pattern)) ? [] : [pattern];
  const dir = posix.dirname(pattern);
  const names = fs.readDir(dir);
  if (isFsError(names)) return [];
  const re = globToRegExp(posix.basename(pattern));
  return names.filter((n) => !n.startsWith('.') && re.test(n)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((n) => posix.join(dir, n));
}

/** key -> [admin, flag] */
const POOL_VALUE_KINDS: Record<string, [boolean, boolean]> = { php_value: [false, false], php_flag: [false, true], php_admin_value: [true, false], php_admin_flag: [true, true] };
const FLAG_TRUE = new Set(['1', 'yes', 'true', 'on']);
const FLAG_FALSE = new Set(['0', 'no', 'none', 'false', 'off', '']);

/** Reads php-fpm.conf and everything it includes. Never throws. */
export function parseFpmConfig(opts: FpmConfigOptions): FpmConfig {
  const cfg: FpmConfig = { global: new Map(), pools: [], files: [], errors: [], partial: false, fatal: false };
  const pools = new Map<string, FpmPool>();
  let current: string | null = null;

  const readOne = (file: string, depth: number): void => {
    if (depth > 5) {
      cfg.errors.push({ file, line: 0, kind: 'io', message: `${file}: includes nested more than 5 levels (php-fpm refuses to start)` });
      cfg.partial = cfg.fatal = true;
      return;
    }
    const data = opts.fs.readFile(file);
    if (isFsError(data)) {
      cfg.errors.push({ file, line: 0, kind: 'io', message: data.error });
      cfg.partial = true;
      return;
    }
    cfg.files.push(file);
    const r = parseIni(data, { file, mode: 'fpm', env: opts.env, lookup: opts.lookup });
    let lastSection: string | null = null;
    for (const e of r.entries) {
      if (e.section !== lastSection) {
        lastSection = e.section;
        if (e.section !== null) current = e.section;
      }
      if (e.key === 'include' && e.offset === undefined) {
        const pattern = posix.isAbsolute(e.value) ? e.value : posix.join(posix.dirname(file), e.value);
        for (const f of expandGlob(opts.fs, pattern)) readOne(f, depth + 1);
        continue;
      }
      if (current === null || current.toLowerCase() === 'global') {
        cfg.global.set(e.offset !== undefined ? `${e.key}[${e.offset}]` : e.key, { value: e.value, file: e.file, line: e.line });
        continue;
      }
      let pool = pools.get(current);
      if (!pool) {
        pool = { name: current, file: e.file, line: e.line, phpValues: [], phpAdminValues: [], settings: new Map() };
        pools.set(current, pool);
        cfg.pools.push(pool);
      }
      const kind = e.offset !== undefined ? POOL_VALUE_KINDS[e.key] : undefined;
      if (kind && e.offset !== undefined) {
        const [admin, flag] = kind;
        let value = e.value;
        if (flag) {
          const lv = value.toLowerCase();
          if (FLAG_TRUE.has(lv)) value = '1';
          else if (FLAG_FALSE.has(lv)) value = '0';
          else {
            cfg.errors.push({ file: e.file, line: e.line, kind: 'syntax', message: `${e.key}[${e.offset}]: invalid boolean value (php-fpm refuses to start)` });
            cfg.fatal = true;
            continue;
          }
        }
        value = value.split('$pool').join(current);
        const pv: PoolValue = { key: e.offset, value, admin, flag, file: e.file, line: e.line };
        (admin ? pool.phpAdminValues : pool.phpValues).push(pv);
      } else {
        pool.settings.set(e.offset !== undefined ? `${e.key}[${e.offset}]` : e.key, { value: e.value, file: e.file, line: e.line });
      }
    }
    if (r.errors.some((x) => x.kind === 'syntax')) cfg.fatal = true;
    cfg.errors.push(...r.errors);
  };
  readOne(opts.file, 0);
  if (cfg.fatal) cfg.partial = true;
  return cfg;
}
