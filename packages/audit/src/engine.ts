/**
 * The audit's view of packages/php-ini: load one configuration the way php_init_config() does, parse
 * one line of an FPM pool file, and ask the directive table. Everything PHP-exact lives in php-ini;
 * this file only adapts its shapes to the audit (file/line origins, an AuditFs to read from).
 */
import type { AuditFs } from './vfs.ts';
import type { Finding } from '@session-migrate/common';

/** One key = value assignment PHP stored in its configuration hash, in load order. */
export interface HashEntry {
  key: string;
  /** The value after ini parsing (quotes, booleans, constants, ${} already applied). */
  value: string;
  /** `key[offset]` form (arrays in the configuration hash). */
  offset?: string;
  file: string;
  /** 1-based line. */
  line: number;
}

/** An ini syntax error: PHP kept what came before `line` in `file` and ignored the rest of that file. */
export interface IniSyntaxError {
  file: string;
  line: number;
  message: string;
}

/** What php_init_config() would build for one SAPI: files read, every assignment, ini_get() values. */
export interface LoadedConfiguration {
  loadedFile: string | null;
  scannedFiles: string[];
  /** Every global-scope assignment, in order (later wins for the same key); extension= lines excluded. */
  entries: HashEntry[];
  errors: IniSyntaxError[];
  /** Files that could not be read (one line each); the result is partial when non-empty. */
  problems: string[];
  /** ini_get() for every directive this build knows plus every key set (false = unknown name), with the assignment that set it (null = compiled default). */
  values: Map<string, { value: string | false; origin: { file: string; line: number } | null }>;
  /** Modules loaded (built-in + extension= lines): decides which directives exist. */
  extensions: string[];
  /**
   * `[PATH=dir]` sections (dir without trailing '/') and `[HOST=name]` sections (name lower-cased):
   * the assignments CGI/FastCGI/FPM apply per request (php_ini.c php_ini_activate_per_dir_config /
   * _per_host_config; php-ini-semantics §5). Scalar keys only, last assignment per key.
   */
  /** `extension=` lines in load order (raw value and normalised module name), zend_extension= excluded. */
  extensionLines?: Array<{ value: string; name: string }>;
  pathSections?: Map<string, HashEntry[]>;
  hostSections?: Map<string, HashEntry[]>;
}

/** How to start one SAPI (php-src main/php_ini.c php_init_config()). */
export interface LoadSpec {
  sapi: 'cli' | 'fpm' | 'apache2' | 'cgi';
  /** `-c FILE`: exactly this main file. */
  iniFile?: string | null;
  /** Compiled --with-config-file-path: searched for php-<sapi>.ini, then php.ini, when no iniFile. */
  configDir?: string;
  /** PHP_INI_SCAN_DIR: ':'-joined, '' = no scanning, an empty element = `compiledScanDir`; undefined = the compiled dir. */
  scanDir?: string;
  compiledScanDir?: string;
  /** `-n`: no scanning (an iniFile is still read). */
  noIni?: boolean;
  env: Record<string, string>;
  phpVersion: string;
  /** Build-specific compiled defaults ({'session.save_path': '/var/lib/php/sessions'} for Debian). */
  defaults: Record<string, string>;
}

/** Facts about one directive for one PHP version. */
export interface DirectiveFacts {
  /** Compiled default as ini_get() shows it. */
  default: string;
  /** PHP_INI_ALL / PERDIR / SYSTEM. */
  changeable: 'all' | 'perdir' | 'system';
}

/** The functions the audit needs from packages/php-ini. */
export interface IniEngine {
  /** Loads one SAPI's startup configuration from `fs`, in PHP's order. Never throws for bad input. */
  load(fs: AuditFs, spec: LoadSpec): LoadedConfiguration;
  /**
   * Parses one ini text (a .user.ini, or an FPM configuration file read line by line as php-fpm does)
   * against a lookup table for ${key}. Section changes come back as `{section}` markers in order.
   */
  parseText(
    text: string | Uint8Array,
    file: string,
    env: Record<string, string>,
    lookup: Map<string, string>,
    phpVersion: string,
    mode: 'fpm' | 'user.ini',
  ): { entries: Array<HashEntry | { section: string; line: number; file: string }>; errors: IniSyntaxError[] };
  /**
   * Whether PHP accepts `value` for `name` when it is set after startup (pool php_value, .user.ini,
   * Apache): the directive exists (with these modules) and its on_modify validator takes the value.
   */
  accepts(name: string, value: string, phpVersion: string, extensions: string[]): boolean;
  /** Facts about a directive in that version, or null when PHP (of that version) does not have it. */
  directive(name: string, phpVersion: string): DirectiveFacts | null;
  /** Every directive name of that version (for typo suggestions). */
  directiveNames(phpVersion: string): string[];
  /** When a directive existed once and was removed: the version that removed it, else null. */
  removedIn(name: string): string | null;
  /** Deprecation note for setting `name` to `value` in that version, else null. */
  deprecation(name: string, value: string, phpVersion: string): string | null;
}

/** One server of a phpredis save_path, secrets reduced to "present or not". */
export interface RedisServer {
  scheme: string;
  host: string;
  port: number | null;
  tls: boolean;
  auth: boolean;
  database?: number;
  prefix?: string;
}

/** A finding the php-ini package reports about a value (save_path forms), on the one Finding shape and severity scale. */
export type ValueFinding = Pick<Finding, 'id' | 'severity' | 'message'>;

/** The phpredis save_path, parsed (BUG-17 rules), for the audit. */
export interface RedisSavePathView {
  servers: RedisServer[];
  findings: ValueFinding[];
}

export interface IniEngine {
  /**
   * Parses a phpredis save_path with secrets reduced to flags: for `redis` several servers with
   * query parameters; for `rediscluster` one query string whose `seed[]` entries are the servers.
   */
  redis(value: string, handler?: 'redis' | 'rediscluster'): RedisSavePathView;
}
