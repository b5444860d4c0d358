/**
 * PHP-FPM pools for the audit: php-ini's parseFpmConfig (the one reader of php-fpm.conf, its include=
 * globs and pool defines; sapi/fpm/fpm/fpm_conf.c) reading through the audited filesystem, reshaped to
 * what the audit reports: each pool's php_value/php_flag/php_admin_* lines in file order, read
 * problems as one-line texts, syntax errors apart from invalid flags. Which define wins follows
 * fpm_php_apply_defines (fpm_php.c): php_value/php_flag first, then php_admin_value/php_admin_flag;
 * within one pool the FIRST occurrence of a key wins (php-src issues #8398, #13249; test/fixtures/reference/fpm-check).
 */
import { expandGlob, firstWins, parseFpmConfig, type PoolValue } from '@session-migrate/php-ini';
import { iniFs, type AuditFs } from './vfs.ts';
import type { IniSyntaxError } from './engine.ts';

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
  /** What php-fpm applies (php-ini firstWins): non-admin winners, then admin winners (locked). */
  applied: Array<PoolDefine & { locked: boolean }>;
}

/** All pools of one php-fpm configuration. */
export interface FpmConfig {
  confFile: string | null;
  files: string[];
  pools: FpmPool[];
  /** Syntax errors (php-fpm refuses the line); invalid flags are PoolDefines with value null instead. */
  errors: IniSyntaxError[];
  /** Files not read (unreadable, binary, include loop or nesting), one line each. */
  problems: string[];
}

const kindOf = (v: PoolValue): PoolDefine['kind'] => `php_${v.admin ? 'admin_' : ''}${v.flag ? 'flag' : 'value'}`;

/**
 * Reads the FPM configuration starting at `confFile` (or, when it does not exist, the pool files of
 * `poolGlob`, as if included from it). Include loops and nesting beyond 5 levels are reported in
 * `problems` and not followed.
 * @param prefix php-fpm's install prefix, for relative include= paths (/usr; the Docker image /usr/local).
 */
export function readFpmConfig(
  fs: AuditFs,
  confFile: string | null,
  poolGlob: string | null,
  env: Record<string, string>,
  phpVersion: string,
  prefix = '/usr',
): FpmConfig {
  const result: FpmConfig = { confFile: null, files: [], pools: [], errors: [], problems: [] };
  const ini = iniFs(fs);
  let file: string | string[];
  if (confFile !== null && fs.stat(confFile)?.type === 'file') {
    result.confFile = confFile;
    file = confFile;
  } else if (poolGlob !== null) file = expandGlob(ini, poolGlob);
  else return result;
  const cfg = parseFpmConfig({ file, fs: ini, env, phpVersion, prefix });
  result.files = cfg.files;
  const invalidAt = new Set(cfg.invalidFlags.map((v) => `${v.file}\0${v.line}`));
  for (const e of cfg.errors) {
    if (e.kind === 'io') result.problems.push(e.message);
    else if (e.kind === 'notice') result.problems.push(`${e.file}${e.line > 0 ? ':' + e.line : ''}: ${e.message}`);
    else if (e.kind === 'syntax' && !invalidAt.has(`${e.file}\0${e.line}`))
      result.errors.push({ file: e.file, line: e.line, message: e.message });
  }
  for (const p of cfg.pools) {
    const lines: Array<PoolValue & { invalid?: true }> = [
      ...p.phpValues,
      ...p.phpAdminValues,
      ...cfg.invalidFlags.filter((v) => v.pool === p.name).map((v) => ({ ...v, invalid: true as const })),
    ];
    lines.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    const defines = lines.map((v): PoolDefine => ({
      kind: kindOf(v),
      key: v.key,
      value: v.invalid ? null : v.value,
      file: v.file,
      line: v.line,
    }));
    const applied = [...firstWins(p.phpValues), ...firstWins(p.phpAdminValues)].map((v) => ({
      kind: kindOf(v),
      key: v.key,
      value: v.value,
      file: v.file,
      line: v.line,
      locked: v.admin,
    }));
    result.pools.push({ name: p.name, file: p.file, line: p.line, defines, applied });
  }
  return result;
}

/**
 * The defines php-fpm applies for a pool, in application order: non-admin first, then admin; within
 * each group the first occurrence of a key wins.
 * @returns key -> winning define (admin defines marked locked).
 */
export function effectivePoolDefines(pool: FpmPool): Map<string, PoolDefine & { locked: boolean }> {
  return new Map(pool.applied.map((d) => [d.key, d]));
}
