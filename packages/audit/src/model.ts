/**
 * Shapes shared by the audit: one audited configuration (a SAPI, an FPM pool, a document-root
 * variant), where each value came from, and findings with stable rule IDs.
 */
import { SEVERITIES, severityRank, type Finding as CommonFinding, type Severity } from '@session-migrate/common';

/** Where a directive's value was set: a file and 1-based line, or the compiled default. */
export type Origin = { file: string; line: number; layer: Layer } | 'default';

/**
 * The layer that set a value, lowest precedence first (test/fixtures/cases BUG-14):
 * php.ini (+conf.d) < pool php_value/php_flag < pool php_admin_* (locks) < [HOST=] < [PATH=] (CGI/FPM,
 * locks) < .user.ini / Apache.
 */
export type Layer =
  | 'php.ini'
  | 'conf.d'
  | 'pool'
  | 'pool-admin'
  | 'user.ini'
  | 'apache'
  | 'apache-admin'
  | 'htaccess'
  | 'php-binary'
  | 'host-section'
  | 'path-section';

/** One directive as the audit sees it in one configuration. */
export interface DirectiveValue {
  /** What ini_get() returns: the string, or false when PHP does not know the directive. */
  value: string | false;
  origin: Origin;
  /** Locked by php_admin_value/php_admin_flag (ini_set() and .user.ini cannot change it). */
  locked?: boolean;
}

export { SEVERITIES, severityRank, type Severity };

/** A file position a finding points at (rules.ts `finding()`; stored in the finding as `file` and `line`). */
export interface Location {
  file: string;
  line?: number;
}

/**
 * One finding: @session-migrate/common's Finding, whose `id` is a stable rule ID of the catalogue
 * (docs/audit-rules.md), with the catalogue's `fix` and the configuration it belongs to. The message
 * names files and keys, never secrets; `file`/`line` point at what set the value, when a file did.
 */
export interface Finding extends CommonFinding {
  fix: string;
  /** Configuration ID the finding belongs to (`host/cli`, `host/fpm:www`), or null for host-wide ones. */
  config: string | null;
}

/** The session settings reported for every configuration (issue 3, "What it reports"). */
export const SESSION_REPORT_KEYS = [
  'session.save_handler',
  'session.save_path',
  'session.serialize_handler',
  'session.gc_maxlifetime',
  'session.cookie_secure',
  'session.cookie_httponly',
  'session.cookie_samesite',
  'session.use_strict_mode',
  'session.use_only_cookies',
  'session.use_trans_sid',
  'session.sid_length',
  'session.sid_bits_per_character',
] as const;

/** The resolved save path (files or redis form), secrets redacted. */
export type ResolvedSavePath =
  | { kind: 'files'; depth: number; mode: string; path: string; systemTemp: boolean }
  | {
      kind: 'redis';
      servers: Array<{
        scheme: string;
        host: string;
        port: number | null;
        tls: boolean;
        auth: boolean;
        database?: number;
        prefix?: string;
      }>;
    }
  | { kind: 'other'; handler: string; value: string };

/** One run-time session setting found in application code (app.ts). */
export interface RuntimeSetting {
  /** `session.save_path`, ...; null when the name itself is computed. */
  directive: string | null;
  /** The string PHP would store (ini_get() after the call), or null when not known statically. */
  value: string | null;
  /** The call: ini_set, ini_alter, session_save_path, session_module_name, session_name, session_set_save_handler, session_set_cookie_params, session_start. */
  via: string;
  /** Host path of the file (symbolic links resolved, as PHP's __FILE__) and 1-based line. */
  file: string;
  line: number;
  /** The source text of what could not be resolved (shortened), for the reader. */
  expression?: string;
  /** session_set_save_handler(): the handler (class name when static, else the source text). */
  handler?: string;
}

/** What the reading of one application directory found (`--app DIR`, or a `--docroot`). */
export interface AppReport {
  /** The directory as given. */
  dir: string;
  /** The directory with symbolic links resolved (what __DIR__ is below it), or null when it could not be read. */
  realDir: string | null;
  /** Implied by a --docroot rather than named with --app. */
  implied: boolean;
  /** PHP files parsed. */
  files: number;
  settings: RuntimeSetting[];
  /** Things not read (unparsable, binary, too large, unreadable, loops): the result is partial. */
  problems: string[];
  /** Symbolic links inside the directory, not followed. */
  notFollowed: string[];
}

/**
 * A run-time setting as it works out in one configuration: `differs` from the configured value,
 * the `same`, `refused` by PHP (unknown name, not changeable at run time, pinned by php_admin_value
 * or a [PATH=]/[HOST=] section, a value its validator rejects; `reason` says which), `unresolved`
 * (value or name not static), or `handler` (session_set_save_handler(): a user save handler).
 */
export interface RuntimeValue extends RuntimeSetting {
  status: 'differs' | 'same' | 'refused' | 'unresolved' | 'handler';
  reason?: string;
  /** The configuration's own value of the directive (false: PHP does not know the name). */
  configured?: string | false;
}

/** One audited configuration. */
export interface AuditedConfig {
  /** Stable ID: `<host>/<sapi>[:<pool>][@<dir>]`, e.g. `web-1/fpm:www`, `ini`. */
  id: string;
  /** cli, fpm, apache2, cgi, or `ini` for `--ini FILE`. */
  sapi: string;
  /** PHP version the rules assume (from the php binary, the layout path, or the default 8.2). */
  phpVersion: string;
  /** Where the version came from. */
  phpVersionSource: 'php-binary' | 'layout' | 'assumed';
  pool?: string;
  /** The directory whose .user.ini / .htaccess chain this variant applies. */
  directory?: string;
  /** Main ini file loaded (null: none, compiled defaults). */
  loadedFile: string | null;
  scannedFiles: string[];
  /** Every directive ini_get() knows, plus unknown names that were set (value false). */
  values: Record<string, DirectiveValue>;
  savePath: ResolvedSavePath;
  /** Something could not be read: the values may be incomplete. */
  partial: boolean;
  problems: string[];
  /** Run-time settings of the application code that runs under this configuration (--app, --docroot). */
  runtime?: RuntimeValue[];
}

/** A whole audit result (one host, or one --ini file). */
export interface HostReport {
  host: string;
  source: string;
  configs: AuditedConfig[];
  findings: Finding[];
  partial: boolean;
  problems: string[];
  /** Application directories whose PHP code was read. */
  apps?: AppReport[];
}
