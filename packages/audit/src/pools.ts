/**
 * PHP-FPM pool files: php-fpm.conf and its include= globs, read line by line as php-fpm does
 * (php-src sapi/fpm/fpm/fpm_conf.c fpm_conf_load_ini_file: every line goes through the Zend ini parser
 * on its own; `[name]` opens or continues a pool; include= is glob(3)-expanded, sorted, at most 5
 * levels deep). Pool defines follow fpm_php_apply_defines (fpm_php.c): php_value/php_flag first, then
 * php_admin_value/php_admin_flag; within one pool the FIRST occurrence of a key wins (php-src issues
 * #8398, #13249; shared/reference/fpm-check). Flags must be 1/yes/true/on or 0/no/none/false/off/""
 * and become "1"/"0".
 */
import { posix } from 'node:path';
import type { AuditFs } from './vfs.ts';
import { globFs } from './vfs.ts';
import type { IniEngine, IniSyntaxError } from './engine.ts';

/** One php_value/php_flag/php_admin_* line of a pool. */
export interface PoolDefine {
  kind: 'php_value' | 'php_flag' | 'php_admin_value' | 'php_admin_flag';
  key: string;
  /** Value as php-fpm stores it (flags normalised to "1"/"0"); null for an invalid flag. */
  value: string | null;
  file: string;
  line: number;
}

/** One pool with its defines in file order. */
export interface FpmPool {
  name: string;
  file: string;
  line: number;
  defines: PoolDefine[];
}

/** All pools of one php-fpm configuration. */
export interface FpmConfig {
  confFile: string | null;
  files: string[];
  pools: FpmPool[];
  errors: IniSyntaxError[];
  problems: string[];
}

const MAX_INCLUDE_DEPTH = 5;

/** php-fpm's flag rule (fpm_conf.c fpm_conf_set_boolean / fpm_php_set_flag). */
export function fpmFlag(value: string): string | null {
  const v = value.toLowerCase();
  if (['1', 'yes', 'true', 'on'].includes(v)) return '1';
  if (['0', 'no', 'none', 'false', 'off', ''].includes(v)) return '0';
  return null;
}

/**
 * Reads the FPM configuration starting at `confFile` (or, when it does not exist, the pool files of
 * `poolGlob`). Include loops (a glob that matches an including file, symlinked directories) and
 * nesting beyond 5 levels are reported in `problems` and not followed.
 * @param prefix php-fpm's install prefix, for relative include= paths (/usr, docker /usr/local).
 */
export function readFpmConfig(fs: AuditFs, engine: IniEngine, confFile: string | null, poolGlob: string | null, env: Record<string, string>, phpVersion: string, prefix = '/usr'): FpmConfig {
  const result: FpmConfig = { confFile: null, files: [], pools: [], errors: [], problems: [] };
  const pools = new Map<string, FpmPool>();
  const active = new Set<string>();
  let current: FpmPool | null = null;

  const readFile = (file: string, depth: number) => {
    if (depth > MAX_INCLUDE_DEPTH) {
      result.problems.push(`${file}: include nested more than ${MAX_INCLUDE_DEPTH} levels (php-fpm refuses it); not read`);
      return;
    }
    if (active.has(file)) {
      result.problems.push(`${file}: include loop; not read again`);
      return;
    }
    const r = fs.readFile(file);
    if (!r.ok) {
      result.problems.push(`${file}: ${r.error}`);
      return;
    }
    if (r.data.includes(0)) {
      result.problems.push(`${file}: binary data (NUL bytes); not an FPM configuration, not read`);
      return;
    }
    active.add(file);
    result.files.push(file);
    // php-fpm feeds each line to the ini parser on its own; php-ini's 'fpm' mode does exactly that.
    const parsed = engine.parseText(r.data, file, env, new Map(), phpVersion, 'fpm');
    result.errors.push(...parsed.errors);
    for (const ent of parsed.entries) {
      if ('section' in ent) {
        if (ent.section === 'global') { current = null; continue; }
        const name = ent.section;
        let pool = pools.get(name);
        if (pool === undefined) {
          pool = { name, file, line: ent.line, defines: [] };
          pools.set(name, pool);
          result.pools.push(pool);
        }
        current = pool;
        continue;
      }
      if (ent.key === 'include' && ent.offset === undefined) {
        // A relative include is relative to php-fpm's install prefix (fpm_conf.c
        // fpm_conf_ini_parser_include; docker: include=etc/php-fpm.d/*.conf under /usr/local).
        const pattern = ent.value.startsWith('/') ? ent.value : posix.join(prefix, ent.value);
        const saved = current;
        for (const m of globFs(fs, pattern)) readFile(m, depth + 1);
        current = saved;
        continue;
      }
      const m = /^(php_value|php_flag|php_admin_value|php_admin_flag)$/.exec(ent.key);
      if (m === null || ent.offset === undefined || current === null) continue;
      const kind = m[1] as PoolDefine['kind'];
      const pool: FpmPool = current;
      const raw = ent.value.replace(/\$pool/g, pool.name);
      const value = kind.endsWith('flag') ? fpmFlag(raw) : raw;
      pool.defines.push({ kind, key: ent.offset, value, file, line: ent.line });
    }
    active.delete(file);
  };

  if (confFile !== null && fs.stat(confFile)?.type === 'file') {
    result.confFile = confFile;
    readFile(confFile, 0);
  } else if (poolGlob !== null) {
    for (const f of globFs(fs, poolGlob)) readFile(f, 1);
  }
  return result;
}

/**
 * The defines php-fpm applies for a pool, in application order: non-admin first, then admin; within
 * each group the first occurrence of a key wins.
 * @returns key -> winning define (admin defines marked locked).
 */
export function effectivePoolDefines(pool: FpmPool): Map<string, PoolDefine & { locked: boolean }> {
  const out = new Map<string, PoolDefine & { locked: boolean }>();
  const firstOf = (admin: boolean) => {
    const seen = new Set<string>();
    for (const d of pool.defines) {
      if (d.kind.startsWith('php_admin') !== admin || d.value === null) continue;
      if (seen.has(d.key)) continue;
      seen.add(d.key);
      out.set(d.key, { ...d, locked: admin });
    }
  };
  firstOf(false);
  firstOf(true);
  return out;
}
