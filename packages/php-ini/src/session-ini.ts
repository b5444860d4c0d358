/**
 * The session settings one PHP runs with, read from the files an operator names: a php.ini, its scan
 * directory (conf.d) and, for PHP-FPM, one pool's php_value / php_admin_value lines. A composition of
 * this package's rules, not a new one: loadConfiguration (php-src main/php_ini.c php_init_config, the
 * php.ini then the scan directory's `*.ini` in byte order), parseFpmConfig (sapi/fpm/fpm/fpm_conf.c)
 * and effectiveForPool (sapi/fpm/fpm/fpm_php.c fpm_php_apply_defines: php_value, then
 * php_admin_value, the first line of a key winning in a pool). Used by `plan --php-ini`.
 */
import { posix } from 'node:path';
import { createRootFs, isFsError, type IniFileSystem } from './fs.ts';
import { loadConfiguration } from './loader.ts';
import { parseFpmConfig } from './fpm.ts';
import { effectiveForPool, type EffectiveSetting, type FpmPool } from './layers.ts';
import { envOriginOf, type EnvOrigin, type IniValueOrigin } from './parser.ts';

/** The session directives readSessionIni reports. */
export const SESSION_INI_KEYS = [
  'session.gc_maxlifetime',
  'session.save_handler',
  'session.save_path',
  'session.serialize_handler',
] as const;
export type SessionIniKey = (typeof SESSION_INI_KEYS)[number];

export interface SessionIniOptions {
  /** The php.ini PHP loads (`php -c FILE`); absolute, or relative to the current directory. */
  iniFile: string;
  /**
   * PHP_INI_SCAN_DIR: ':'-separated directories whose `*.ini` files load after iniFile ('' reads
   * none). Default: defaultScanDir(iniFile).
   */
  scanDir?: string;
  /** A php-fpm.conf or pool file (its include= globs are followed) whose pool's php_value / php_admin_value apply. */
  fpmConf?: string;
  /** The pool in fpmConf; needed only when it defines more than one. */
  fpmPool?: string;
  /** `${VAR}` in the files (PHP reads its own environment). Default: none set. */
  env?: Record<string, string | undefined>;
  /** File access (default: the real filesystem). */
  fs?: IniFileSystem;
  /**
   * The PHP version whose ini rules apply ("8.2", "8.3.4"; parseIni phpVersion): from 8.3 on,
   * `${NAME:-fallback}` (php-src Zend/zend_ini_scanner.l ST_VAR_FALLBACK). Default '8.2'.
   */
  phpVersion?: string;
}

/**
 * One effective directive and the line that set it (file null: PHP's compiled default), with that
 * line's EnvOrigin: variables read from `env`, which PHP expands from its own environment.
 */
export interface SessionIniValue extends EnvOrigin {
  /** What ini_get() returns. */
  value: string;
  file: string | null;
  line: number | null;
  origin: EffectiveSetting['origin'];
}

export type SessionIni =
  | {
      ok: true;
      values: Record<SessionIniKey, SessionIniValue>;
      /** Every file read, in order (php.ini, the scan directory's files, the FPM files). */
      files: string[];
      /** The scan directories looked in ([] when none). */
      scanDirs: string[];
      /** The FPM pool applied, if any. */
      pool?: string;
      /**
       * session.gc_maxlifetime set in [PATH=dir] / [HOST=name] sections of the files read: PHP-CGI
       * and FPM apply them per request (main/php_ini.c php_ini_activate_config), so they are not in
       * `values`; the caller says they exist. .user.ini files and ini_set() are not read at all.
       */
      perDirectory: Array<{ section: string; value: string; file: string; line: number }>;
    }
  /** One line naming the file: missing, unreadable, not a regular file, or not parseable. */
  | { ok: false; error: string };

/**
 * The scan directory a php.ini most likely goes with: `conf.d` beside it (Debian and Ubuntu
 * /etc/php/X/fpm/conf.d, the Docker php images /usr/local/etc/php/conf.d, Alpine /etc/phpXY/conf.d),
 * '' (none) when there is no such directory. RHEL-like systems use /etc/php.d: give it explicitly.
 */
export function defaultScanDir(iniFile: string, fs: IniFileSystem = createRootFs()): string {
  const dir = posix.join(posix.dirname(posix.resolve(iniFile)), 'conf.d');
  const st = fs.stat(dir);
  return !isFsError(st) && st.type === 'dir' ? dir : '';
}

/** A regular file that can be read, or the one-line reason it cannot (`what` names the option). */
function checkFile(fs: IniFileSystem, path: string, what: string): string | undefined {
  const st = fs.stat(path);
  if (isFsError(st)) return `${what} ${st.error}`;
  if (st.type !== 'file') return `${what} ${path}: not a regular file`;
  const data = fs.readFile(path);
  if (isFsError(data)) return `${what} ${data.error}`;
  if (data.includes(0)) return `${what} ${path}: binary data (NUL bytes), not an ini file`;
  return undefined;
}

/**
 * Reads the session settings PHP would run with from `iniFile` (+ its scan directory, + one FPM
 * pool). Stricter than PHP, which skips a missing -c file and keeps running past a syntax error: any
 * file that cannot be read or parsed is an error here, as a value taken from half a configuration
 * would be a guess.
 * @returns the effective values with the file and line of each, or `{ ok: false, error }` (one line).
 */
export function readSessionIni(opts: SessionIniOptions): SessionIni {
  const fs = opts.fs ?? createRootFs();
  const iniFile = posix.resolve(opts.iniFile);
  const bad = checkFile(fs, iniFile, '--php-ini');
  if (bad !== undefined) return { ok: false, error: bad };
  const scanDir = opts.scanDir ?? defaultScanDir(iniFile, fs);
  if (opts.scanDir !== undefined)
    for (const dir of opts.scanDir.split(':').filter((d) => d !== '')) {
      const st = fs.stat(posix.resolve(dir));
      if (isFsError(st)) return { ok: false, error: `--php-ini-scan-dir ${st.error}` };
      if (st.type !== 'dir') return { ok: false, error: `--php-ini-scan-dir ${dir}: not a directory` };
    }
  const sapi = opts.fpmConf !== undefined ? 'fpm' : 'cli';
  const env = opts.env ?? {};
  const phpVersion = opts.phpVersion ?? '8.2';
  const config = loadConfiguration({ sapi, iniPath: iniFile, scanDir, defaultScanDir: '', configFilePath: '', env, fs, phpVersion });
  const broken = config.errors.find((e) => e.kind !== 'notice');
  if (broken !== undefined) return { ok: false, error: `--php-ini ${iniErrorLine(broken)}` };
  let pool: FpmPool | null = null;
  const files = [...config.parsedFiles];
  if (opts.fpmConf !== undefined) {
    const picked = readPool(fs, posix.resolve(opts.fpmConf), opts.fpmPool, {
      env,
      phpVersion,
      lookup: (n) => config.settings.get(n)?.value,
      lookupOrigin: (n) => config.settings.get(n),
    });
    if (!picked.ok) return picked;
    pool = picked.pool;
    files.push(...picked.files);
  }
  const eff = effectiveForPool(config, pool, {}, [...SESSION_INI_KEYS]);
  const values = {} as Record<SessionIniKey, SessionIniValue>;
  for (const k of SESSION_INI_KEYS) {
    const s = eff.settings[k];
    const v = eff.values[k];
    values[k] = {
      value: typeof v === 'string' ? v : '',
      file: s?.file ?? null,
      line: s?.line ?? null,
      origin: s?.origin ?? 'default',
      ...(s !== undefined ? envOriginOf(s) : {}),
    };
  }
  const perDirectory = [
    ...[...config.pathSections].map(([name, m]) => [`PATH=${name}`, m] as const),
    ...[...config.hostSections].map(([name, m]) => [`HOST=${name}`, m] as const),
  ].flatMap(([section, m]) => {
    const set = m.get('session.gc_maxlifetime');
    return set !== undefined ? [{ section, value: set.value, file: set.file, line: set.line }] : [];
  });
  return { ok: true, values, files, scanDirs: config.scanDirs, ...(pool !== null ? { pool: pool.name } : {}), perDirectory };
}

function iniErrorLine(e: { file: string; line: number; message: string }): string {
  const where = e.line > 0 ? `${e.file}:${e.line}` : e.file;
  return e.message.startsWith(e.file) ? e.message : `${where}: ${e.message}`;
}

/** The pool of an FPM configuration: the one it defines, or the one named. */
function readPool(
  fs: IniFileSystem,
  conf: string,
  name: string | undefined,
  parse: {
    env: Record<string, string | undefined>;
    phpVersion: string;
    lookup: (n: string) => string | undefined;
    lookupOrigin: (n: string) => IniValueOrigin | undefined;
  },
): { ok: true; pool: FpmPool; files: string[] } | { ok: false; error: string } {
  const bad = checkFile(fs, conf, '--fpm-pool');
  if (bad !== undefined) return { ok: false, error: bad };
  const fpm = parseFpmConfig({ file: conf, fs, ...parse });
  const broken = fpm.errors.find((e) => e.kind !== 'notice');
  if (broken !== undefined) return { ok: false, error: `--fpm-pool ${iniErrorLine(broken)}` };
  const names = fpm.pools.map((p) => p.name);
  if (name !== undefined) {
    const pool = fpm.pools.find((p) => p.name === name);
    if (pool === undefined)
      return { ok: false, error: `--fpm-pool ${conf}: no pool [${name}]${names.length > 0 ? ` (pools: ${names.join(', ')})` : ''}` };
    return { ok: true, pool, files: fpm.files };
  }
  if (fpm.pools.length !== 1)
    return {
      ok: false,
      error:
        names.length === 0
          ? `--fpm-pool ${conf}: defines no pool ([name] section)`
          : `--fpm-pool ${conf}: defines ${names.length} pools (${names.join(', ')}): name one with --fpm-pool-name`,
    };
  return { ok: true, pool: fpm.pools[0]!, files: fpm.files };
}
