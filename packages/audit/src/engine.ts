/**
 * The audit's view of packages/php-ini: load one configuration the way php_init_config() does, parse
 * one line of an FPM pool file, and ask the directive table. Everything PHP-exact lives in php-ini;
 * this file only adapts its shapes to the audit (file/line origins, an AuditFs to read from).
 */
import type { AuditFs } from './vfs.ts';

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

/** What php_init_config() would build for one main file + scan dirs. */
export interface LoadedConfiguration {
  loadedFile: string | null;
  scannedFiles: string[];
  /** Every assignment, in order (later wins for the same key). */
  entries: HashEntry[];
  errors: IniSyntaxError[];
  /** Files that could not be read (one line each); the result is partial when non-empty. */
  problems: string[];
}

/** Facts about one directive for one PHP version. */
export interface DirectiveFacts {
  /** Compiled default (upstream) as ini_get() shows it. */
  default: string;
  /** PHP_INI_ALL / PERDIR / SYSTEM. */
  changeable: 'all' | 'perdir' | 'system';
}

/** The functions the audit needs from packages/php-ini. */
export interface IniEngine {
  /**
   * Loads a main ini file (or none) and the scan directories, in PHP's order.
   * @param scanDirs already split; empty list = no scanning.
   */
  load(fs: AuditFs, mainFile: string | null, scanDirs: string[], env: Record<string, string>, phpVersion: string): LoadedConfiguration;
  /**
   * Parses one ini text (a .user.ini, or an FPM configuration file read line by line as php-fpm does)
   * against a lookup table for ${key}. Section changes come back as `{section}` markers in order.
   */
  parseText(text: string | Uint8Array, file: string, env: Record<string, string>, lookup: Map<string, string>, phpVersion: string, mode: 'fpm' | 'user.ini'): { entries: Array<HashEntry | { section: string; line: number; file: string }>; errors: IniSyntaxError[] };
  /**
   * ini_get() for every directive: applies the validators and defaults to the hash.
   * @returns directive -> effective string, and for each the index in `entries` that set it (-1 = default).
   */
  effective(entries: HashEntry[], phpVersion: string, defaults: Record<string, string>): Map<string, { value: string; from: number }>;
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

/** A finding the php-ini package reports about a value (save_path forms); severity in its own terms. */
export interface ValueFinding {
  id: string;
  severity: 'error' | 'warning' | 'info';
  message: string;
}

/** The phpredis save_path, parsed (BUG-17 rules), for the audit. */
export interface RedisSavePathView {
  servers: RedisServer[];
  findings: ValueFinding[];
}

export interface IniEngine {
  /** Parses a phpredis save_path (several servers, query parameters) with secrets reduced to flags. */
  redis(value: string): RedisSavePathView;
}
